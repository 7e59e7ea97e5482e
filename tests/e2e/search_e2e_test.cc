// Search jobs through the real binaries: start, watch, result; the cached repeat; impossible
// limits; cancellation; a restart in the middle of a job.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <onnx/defs/parser.h>
#include <onnx/onnx_pb.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <thread>

#include "squeeze/v1/model.pb.h"
#include "squeeze/v1/search.grpc.pb.h"
#include "squeeze/v1/search.pb.h"
#include "tests/e2e/server_fixture.h"

namespace squeeze::testing {
namespace {

using Catch::Matchers::Contains;

const std::string kClsModel = std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";

std::string UploadCls(const RunningServer& server) {
  return Parse<v1::Model>(server.Cli({"--json", "models", "upload", kClsModel, "--input-shape", "x=1,3,48,192"})).id();
}

// PP-OCRv4 det at 640x640: large enough that measuring its sensitivities takes a while.
std::string UploadDet(const RunningServer& server) {
  return Parse<v1::Model>(server.Cli({"--json", "models", "upload",
                                      std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/ch_PP-OCRv4_det_infer.onnx",
                                      "--input-shape", "x=1,3,640,640"}))
      .id();
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

TEST_CASE("Teams share the search slots: another team's search goes before a team's second, with its place shown",
          "[e2e][search][queue]") {
  TempDir dir;
  RunningServer server(dir.File("data"), {"--workers", "1"});
  const std::string beta = server.CreateKey("beta");
  const std::string alpha_model = UploadCls(server);
  const std::string beta_model =
      Parse<v1::Model>(server.CliAs(beta, {"--json", "models", "upload", kClsModel, "--input-shape", "x=1,3,48,192"}))
          .id();
  auto start = [&](const std::string& key, const std::string& model, const std::string& budget) {
    return Parse<v1::SearchJob>(server.CliAs(
        key, {"--json", "search", "start", model, "--device", "host", "--strategy", "nsga2", "--time-budget", budget}));
  };
  auto show = [&](const std::string& key, const std::string& id) {
    return Parse<v1::SearchJob>(server.CliAs(key, {"--json", "search", "show", id}));
  };
  const v1::SearchJob first = start(server.admin_key(), alpha_model, "300");
  const v1::SearchJob second = start(server.admin_key(), alpha_model, "301");
  const v1::SearchJob other = start(beta, beta_model, "302");
  // One slot: alpha's first runs (or is about to); beta's goes next, ahead of alpha's second.
  const v1::SearchJob other_now = show(beta, other.id());
  const v1::SearchJob second_now = show(server.admin_key(), second.id());
  REQUIRE(other_now.state() == v1::JOB_STATE_QUEUED);
  REQUIRE(second_now.state() == v1::JOB_STATE_QUEUED);
  CHECK(other_now.queue_position() == 1);
  CHECK(second_now.queue_position() == 2);
  // Estimated from the time budgets ahead: about 300 s for beta, 300 + 302 for alpha's second.
  CHECK(other_now.expected_wait_seconds() > 250);
  CHECK(second_now.expected_wait_seconds() > other_now.expected_wait_seconds() + 250);
  CHECK_THAT(server.CliAs(beta, {"search", "show", other.id()}).out,
             Contains("position 1 in the queue") && Contains("estimated from the time budgets"));
  CHECK_THAT(server.Cli({"server", "status"}).out, Contains("1 running, 2 queued"));

  // When the running one ends, beta's starts; alpha's second still waits.
  REQUIRE(server.Cli({"search", "cancel", first.id()}).exit_code == 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline && show(beta, other.id()).state() == v1::JOB_STATE_QUEUED) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(show(beta, other.id()).state() == v1::JOB_STATE_RUNNING);
  CHECK(show(server.admin_key(), second.id()).queue_position() == 1);
  // A queued search cancelled never runs; the running one ends as cancelled.
  CHECK(Parse<v1::SearchJob>(server.Cli({"--json", "search", "cancel", second.id()})).state() ==
        v1::JOB_STATE_CANCELLED);
  REQUIRE(server.CliAs(beta, {"search", "cancel", other.id()}).exit_code == 0);
  CHECK(WaitFinished(server, first.id()).state() == v1::JOB_STATE_CANCELLED);
  CHECK(server.Stop() == 0);
}

TEST_CASE("A search for two devices runs to a front per device and a repeat is answered from cache", "[e2e][search]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  const std::string model = UploadCls(server);
  CommandResult watched =
      server.Cli({"--json", "search", "start", model, "--device", "host", "--device", "raspberry-pi-5", "--watch"});
  INFO(watched.err << server.log());
  v1::SearchJob job = Parse<v1::SearchJob>(watched);
  CHECK(job.state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(job.phase() == v1::PHASE_DONE);
  CHECK(job.synthetic_calibration());
  CHECK_THAT(watched.err, Contains("searching"));
  REQUIRE(job.fronts_size() == 2);
  for (const v1::DeviceFront& front : job.fronts()) {
    INFO(front.device_id());
    CHECK(front.constraints_met());
    REQUIRE(front.candidates_size() > 1);
    CHECK(front.baselines_size() >= 1);
    // Sorted by latency and mutually non-dominated in (latency, size, error) — all but a uniform
    // baseline that measured faster than every measured candidate on host and joined at the end.
    int predicted = front.candidates_size();
    while (predicted > 0 && front.candidates(predicted - 1).tags_size() > 1 &&
           front.candidates(predicted - 1).tags(1) ==
               "measured faster than every measured candidate that keeps the limits") {
      --predicted;
    }
    for (int i = 1; i < predicted; ++i) {
      const v1::Candidate& a = front.candidates(i - 1);
      const v1::Candidate& b = front.candidates(i);
      CHECK(a.predicted_latency_ms() <= b.predicted_latency_ms());
      const bool dominated =
          b.predicted_latency_ms() >= a.predicted_latency_ms() &&
          b.predicted_size_bytes() >= a.predicted_size_bytes() && b.predicted_error() >= a.predicted_error() &&
          (b.predicted_latency_ms() > a.predicted_latency_ms() || b.predicted_size_bytes() > a.predicted_size_bytes() ||
           b.predicted_error() > a.predicted_error());
      CHECK_FALSE(dominated);
    }
    CHECK(front.candidates(0).layers_size() == 54);
    // A plan that changes nothing is "lossless": an infinite SQNR, no sentinel number.
    for (const v1::Candidate& c : front.candidates())
      CHECK((c.predicted_error() == 0) == std::isinf(c.predicted_sqnr_db()));
    CHECK_FALSE(front.candidates(0).plan_summary().empty());
  }

  // The same search again: answered from the stored result at once.
  v1::SearchJob again = Parse<v1::SearchJob>(
      server.Cli({"--json", "search", "start", model, "--device", "host", "--device", "raspberry-pi-5"}));
  CHECK(again.id() != job.id());
  CHECK(again.state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(again.from_cache());
  REQUIRE(again.fronts_size() == 2);
  CHECK(again.fronts(0).candidates_size() == job.fronts(0).candidates_size());

  CommandResult table = server.Cli({"search", "show", job.id()});
  REQUIRE(table.exit_code == 0);
  CHECK_THAT(table.out, Contains("raspberry-pi-5") && Contains("LATENCY ms (pred)") && Contains("uniform int8"));
  CommandResult list = server.Cli({"search", "list"});
  CHECK_THAT(list.out, Contains(job.id()) && Contains("2 searches"));

  // The chart: valid SVG that a real renderer turns into a non-empty picture.
  const std::string svg = dir.File("front.svg"), png = dir.File("front.png");
  CommandResult plot = server.Cli({"search", "plot", job.id(), "-o", svg});
  INFO(plot.err);
  REQUIRE(plot.exit_code == 0);
  const std::string text = ReadText(svg);
  CHECK_THAT(text, Contains("<svg") && Contains("latency, ms") && Contains("file size, MB (predicted)") &&
                       Contains("uniform int8") && Contains("balanced knee") && Contains("raspberry-pi-5"));
  CommandResult render = Run({"/usr/bin/rsvg-convert", svg, "-o", png});
  INFO(render.err);
  REQUIRE(render.exit_code == 0);
  const std::string image = ReadText(png);
  REQUIRE(image.size() > 10000);
  CHECK(image.substr(1, 3) == "PNG");
  // IHDR: width and height, big-endian, at bytes 16..23.
  auto be32 = [&](size_t at) {
    return (static_cast<uint32_t>(static_cast<unsigned char>(image[at])) << 24) |
           (static_cast<uint32_t>(static_cast<unsigned char>(image[at + 1])) << 16) |
           (static_cast<uint32_t>(static_cast<unsigned char>(image[at + 2])) << 8) |
           static_cast<uint32_t>(static_cast<unsigned char>(image[at + 3]));
  };
  CHECK(be32(16) == 1120);  // two panels of 560
  CHECK(be32(20) == 460);
}

TEST_CASE("On host the picks are measured before they are named: the fastest is never slower than uniform fp32 or int8",
          "[e2e][search]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  const std::string model = UploadCls(server);
  const v1::SearchJob job = Parse<v1::SearchJob>(
      server.Cli({"--json", "search", "start", model, "--device", "host", "--device", "raspberry-pi-5", "--device",
                  "iphone-15-pro", "--time-budget", "10", "--watch"}));
  REQUIRE(job.state() == v1::JOB_STATE_SUCCEEDED);
  REQUIRE(job.fronts_size() == 3);
  auto front_of = [&job](const std::string& id) -> const v1::DeviceFront& {
    for (const v1::DeviceFront& f : job.fronts()) {
      if (f.device_id() == id) return f;
    }
    FAIL("no front for " << id);
    return job.fronts(0);
  };
  const v1::DeviceFront& host = front_of("host");
  const v1::DeviceFront& pi = front_of("raspberry-pi-5");
  // Core ML computes fp16: its front offers w*a16 options, which only its own export flavour writes.
  const v1::DeviceFront& iphone = front_of("iphone-15-pro");
  const double fastest = CheckFastestMeasuredBeatsBaselines(host);
  // Measured figures are measured: SQNR from running the export beside the original.
  for (const v1::Candidate& c : host.candidates()) {
    if (c.has_measured()) CHECK(c.measured().sqnr_db() > 0);
  }
  // The predicted errors were checked against exports of candidates near the floor, on every
  // device in its own export flavour, and scaled where those measured worse.
  for (const v1::DeviceFront* f : {&host, &pi, &iphone}) {
    INFO(f->device_id() << ": " << f->error_calibration());
    CHECK_THAT(f->error_calibration(), Contains("near the SQNR floor exported and run on the calibration inputs"));
    for (const std::string& w : f->warnings()) CHECK_THAT(w, !Contains("rest on the per-layer sensitivities alone"));
  }
  // A phone is not this machine: its picks stand on predictions.
  CHECK(pi.measured_picks().empty());
  for (const v1::Candidate& c : pi.candidates()) CHECK_FALSE(c.has_measured());

  // The "fastest" recommendation is the measured fastest, and says so.
  const v1::RecommendResponse answer =
      Parse<v1::RecommendResponse>(server.Cli({"--json", "recommend", model, "--device", "host"}));
  bool saw_fastest = false;
  for (const v1::Recommendation& r : answer.recommendations()) {
    // What was measured keeps the floor: an export measured below it is never named.
    if (r.candidate().has_measured()) CHECK(r.candidate().measured().sqnr_db() >= 10);
    if (r.name().find("fastest") == std::string::npos) continue;
    saw_fastest = true;
    REQUIRE(r.candidate().has_measured());
    CHECK(r.candidate().measured().latency_ms() == Approx(fastest));
    CHECK_THAT(r.why(), Contains("measured"));
  }
  CHECK(saw_fastest);
  CommandResult shown = server.Cli({"search", "show", job.id()});
  CHECK_THAT(shown.out, Contains("measured here") && Contains("LATENCY ms (meas)"));
}

TEST_CASE("Recommend names the trade-offs from a stored front or from a search run for it", "[e2e][search]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  const std::string model = UploadCls(server);
  // No stored front yet: a search runs for the request.
  v1::RecommendResponse first =
      Parse<v1::RecommendResponse>(server.Cli({"--json", "recommend", model, "--device", "host"}));
  CHECK_FALSE(first.from_stored_front());
  CHECK(first.constraints_met());
  REQUIRE(first.recommendations_size() >= 1);
  std::string names;
  for (const v1::Recommendation& r : first.recommendations()) {
    names += r.name() + ";";
    CHECK_FALSE(r.why().empty());
    CHECK(r.candidate().predicted_sqnr_db() >= 10);
  }
  CHECK_THAT(names,
             Contains("fastest") && Contains("smallest") && Contains("most accurate") && Contains("balanced knee"));

  // A tighter request is answered from the stored front, within its limits.
  const double limit = first.recommendations(0).candidate().predicted_latency_ms() * 1.5;
  v1::RecommendResponse second = Parse<v1::RecommendResponse>(
      server.Cli({"--json", "recommend", model, "--device", "host", "--max-latency-ms", std::to_string(limit)}));
  CHECK(second.from_stored_front());
  CHECK(second.search_id() == first.search_id());
  for (const v1::Recommendation& r : second.recommendations()) CHECK(r.candidate().predicted_latency_ms() <= limit);

  CommandResult text = server.Cli({"recommend", model, "--device", "host"});
  CHECK(text.exit_code == 0);
  CHECK_THAT(text.out, Contains("balanced knee") && Contains("from a stored front"));
  CHECK(server.Cli({"recommend", model, "--device", "pixel-99"}).exit_code == 1);

  // Limits no answer can hold are refused before the stored front could answer them.
  auto stub = v1::SearchService::NewStub(server.Channel());
  for (const auto& [field, edit] : std::vector<std::pair<std::string, std::function<void(v1::RecommendRequest*)>>>{
           {"constraints.max_latency_ms is nan",
            [](v1::RecommendRequest* r) {
              r->mutable_constraints()->set_max_latency_ms(std::numeric_limits<double>::quiet_NaN());
            }},
           {"constraints.min_top1_agreement is 2",
            [](v1::RecommendRequest* r) { r->mutable_constraints()->set_min_top1_agreement(2); }},
           {"output_weights['x'] is -1", [](v1::RecommendRequest* r) { (*r->mutable_output_weights())["x"] = -1; }},
       }) {
    v1::RecommendRequest request;
    request.set_model_id(model);
    request.set_device_id("host");
    edit(&request);
    grpc::ClientContext context;
    server.Authorize(&context);
    v1::RecommendResponse response;
    const grpc::Status status = stub->Recommend(&context, request, &response);
    INFO(field << ": " << status.error_message());
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(status.error_message(), Contains(field));
  }
}

TEST_CASE("PP-OCRv4 det's front on host beats uniform int8 and fp16 or says why not", "[e2e][search]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  const std::string model = UploadDet(server);
  // Measuring det's sensitivities takes ~65 s on a quiet 2-core machine and several times that
  // while it compiles: a short search budget and a long wait.
  v1::SearchJob job = Parse<v1::SearchJob>(
      server.Cli({"--json", "search", "start", model, "--device", "host", "--time-budget", "15", "--watch"},
                 std::chrono::seconds(420)));
  REQUIRE(job.state() == v1::JOB_STATE_SUCCEEDED);
  REQUIRE(job.fronts_size() == 1);
  // Its phases with their measured wall times, the sensitivities' and host's table among them.
  std::map<std::pair<int, std::string>, double> seconds;
  for (const v1::PhaseTime& t : job.phase_times()) seconds[{t.phase(), t.device_id()}] += t.seconds();
  CHECK(seconds[{v1::PHASE_MEASURING_SENSITIVITY, ""}] > 1);
  CHECK(seconds[{v1::PHASE_BUILDING_TABLE, "host"}] > 0);
  CHECK(seconds[{v1::PHASE_SEARCHING, "host"}] > 0);
  int judged = 0;
  for (const v1::Candidate& b : job.fronts(0).baselines()) {
    REQUIRE(b.tags_size() == 2);
    INFO(b.tags(0) << ": " << b.tags(1));
    std::cout << "PP-OCRv4 det on host, " << b.tags(0) << ": " << b.tags(1) << "\n";
    if (b.tags(0) != "uniform int8" && b.tags(0) != "uniform fp16" && b.tags(0) != "uniform fp16 weights") continue;
    ++judged;
    const std::string& verdict = b.tags(1);
    const bool explained = verdict.rfind("dominated by #", 0) == 0 || verdict.rfind("outside the limits", 0) == 0 ||
                           verdict.rfind("on the front", 0) == 0;
    CHECK(explained);
    if (verdict.rfind("dominated by #", 0) == 0) {
      const int index = std::stoi(verdict.substr(14));
      REQUIRE(index < job.fronts(0).candidates_size());
      const v1::Candidate& c = job.fronts(0).candidates(index);
      CHECK(c.predicted_latency_ms() <= b.predicted_latency_ms());
      CHECK(c.predicted_size_bytes() <= b.predicted_size_bytes());
      CHECK(c.predicted_error() <= b.predicted_error());
    }
  }
  // fp16 is a baseline as the CPU flavour writes it (fp16 weights, computed in fp32) on any CPU.
  CHECK(judged == 2);
  CheckFastestMeasuredBeatsBaselines(job.fronts(0));
}

TEST_CASE("Impossible limits are answered with the binding constraint and the closest candidates", "[e2e][search]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  const std::string model = UploadCls(server);
  v1::SearchJob job = Parse<v1::SearchJob>(server.Cli(
      {"--json", "search", "start", model, "--device", "raspberry-pi-4", "--max-latency-ms", "0.001", "--watch"}));
  CHECK(job.state() == v1::JOB_STATE_SUCCEEDED);
  REQUIRE(job.fronts_size() == 1);
  const v1::DeviceFront& front = job.fronts(0);
  CHECK_FALSE(front.constraints_met());
  CHECK_THAT(front.binding_constraint(), Contains("max latency"));
  CHECK(front.candidates_size() > 0);
  CommandResult text = server.Cli({"search", "show", job.id()});
  CHECK_THAT(text.out, Contains("No candidate meets the constraints"));
}

TEST_CASE("Unknown models and devices are NOT_FOUND and bad specs INVALID_ARGUMENT", "[e2e][search]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  const std::string model = UploadCls(server);
  CommandResult no_model = server.Cli({"search", "start", "m-0000000000000000", "--device", "host"});
  CHECK(no_model.exit_code == 1);
  CHECK_THAT(no_model.err, Contains("NOT_FOUND"));
  CommandResult no_device = server.Cli({"search", "start", model, "--device", "pixel-99"});
  CHECK(no_device.exit_code == 1);
  CHECK_THAT(no_device.err, Contains("NOT_FOUND") && Contains("pixel-99"));
  CommandResult exact_peak = server.Cli(
      {"search", "start", model, "--device", "host", "--strategy", "exact", "--objectives", "latency,peak-memory"});
  CHECK(exact_peak.exit_code == 1);
  CHECK_THAT(exact_peak.err, Contains("INVALID_ARGUMENT") && Contains("nsga2"));

  // Over gRPC, fields the CLI would never send: each refused naming the field, nothing queued.
  auto stub = v1::SearchService::NewStub(server.Channel());
  auto start = [&](const std::function<void(v1::SearchSpec*)>& edit) {
    v1::SearchSpec spec;
    spec.set_model_id(model);
    spec.add_device_ids("host");
    edit(&spec);
    grpc::ClientContext context;
    server.Authorize(&context);
    v1::SearchJob job;
    return stub->StartSearch(&context, spec, &job);
  };
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const std::vector<std::pair<std::string, std::function<void(v1::SearchSpec*)>>> bad = {
      {"time_budget_seconds", [&](v1::SearchSpec* s) { s->set_time_budget_seconds(nan); }},
      {"time_budget_seconds", [&](v1::SearchSpec* s) { s->set_time_budget_seconds(inf); }},
      {"constraints.max_latency_ms", [&](v1::SearchSpec* s) { s->mutable_constraints()->set_max_latency_ms(nan); }},
      {"constraints.min_sqnr_db", [&](v1::SearchSpec* s) { s->mutable_constraints()->set_min_sqnr_db(inf); }},
      {"strategy 99", [&](v1::SearchSpec* s) { s->set_strategy(static_cast<v1::Strategy>(99)); }},
      {"max_candidates is 2147483647", [&](v1::SearchSpec* s) { s->set_max_candidates(2147483647); }},
      {"constraints.min_top1_agreement is 1.5",
       [&](v1::SearchSpec* s) { s->mutable_constraints()->set_min_top1_agreement(1.5); }},
      {"constraints.min_mask_iou is nan", [&](v1::SearchSpec* s) { s->mutable_constraints()->set_min_mask_iou(nan); }},
      {"output_weights['y'] is nan", [&](v1::SearchSpec* s) { (*s->mutable_output_weights())["y"] = nan; }},
      {"output_weights: every output weighs 0", [&](v1::SearchSpec* s) { (*s->mutable_output_weights())["y"] = 0; }},
  };
  for (const auto& [field, edit] : bad) {
    const grpc::Status status = start(edit);
    INFO(field << ": " << status.error_message());
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(status.error_message(), Contains(field));
  }
  CHECK_THAT(server.Cli({"search", "list"}).out, Contains("0 searches"));
}

// A serialized TensorProto named `name` of `dims`, filled with normal draws of `seed`.
void WriteTensor(const std::string& path, const std::string& name, const std::vector<int64_t>& dims, uint32_t seed) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  int64_t n = 1;
  for (int64_t d : dims) {
    t.add_dims(d);
    n *= d;
  }
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < n; ++i) t.add_float_data(normal(rng));
  std::ofstream(path, std::ios::binary) << t.SerializeAsString();
}

TEST_CASE("A search on uploaded calibration samples measures fidelity on them", "[e2e][search]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  const std::string model = UploadCls(server);
  // Two samples in the ONNX test-data layout (a directory of input_N.pb) and one as a bare file.
  for (int k = 0; k < 2; ++k) {
    std::filesystem::create_directories(dir.File("sample" + std::to_string(k)));
    WriteTensor(dir.File("sample" + std::to_string(k) + "/input_0.pb"), "x", {1, 3, 48, 192}, 7 + k);
  }
  WriteTensor(dir.File("third.pb"), "x", {1, 3, 48, 192}, 9);
  // And an image made into a sample by 'squeeze calibration from-image' (no server needed).
  {
    std::ofstream ppm(dir.File("line.ppm"), std::ios::binary);
    ppm << "P6\n192 48\n255\n";
    for (int y = 0; y < 48; ++y) {
      for (int x = 0; x < 192; ++x) {
        const char v = static_cast<char>(((x / 6 + y / 8) % 2) ? 230 : 20);
        ppm << v << v << v;
      }
    }
  }
  CommandResult made = Run({Binary("squeeze"), "calibration", "from-image", dir.File("line.ppm"), "--shape",
                            "1,3,48,192", "-o", dir.File("from-image")});
  INFO(made.err);
  REQUIRE(made.exit_code == 0);
  CHECK_THAT(made.out, Contains("sample_0"));
  REQUIRE(std::filesystem::exists(dir.File("from-image/sample_0/input_0.pb")));

  SECTION("good samples: the job says its fidelity is not synthetic") {
    CommandResult watched =
        server.Cli({"--json", "search", "start", model, "--device", "host", "--calibration", dir.File("sample0"),
                    "--calibration", dir.File("sample1"), "--calibration", dir.File("third.pb"), "--calibration",
                    dir.File("from-image/sample_0"), "--watch"});
    INFO(watched.err << server.log());
    v1::SearchJob job = Parse<v1::SearchJob>(watched);
    CHECK(job.state() == v1::JOB_STATE_SUCCEEDED);
    CHECK_FALSE(job.synthetic_calibration());
    CHECK(job.calibration_samples() == 4);
    CHECK(job.spec().calibration_size() == 0);  // their bytes are not sent back
    REQUIRE(job.fronts_size() == 1);
    CHECK(job.fronts(0).candidates_size() > 1);
  }
  SECTION("a sample of the wrong shape is INVALID_ARGUMENT and no job is made") {
    WriteTensor(dir.File("small.pb"), "x", {1, 3, 32, 100}, 3);
    CommandResult bad =
        server.Cli({"search", "start", model, "--device", "host", "--calibration", dir.File("small.pb")});
    CHECK(bad.exit_code == 1);
    CHECK_THAT(bad.err, Contains("INVALID_ARGUMENT") && Contains("1,3,48,192") && Contains("1,3,32,100"));
    CHECK_THAT(server.Cli({"search", "list"}).out, Contains("0 searches"));
  }
  SECTION("a directory without input_N.pb files is refused by the CLI") {
    std::filesystem::create_directories(dir.File("empty"));
    CommandResult bad = server.Cli({"search", "start", model, "--device", "host", "--calibration", dir.File("empty")});
    CHECK(bad.exit_code == 2);
    CHECK_THAT(bad.err, Contains("input_N.pb"));
  }
}

TEST_CASE("A model that does not run on its calibration inputs fails the search at once, saying why", "[e2e][search]") {
  // A sample-rate-like int64 input: synthetic calibration gives it 0, which Range refuses as a step.
  onnx::ModelProto proto;
  REQUIRE(onnx::OnnxParser::Parse(proto, R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    stepped (float[1, 2, 4, 4] x, int64 step) => (float[1, 3, 4, 4] y, int64[N] r) {
      w = Constant <value = float[3, 2, 1, 1] w_init {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}> ()
      y = Conv (x, w)
      start = Constant <value = int64 {0}> ()
      limit = Constant <value = int64 {8}> ()
      r = Range (start, limit, step)
    }
  )onnx")
              .IsOK());
  TempDir dir;
  {
    std::ofstream file(dir.File("stepped.onnx"), std::ios::binary);
    file << proto.SerializeAsString();
  }
  RunningServer server(dir.File("data"));
  const v1::Model model = Parse<v1::Model>(server.Cli({"--json", "models", "upload", dir.File("stepped.onnx")}));
  const v1::SearchJob started =
      Parse<v1::SearchJob>(server.Cli({"--json", "search", "start", model.id(), "--device", "host"}));
  const v1::SearchJob job = WaitFinished(server, started.id());
  INFO(server.log());
  CHECK(job.state() == v1::JOB_STATE_FAILED);
  CHECK_THAT(job.error(), Contains("before any compression") && Contains("zeros for 'step' (int64)") &&
                              Contains("--calibration") && Contains("--input-value NAME=V"));
  CHECK(job.fronts_size() == 0);

  // The flag the error names: the step gets a value the model runs on, and the search succeeds.
  const v1::SearchJob given = Parse<v1::SearchJob>(server.Cli(
      {"--json", "search", "start", model.id(), "--device", "pixel-8", "--input-value", "step=2", "--watch"}));
  CHECK(given.state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(given.synthetic_calibration());
  CHECK(given.spec().input_values().at("step") == 2);
  // Values for no input, or beside uploaded samples, are refused before anything runs.
  CommandResult unknown =
      server.Cli({"search", "start", model.id(), "--device", "pixel-8", "--input-value", "stride=2"});
  CHECK(unknown.exit_code != 0);
  CHECK_THAT(unknown.err, Contains("INVALID_ARGUMENT") && Contains("its inputs are"));
  CommandResult malformed = server.Cli({"search", "start", model.id(), "--device", "pixel-8", "--input-value", "step"});
  CHECK(malformed.exit_code == 2);
  CHECK_THAT(malformed.err, Contains("expected NAME=V"));
}

TEST_CASE("The outputs that matter are named at search time, by default each output weighs the same", "[e2e][search]") {
  // Two heads of one Conv trunk: 'boxes' 100x larger than 'mask'. Pooled, the mask's error would
  // not count at all.
  onnx::ModelProto proto;
  REQUIRE(onnx::OnnxParser::Parse(proto, R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    heads (float[1, 8, 8, 8] x) => (float[1, 8, 8, 8] boxes, float[1, 1, 8, 8] mask) {
      t = Conv <pads = [1, 1, 1, 1]> (x, wt)
      r = Relu (t)
      b = Conv (r, wb)
      k = Constant <value = float[1] k_init {100.0}> ()
      boxes = Mul (b, k)
      m = Conv (r, wm)
      mask = Sigmoid (m)
    }
  )onnx")
              .IsOK());
  auto add = [&](const std::string& name, std::vector<int64_t> dims) {
    onnx::TensorProto* t = proto.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    int64_t n = 1;
    for (int64_t d : dims) {
      t->add_dims(d);
      n *= d;
    }
    for (int64_t i = 0; i < n; ++i) t->add_float_data(std::sin(0.31f * static_cast<float>(i)) * 0.3f);
  };
  add("wt", {8, 8, 3, 3});
  add("wb", {8, 8, 1, 1});
  add("wm", {1, 8, 1, 1});
  TempDir dir;
  {
    std::ofstream file(dir.File("heads.onnx"), std::ios::binary);
    file << proto.SerializeAsString();
  }
  RunningServer server(dir.File("data"));
  const v1::Model model = Parse<v1::Model>(server.Cli({"--json", "models", "upload", dir.File("heads.onnx")}));
  REQUIRE(model.analysis().outputs_size() == 2);
  CHECK(model.analysis().outputs(1).name() == "mask");
  CHECK_THAT(server.Cli({"models", "show", model.id()}).out, Contains("outputs boxes, mask"));

  const v1::SearchJob equal =
      Parse<v1::SearchJob>(server.Cli({"--json", "search", "start", model.id(), "--device", "pixel-8", "--watch"}));
  INFO(server.log());
  REQUIRE(equal.state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(equal.fronts(0).error_outputs() == "equal over 2 outputs");

  const v1::SearchJob mask = Parse<v1::SearchJob>(
      server.Cli({"--json", "search", "start", model.id(), "--device", "pixel-8", "--output", "mask=2", "--watch"}));
  REQUIRE(mask.state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(mask.spec().output_weights().at("mask") == 2);
  CHECK(mask.fronts(0).error_outputs() == "mask 1");
  CHECK_FALSE(mask.from_cache());  // other weights, another search
  CHECK_THAT(server.Cli({"search", "show", mask.id()}).out, Contains("errors over: mask 1"));

  // A task floor: the error check's exports report the mask IoU they measured, and the floor
  // shapes the search (another search than the one without it).
  const v1::SearchJob floored = Parse<v1::SearchJob>(server.Cli(
      {"--json", "search", "start", model.id(), "--device", "pixel-8", "--min-mask-iou", "0.99", "--watch"}));
  REQUIRE(floored.state() == v1::JOB_STATE_SUCCEEDED);
  CHECK_FALSE(floored.from_cache());
  CHECK(floored.spec().constraints().min_mask_iou() == 0.99);
  CHECK_THAT(floored.fronts(0).error_calibration(), Contains("mask IoU"));
  CommandResult over = server.Cli({"search", "start", model.id(), "--device", "pixel-8", "--min-mask-iou", "1.5"});
  CHECK(over.exit_code != 0);
  CHECK_THAT(over.err, Contains("--min-mask-iou") && Contains("not in range"));

  // An output the model does not have is refused at once, naming the ones it has; nothing queued.
  CommandResult unknown = server.Cli({"search", "start", model.id(), "--device", "pixel-8", "--output", "scores"});
  CHECK(unknown.exit_code == 1);
  CHECK_THAT(unknown.err,
             Contains("INVALID_ARGUMENT") && Contains("no output 'scores'") && Contains("'boxes', 'mask'"));
  CommandResult malformed = server.Cli({"search", "start", model.id(), "--device", "pixel-8", "--output", "mask=x"});
  CHECK(malformed.exit_code == 2);
  CHECK_THAT(malformed.err, Contains("expected NAME or NAME=W"));
  CHECK_THAT(server.Cli({"search", "list"}).out, Contains("3 searches"));
}

TEST_CASE("A search cancelled while it measures sensitivities ends cancelled", "[e2e][search]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  const std::string model = UploadDet(server);
  v1::SearchJob job = Parse<v1::SearchJob>(server.Cli({"--json", "search", "start", model, "--device", "host"}));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  v1::SearchJob seen;
  while (std::chrono::steady_clock::now() < deadline) {
    seen = Parse<v1::SearchJob>(server.Cli({"--json", "search", "show", job.id()}));
    if (seen.phase() == v1::PHASE_MEASURING_SENSITIVITY || seen.state() >= v1::JOB_STATE_SUCCEEDED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(seen.phase() == v1::PHASE_MEASURING_SENSITIVITY);
  CHECK(server.Cli({"search", "cancel", job.id()}).exit_code == 0);
  v1::SearchJob ended = WaitFinished(server, job.id());
  CHECK(ended.state() == v1::JOB_STATE_CANCELLED);
  CHECK(ended.fronts_size() == 0);
}

TEST_CASE("A search interrupted by a crash is run again after the restart", "[e2e][search]") {
  TempDir dir;
  const std::string data = dir.File("data");
  std::string id;
  {
    RunningServer server(data);
    const std::string model = UploadCls(server);
    id = Parse<v1::SearchJob>(server.Cli({"--json", "search", "start", model, "--device", "host", "--strategy", "nsga2",
                                          "--time-budget", "3"}))
             .id();
    // Wait until it runs, then kill the server without warning.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline &&
           Parse<v1::SearchJob>(server.Cli({"--json", "search", "show", id})).state() != v1::JOB_STATE_RUNNING) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    server.Kill();
  }
  RunningServer server(data);
  v1::SearchJob job = WaitFinished(server, id);
  INFO(server.log());
  CHECK(job.state() == v1::JOB_STATE_SUCCEEDED);
  REQUIRE(job.fronts_size() == 1);
  CHECK(job.fronts(0).candidates_size() > 0);
  CHECK_THAT(server.log(), Contains("running it again"));
}

}  // namespace
}  // namespace squeeze::testing
