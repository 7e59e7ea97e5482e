// Crash safety and shutdown through the real binaries: kill -9 in the middle of an upload and in
// the middle of a search loses nothing that was acknowledged (state.db passes integrity_check,
// stored models hash to their recorded sha256, the search completes after the restart); SIGTERM
// ends the process within a bounded time even with an idle client connected.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/create_channel.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/sha256.h"
#include "common/sqlite.h"
#include "squeeze/v1/model.grpc.pb.h"
#include "squeeze/v1/search.grpc.pb.h"
#include "squeeze/v1/server.grpc.pb.h"
#include "tests/e2e/server_fixture.h"

namespace squeeze::testing {
namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

const std::string kClsModel = std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";
const std::string kDetModel = std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/ch_PP-OCRv4_det_infer.onnx";

std::string ReadBinary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string IntegrityCheck(const std::string& db_path) {
  auto db = common::Database::Open(db_path);
  REQUIRE(db.ok());
  auto stmt = db->Prepare("PRAGMA integrity_check");
  REQUIRE(stmt.ok());
  REQUIRE(*stmt->Step());
  return stmt->ColumnText(0);
}

int TemporaryFiles(const std::string& data_dir) {
  int n = 0;
  std::error_code error;
  for (const auto& e : fs::directory_iterator(data_dir + "/blobs/tmp", error)) n += e.is_regular_file();
  return n;
}

// The model as the server describes it, and the blob's bytes hash to the recorded sha256.
void ExpectIntact(const RunningServer& server, const v1::Model& acknowledged, const std::string& file) {
  const v1::Model now = Parse<v1::Model>(server.Cli({"--json", "models", "show", acknowledged.id()}));
  CHECK(now.sha256() == acknowledged.sha256());
  CHECK(now.sha256() == common::Sha256Hex(ReadBinary(file)));
  const std::string blob = server.data_dir() + "/blobs/" + now.sha256().substr(0, 2) + "/" + now.sha256();
  CHECK(common::Sha256Hex(ReadBinary(blob)) == now.sha256());
}

v1::SearchJob WaitFinished(const RunningServer& server, const std::string& id) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(150);
  v1::SearchJob job;
  while (std::chrono::steady_clock::now() < deadline) {
    job = Parse<v1::SearchJob>(server.Cli({"--json", "search", "show", id}));
    if (job.state() >= v1::JOB_STATE_SUCCEEDED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return job;
}

// Waits until the search runs (it may be queued behind the restart's recovery first).
void WaitRunning(const RunningServer& server, const std::string& id) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  v1::SearchJob seen;
  while (std::chrono::steady_clock::now() < deadline) {
    seen = Parse<v1::SearchJob>(server.Cli({"--json", "search", "show", id}));
    if (seen.state() != v1::JOB_STATE_QUEUED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  INFO(server.log());
  REQUIRE(seen.state() == v1::JOB_STATE_RUNNING);
}

TEST_CASE("kill -9 during an upload and during a search loses nothing acknowledged", "[e2e][crash]") {
  TempDir dir;
  const std::string data = dir.File("data");
  v1::Model acknowledged;
  {
    RunningServer server(data);
    acknowledged =
        Parse<v1::Model>(server.Cli({"--json", "models", "upload", kClsModel, "--input-shape", "x=1,3,48,192"}));
    // Half of PP-OCRv4 det is on its way when the server dies.
    auto stub = v1::ModelService::NewStub(server.Channel());
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + server.admin_key());
    v1::Model ignored;
    auto writer = stub->UploadModel(&context, &ignored);
    v1::UploadModelRequest request;
    request.mutable_metadata()->set_name("det.onnx");
    REQUIRE(writer->Write(request));
    const std::string det = ReadBinary(kDetModel);
    request.set_chunk(det.substr(0, det.size() / 2));
    REQUIRE(writer->Write(request));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (TemporaryFiles(data) == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    REQUIRE(TemporaryFiles(data) == 1);
    server.Kill();
    CHECK_FALSE(writer->Finish().ok());
  }
  CHECK(IntegrityCheck(data + "/state.db") == "ok");

  std::string job_id;
  {
    RunningServer server(data);
    ExpectIntact(server, acknowledged, kClsModel);
    CHECK(TemporaryFiles(data) == 0);  // the unfinished upload is gone
    CHECK_THAT(server.Cli({"models", "list"}).out, Contains("1 models"));
    job_id = Parse<v1::SearchJob>(server.Cli({"--json", "search", "start", acknowledged.id(), "--device", "host",
                                              "--strategy", "nsga2", "--time-budget", "2"}))
                 .id();
    WaitRunning(server, job_id);
    server.Kill();
  }
  CHECK(IntegrityCheck(data + "/state.db") == "ok");

  RunningServer server(data);
  const v1::SearchJob job = WaitFinished(server, job_id);
  INFO(server.log());
  CHECK(job.state() == v1::JOB_STATE_SUCCEEDED);
  REQUIRE(job.fronts_size() == 1);
  CHECK(job.fronts(0).candidates_size() > 0);
  CHECK_THAT(server.log(), Contains("was running when the server stopped"));
  ExpectIntact(server, acknowledged, kClsModel);
  CHECK(server.Stop() == 0);
  CHECK(IntegrityCheck(data + "/state.db") == "ok");
}

TEST_CASE("A search that was running when the server died twice is failed with the reason, not run a third time",
          "[e2e][crash]") {
  TempDir dir;
  const std::string data = dir.File("data");
  std::string job_id;
  {
    RunningServer server(data);
    const v1::Model model =
        Parse<v1::Model>(server.Cli({"--json", "models", "upload", kClsModel, "--input-shape", "x=1,3,48,192"}));
    job_id = Parse<v1::SearchJob>(server.Cli({"--json", "search", "start", model.id(), "--device", "host", "--strategy",
                                              "nsga2", "--time-budget", "300"}))
                 .id();
    WaitRunning(server, job_id);
    server.Kill();  // first death
  }
  {
    // A clean shutdown while it runs again is no death: it does not count.
    RunningServer server(data);
    WaitRunning(server, job_id);
    CHECK(server.Stop() == 0);
  }
  {
    RunningServer server(data);
    WaitRunning(server, job_id);
    server.Kill();  // second death
  }
  RunningServer server(data);
  const v1::SearchJob job = Parse<v1::SearchJob>(server.Cli({"--json", "search", "show", job_id}));
  CHECK(job.state() == v1::JOB_STATE_FAILED);
  CHECK_THAT(job.error(), Contains("died, 2 times") && Contains("not run again"));
  CHECK_THAT(server.log(), Contains("marked failed, not run again"));
  CHECK(server.Stop() == 0);
}

TEST_CASE("SIGTERM stops within a bounded time with an idle client connected and a search running", "[e2e][shutdown]") {
  TempDir dir;
  RunningServer server(dir.File("data"), {"--shutdown-grace", "10"});
  const v1::Model model =
      Parse<v1::Model>(server.Cli({"--json", "models", "upload", kClsModel, "--input-shape", "x=1,3,48,192"}));
  const std::string job =
      Parse<v1::SearchJob>(server.Cli({"--json", "search", "start", model.id(), "--device", "host", "--objectives",
                                       "latency,size,error,peak-memory", "--time-budget", "120"}))
          .id();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline &&
         Parse<v1::SearchJob>(server.Cli({"--json", "search", "show", job})).state() != v1::JOB_STATE_RUNNING) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // An idle client: its connection stays open after one call.
  auto channel = server.Channel();
  auto stub = v1::ServerService::NewStub(channel);
  {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + server.admin_key());
    v1::ServerStatus status;
    REQUIRE(stub->GetServerStatus(&context, v1::GetServerStatusRequest(), &status).ok());
  }
  const auto start = std::chrono::steady_clock::now();
  CHECK(server.Stop() == 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds < 5);  // well inside the 10 s grace: nothing was in flight

  // The running search was left queued and runs again on the next start.
  RunningServer again(dir.File("data"), {"--shutdown-grace", "2"});
  CHECK_THAT(again.log(), Contains(job + " was queued") && Contains("running it again"));

  // A watch of that search ends at once with UNAVAILABLE (the job will not end in this process);
  // an upload still in flight holds the shutdown up to the grace, no more.
  auto again_channel = grpc::CreateChannel(again.address(), grpc::InsecureChannelCredentials());
  auto search = v1::SearchService::NewStub(again_channel);
  grpc::ClientContext watch_context;
  watch_context.AddMetadata("authorization", "Bearer " + again.admin_key());
  v1::WatchSearchRequest request;
  request.set_id(job);
  auto reader = search->WatchSearch(&watch_context, request);
  v1::SearchJob snapshot;
  REQUIRE(reader->Read(&snapshot));
  auto models = v1::ModelService::NewStub(again_channel);
  grpc::ClientContext upload_context;
  upload_context.AddMetadata("authorization", "Bearer " + again.admin_key());
  v1::Model ignored;
  auto writer = models->UploadModel(&upload_context, &ignored);
  v1::UploadModelRequest metadata;
  metadata.mutable_metadata()->set_name("slow.onnx");
  REQUIRE(writer->Write(metadata));
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until && TemporaryFiles(again.data_dir()) == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto stop = std::chrono::steady_clock::now();
  CHECK(again.Stop() == 0);
  const double with_call = std::chrono::duration<double>(std::chrono::steady_clock::now() - stop).count();
  CHECK(with_call >= 1.5);
  CHECK(with_call < 6);
  while (reader->Read(&snapshot)) {
  }
  const grpc::Status watch_status = reader->Finish();
  CHECK(watch_status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK_THAT(watch_status.error_message(), Contains("shutting down"));
  CHECK_FALSE(writer->Finish().ok());
}

}  // namespace
}  // namespace squeeze::testing
