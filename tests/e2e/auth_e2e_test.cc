// Teams, API keys, quotas and TLS through the real binaries: every RPC of every squeeze.v1
// service needs a key (found by reading the .proto files, so services added later are covered
// too); two teams see nothing of each other; quotas answer RESOURCE_EXHAUSTED with their limit;
// keys made or revoked while the server runs take effect at once; TLS with a certificate made here.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/health_check_service_interface.h>

#include <catch2/catch.hpp>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <thread>

#include "squeeze/v1/model.pb.h"
#include "squeeze/v1/search.grpc.pb.h"
#include "squeeze/v1/server.pb.h"
#include "tests/e2e/server_fixture.h"

namespace squeeze::testing {
namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

const std::string kClsModel = std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";

// "/squeeze.v1.Service/Method" for every rpc in proto/squeeze/v1/*.proto.
std::vector<std::string> AllMethods() {
  std::vector<std::string> methods;
  const std::regex service_re(R"(service\s+(\w+)\s*\{)"), rpc_re(R"(rpc\s+(\w+)\s*\()");
  for (const auto& entry : fs::directory_iterator(std::string(SQUEEZE_SOURCE_DIR) + "/proto/squeeze/v1")) {
    if (entry.path().extension() != ".proto") continue;
    std::string text = ReadText(entry.path().string());
    // One service block at a time: from "service X {" to the next service or the end.
    std::smatch service;
    std::string rest = text;
    while (std::regex_search(rest, service, service_re)) {
      const std::string name = service[1];
      rest = service.suffix();
      const size_t end = std::min(rest.find("\nservice "), rest.size());
      const std::string body = rest.substr(0, end);
      for (auto it = std::sregex_iterator(body.begin(), body.end(), rpc_re); it != std::sregex_iterator(); ++it) {
        methods.push_back("/squeeze.v1." + name + "/" + (*it)[1].str());
      }
    }
  }
  return methods;
}

// Calls `method` with one request message of `bytes` (for a streaming method: that message, then
// the end of the stream) and returns the status.
grpc::Status CallWithBytes(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                           const std::string& key, const std::string& bytes) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!key.empty()) context.AddMetadata("authorization", "Bearer " + key);
  grpc::ByteBuffer request, response;
  grpc::Slice slice(bytes);
  request = grpc::ByteBuffer(&slice, 1);
  std::mutex mutex;
  std::condition_variable done;
  bool finished = false;
  grpc::Status result;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response, [&](grpc::Status status) {
    std::lock_guard<std::mutex> lock(mutex);
    result = status;
    finished = true;
    done.notify_one();
  });
  std::unique_lock<std::mutex> lock(mutex);
  done.wait(lock, [&] { return finished; });
  return result;
}

grpc::Status CallWithEmptyRequest(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                                  const std::string& key) {
  return CallWithBytes(channel, method, key, "");
}

std::shared_ptr<grpc::Channel> Channel(const RunningServer& server) { return server.Channel(); }

TEST_CASE("Every RPC of every service needs a valid key, but health does not", "[e2e][auth]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  // What the server writes is its user's alone: key hashes, every team's jobs, the first key.
  namespace fs = std::filesystem;
  const fs::perms group_or_other = fs::perms::group_all | fs::perms::others_all;
  for (const char* name : {"", "/state.db", "/profiles.db", "/initial-api-key", "/blobs"}) {
    INFO(server.data_dir() << name);
    const fs::path path = server.data_dir() + name;
    REQUIRE(fs::exists(path));
    CHECK((fs::status(path).permissions() & group_or_other) == fs::perms::none);
  }
  const std::vector<std::string> methods = AllMethods();
  REQUIRE(methods.size() >= 15);
  const std::string revoked = server.CreateKey("gamma");
  const std::string revoked_id = Parse<v1::ListApiKeysResponse>(server.Cli({"--json", "keys", "list"})).keys(1).id();
  REQUIRE(Run({Binary("squeezed"), "keys", "revoke", "--data-dir", server.data_dir(), revoked_id}).exit_code == 0);
  auto channel = Channel(server);
  for (const std::string& method : methods) {
    INFO(method);
    grpc::Status none = CallWithEmptyRequest(channel, method, "");
    CHECK(none.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    CHECK_THAT(none.error_message(), Contains("SQUEEZE_API_KEY"));
    CHECK(CallWithEmptyRequest(channel, method, "sqz_0123").error_code() == grpc::StatusCode::UNAUTHENTICATED);
    CHECK(CallWithEmptyRequest(channel, method, revoked).error_code() == grpc::StatusCode::UNAUTHENTICATED);
    // Bytes that are no protobuf message (a varint that never ends) are refused as such.
    grpc::Status garbage = CallWithBytes(channel, method, server.admin_key(), "\xff\xff\xff\xff");
    CHECK(garbage.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(garbage.error_message(), Contains("parsed as squeeze.v1."));
  }
  // The standard health service answers without a key.
  grpc::GenericStub stub(channel);
  auto health = server.Channel();
  grpc::Status status = CallWithEmptyRequest(health, "/grpc.health.v1.Health/Check", "");
  CHECK(status.ok());
  CommandResult probe = server.CliAs("", {"health"});
  CHECK(probe.exit_code == 0);
  CHECK(probe.out == "SERVING\n");
  // The first key is in its file, never in the log (logs go to journald and Kubernetes).
  CHECK_THAT(server.log(), Contains("initial-api-key") && !Contains(server.admin_key()));
  // Nothing was changed by any refused call.
  CHECK_THAT(server.Cli({"models", "list"}).out, Contains("0 models"));
}

TEST_CASE("Two teams see nothing of each other's models and searches", "[e2e][auth]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  const std::string alpha = server.CreateKey("alpha");
  const std::string beta = server.CreateKey("beta");
  const v1::Model model =
      Parse<v1::Model>(server.CliAs(alpha, {"--json", "models", "upload", kClsModel, "--input-shape", "x=1,3,48,192"}));
  const v1::SearchJob job =
      Parse<v1::SearchJob>(server.CliAs(alpha, {"--json", "search", "start", model.id(), "--device", "host",
                                                "--strategy", "nsga2", "--time-budget", "1"}));

  // Beta's answers for alpha's ids are exactly those for ids that do not exist.
  auto expect_hidden = [&](std::vector<std::string> args, const std::string& id, const std::string& unknown) {
    INFO(args[0] << " " << args[1]);
    std::vector<std::string> with_real = args, with_unknown = args;
    for (auto* list : {&with_real, &with_unknown}) {
      for (std::string& a : *list) {
        if (a == "ID") a = list == &with_real ? id : unknown;
      }
    }
    CommandResult real = server.CliAs(beta, with_real);
    CommandResult none = server.CliAs(beta, with_unknown);
    CHECK(real.exit_code == 1);
    CHECK_THAT(real.err, Contains("NOT_FOUND"));
    std::string masked = real.err;
    masked.replace(masked.find(id), id.size(), unknown);
    CHECK(masked == none.err);
  };
  const std::string no_model = "m-0000000000000000", no_job = "s-0000000000000000";
  expect_hidden({"models", "show", "ID"}, model.id(), no_model);
  expect_hidden({"models", "delete", "ID"}, model.id(), no_model);
  expect_hidden({"search", "start", "ID", "--device", "host"}, model.id(), no_model);
  expect_hidden({"recommend", "ID", "--device", "host"}, model.id(), no_model);
  expect_hidden({"search", "show", "ID"}, job.id(), no_job);
  expect_hidden({"search", "cancel", "ID"}, job.id(), no_job);
  expect_hidden({"search", "plot", "ID", "-o", dir.File("beta.svg")}, job.id(), no_job);
  CHECK_THAT(server.CliAs(beta, {"models", "list"}).out, Contains("0 models"));
  CHECK(Parse<v1::ListSearchesResponse>(server.CliAs(beta, {"--json", "search", "list"})).jobs_size() == 0);
  {
    // WatchSearch is a stream: the same NOT_FOUND.
    auto stub = v1::SearchService::NewStub(Channel(server));
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + beta);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::WatchSearchRequest request;
    request.set_id(job.id());
    auto reader = stub->WatchSearch(&context, request);
    v1::SearchJob ignored;
    CHECK_FALSE(reader->Read(&ignored));
    CHECK(reader->Finish().error_code() == grpc::StatusCode::NOT_FOUND);
  }

  // Devices are shared; the same bytes uploaded by beta are beta's own model.
  CHECK(server.CliAs(beta, {"devices", "show", "host"}).exit_code == 0);
  const v1::Model beta_model =
      Parse<v1::Model>(server.CliAs(beta, {"--json", "models", "upload", kClsModel, "--input-shape", "x=1,3,48,192"}));
  CHECK(beta_model.id() != model.id());
  CHECK(beta_model.sha256() == model.sha256());
  // Alpha's work is untouched by everything beta did, and alpha deleting its model leaves beta's.
  CHECK(Parse<v1::Model>(server.CliAs(alpha, {"--json", "models", "show", model.id()})).id() == model.id());
  CHECK(Parse<v1::ListSearchesResponse>(server.CliAs(alpha, {"--json", "search", "list"})).jobs_size() == 1);
  REQUIRE(server.CliAs(alpha, {"search", "cancel", job.id()}).exit_code == 0);
  REQUIRE(server.CliAs(alpha, {"models", "delete", model.id()}).exit_code == 0);
  CHECK(server.CliAs(beta, {"models", "show", beta_model.id()}).exit_code == 0);

  // Server status tells each caller who it is.
  CHECK(Parse<v1::ServerStatus>(server.CliAs(beta, {"--json", "server", "status"})).team() == "beta");
}

TEST_CASE("Admin-only calls refuse member keys, and admins manage keys over RPC", "[e2e][auth]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  const std::string member = server.CreateKey("alpha");
  CommandResult denied = server.CliAs(member, {"keys", "create", "--team", "beta"});
  CHECK(denied.exit_code == 1);
  CHECK_THAT(denied.err, Contains("PERMISSION_DENIED") && Contains("admin"));
  CHECK_THAT(server.CliAs(member, {"keys", "list"}).err, Contains("PERMISSION_DENIED"));

  // The admin makes a key over RPC; it works at once; revoked, it stops at once.
  const v1::CreateApiKeyResponse made =
      Parse<v1::CreateApiKeyResponse>(server.Cli({"--json", "keys", "create", "--team", "beta"}));
  CHECK(made.secret().rfind("sqz_", 0) == 0);
  CHECK(Parse<v1::ServerStatus>(server.CliAs(made.secret(), {"--json", "server", "status"})).team() == "beta");
  CHECK(server.Cli({"keys", "revoke", made.key().id()}).exit_code == 0);
  CommandResult after = server.CliAs(made.secret(), {"models", "list"});
  CHECK(after.exit_code == 1);
  CHECK_THAT(after.err, Contains("UNAUTHENTICATED") && Contains("revoked"));
  CHECK_THAT(server.Cli({"keys", "create", "--team", "Not A Team"}).err, Contains("INVALID_ARGUMENT"));
  CHECK_THAT(server.Cli({"keys", "revoke", "k-00000000"}).err, Contains("NOT_FOUND"));

  // squeezed keys on the data dir, while the server runs: a new key works, a revoked one stops.
  const std::string key = server.CreateKey("gamma", /*admin=*/true);
  CHECK(server.CliAs(key, {"keys", "list"}).exit_code == 0);
  CommandResult listed = Run({Binary("squeezed"), "keys", "list", "--data-dir", server.data_dir()});
  REQUIRE(listed.exit_code == 0);
  CHECK_THAT(listed.out, Contains("gamma") && Contains("admin") && Contains(made.key().id()));
  CHECK(listed.out.find(key) == std::string::npos);  // never the key itself
  std::string gamma_id;
  const auto keys = Parse<v1::ListApiKeysResponse>(server.CliAs(key, {"--json", "keys", "list"}));
  for (const v1::ApiKey& k : keys.keys()) {
    if (k.team() == "gamma") gamma_id = k.id();
  }
  REQUIRE_FALSE(gamma_id.empty());
  REQUIRE(Run({Binary("squeezed"), "keys", "revoke", "--data-dir", server.data_dir(), gamma_id}).exit_code == 0);
  CHECK_THAT(server.CliAs(key, {"server", "status"}).err, Contains("UNAUTHENTICATED"));
  CHECK(Run({Binary("squeezed"), "keys", "list", "--data-dir", dir.File("nowhere")}).exit_code == 1);

  // The first admin key's file is for the owner only.
  CHECK((fs::status(server.data_dir() + "/initial-api-key").permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
}

TEST_CASE("Quotas answer RESOURCE_EXHAUSTED with the limit, per team", "[e2e][quota]") {
  TempDir dir;
  RunningServer server(dir.File("data"), {"--quota-stored-bytes", "1000000", "--quota-concurrent-searches", "1",
                                          "--quota-searches-per-hour", "2"});
  const std::string alpha = server.CreateKey("alpha");
  const std::string beta = server.CreateKey("beta");
  const v1::Model model =
      Parse<v1::Model>(server.CliAs(alpha, {"--json", "models", "upload", kClsModel, "--input-shape", "x=1,3,48,192"}));
  // The same bytes with other input shapes are a second model: over 1,000,000 stored bytes.
  CommandResult full = server.CliAs(alpha, {"models", "upload", kClsModel, "--input-shape", "x=1,3,48,96"});
  CHECK(full.exit_code == 1);
  CHECK_THAT(full.err, Contains("RESOURCE_EXHAUSTED") && Contains("1000000"));
  CHECK_THAT(server.CliAs(alpha, {"models", "list"}).out, Contains("1 models"));

  // One search at a time: a long NSGA-II run holds the slot.
  const v1::SearchJob first = Parse<v1::SearchJob>(
      server.CliAs(alpha, {"--json", "search", "start", model.id(), "--device", "host", "--objectives",
                           "latency,size,error,peak-memory", "--time-budget", "60"}));
  // The server's status counts it (every team's jobs).
  const v1::ServerStatus status = Parse<v1::ServerStatus>(server.CliAs(alpha, {"--json", "server", "status"}));
  CHECK(status.jobs_queued() + status.jobs_running() == 1);
  CHECK_FALSE(status.version().empty());
  CHECK(status.uptime_seconds() > 0);
  CHECK(status.worker_threads() == 2);
  CommandResult second = server.CliAs(alpha, {"search", "start", model.id(), "--device", "raspberry-pi-5"});
  CHECK(second.exit_code == 1);
  CHECK_THAT(second.err, Contains("RESOURCE_EXHAUSTED") && Contains("1 concurrent searches"));
  // Another team is not held back by alpha's use.
  const v1::Model beta_model =
      Parse<v1::Model>(server.CliAs(beta, {"--json", "models", "upload", kClsModel, "--input-shape", "x=1,3,48,192"}));
  CHECK(server.CliAs(beta, {"recommend", beta_model.id(), "--device", "host"}, std::chrono::seconds(120)).exit_code ==
        0);

  auto wait_ended = [&](const std::string& id) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline &&
           Parse<v1::SearchJob>(server.CliAs(alpha, {"--json", "search", "show", id})).state() <
               v1::JOB_STATE_SUCCEEDED) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  };
  REQUIRE(server.CliAs(alpha, {"search", "cancel", first.id()}).exit_code == 0);
  wait_ended(first.id());
  // Two searches in the hour is the limit: the second runs, the third is refused.
  const v1::SearchJob again =
      Parse<v1::SearchJob>(server.CliAs(alpha, {"--json", "search", "start", model.id(), "--device", "raspberry-pi-5",
                                                "--strategy", "nsga2", "--time-budget", "1"}));
  REQUIRE(server.CliAs(alpha, {"search", "cancel", again.id()}).exit_code == 0);
  wait_ended(again.id());
  CommandResult third = server.CliAs(alpha, {"search", "start", model.id(), "--device", "pixel-8"});
  CHECK(third.exit_code == 1);
  CHECK_THAT(third.err, Contains("RESOURCE_EXHAUSTED") && Contains("2 searches per hour"));
}

TEST_CASE("Server limits refuse oversized messages and bad settings", "[e2e][quota]") {
  TempDir dir;
  CommandResult small = Run({Binary("squeezed"), "--data-dir", dir.File("d"), "--max-message-bytes", "1000"});
  CHECK(small.exit_code != 0);
  CHECK_THAT(small.err, Contains("max-message-bytes"));
  CommandResult open = Run({Binary("squeezed"), "--data-dir", dir.File("d"), "--listen", "0.0.0.0:0"});
  CHECK(open.exit_code == 1);
  CHECK_THAT(open.err, Contains("--tls-cert") && Contains("--insecure"));

  RunningServer server(dir.File("data"), {"--max-message-bytes", "2097152"});
  // A 3 MiB message is refused by gRPC itself before any handler sees it.
  auto stub = v1::SearchService::NewStub(Channel(server));
  grpc::ClientContext context;
  server.Authorize(&context, std::chrono::seconds(10));
  v1::SearchSpec spec;
  spec.set_model_id("m-0000000000000000");
  spec.add_calibration()->add_tensors(std::string(3 << 20, 'x'));
  v1::SearchJob job;
  CHECK(stub->StartSearch(&context, spec, &job).error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST_CASE("TLS with a self-signed certificate, and plaintext clients are refused", "[e2e][tls]") {
  TempDir dir;
  const std::string cert = dir.File("cert.pem"), key = dir.File("key.pem");
  CommandResult made =
      Run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days",
           "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"});
  INFO(made.err);
  REQUIRE(made.exit_code == 0);
  RunningServer server(dir.File("data"), {"--tls-cert", cert, "--tls-key", key});
  CHECK(server.Cli({"server", "status"}).exit_code == 2);  // plaintext against TLS: no connection
  server.set_cli_options({"--ca-cert", cert});
  const v1::ServerStatus status = Parse<v1::ServerStatus>(server.Cli({"--json", "server", "status"}));
  CHECK(status.tls());
  CHECK(server.Cli({"devices", "list"}).exit_code == 0);
  CHECK_THAT(server.Cli({"models", "upload", kClsModel, "--input-shape", "x=1,3,48,192"}).out, Contains("m-"));
  CHECK_THAT(server.CliAs("", {"models", "list"}).err, Contains("UNAUTHENTICATED"));
  // The health command (for probes) needs no key, over TLS too, also when the certificate's
  // name is not the address dialled.
  CommandResult health = server.CliAs("", {"health"});
  CHECK(health.exit_code == 0);
  CHECK_THAT(health.out, Contains("SERVING"));
  CHECK(server.CliAs("", {"--tls-server-name", "localhost", "health"}).exit_code == 0);
  CHECK(server.CliAs("", {"--tls-server-name", "elsewhere.example", "health"}).exit_code == 2);
  // A CA that did not sign the server's certificate is not trusted.
  const std::string other = dir.File("other.pem");
  REQUIRE(Run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir.File("o.key"),
               "-out", other, "-days", "1", "-subj", "/CN=localhost"})
              .exit_code == 0);
  server.set_cli_options({"--ca-cert", other});
  CHECK(server.Cli({"server", "status"}).exit_code == 2);
  CommandResult half = Run({Binary("squeezed"), "--data-dir", dir.File("d2"), "--tls-cert", cert});
  CHECK(half.exit_code == 1);
  CHECK_THAT(half.err, Contains("--tls-key"));
}

}  // namespace
}  // namespace squeeze::testing
