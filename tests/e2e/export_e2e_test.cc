// Exports through the real binaries: ExportService.ExportModel over gRPC (progress, chunks, report,
// the cached repeat), `squeeze export` writing the file and report, `squeeze search show` with the
// measured columns, and the status codes of bad requests.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <map>
#include <thread>

#include "model/export_flavour.h"
#include "squeeze/v1/export.grpc.pb.h"
#include "squeeze/v1/model.pb.h"
#include "squeeze/v1/search.pb.h"
#include "tests/e2e/server_fixture.h"
#include "tests/model/export_models.h"

namespace squeeze::testing {
namespace {

using Catch::Matchers::Contains;

struct Streamed {
  grpc::Status status;
  std::vector<std::string> phases;
  std::string bytes;
  v1::ExportReport report;
  int chunks = 0;
};

Streamed ExportOverRpc(const RunningServer& server, const v1::ExportRequest& request) {
  auto stub = v1::ExportService::NewStub(server.Channel());
  grpc::ClientContext context;
  server.Authorize(&context, std::chrono::seconds(120));
  auto reader = stub->ExportModel(&context, request);
  Streamed s;
  v1::ExportChunk chunk;
  while (reader->Read(&chunk)) {
    if (chunk.has_progress()) s.phases.push_back(chunk.progress().phase());
    if (chunk.payload_case() == v1::ExportChunk::kData) {
      s.bytes += chunk.data();
      ++s.chunks;
    }
    if (chunk.has_report()) s.report = chunk.report();
  }
  s.status = reader->Finish();
  return s;
}

v1::ExportRequest Request(const std::string& job, const std::string& device, int candidate) {
  v1::ExportRequest r;
  r.set_job_id(job);
  r.set_device_id(device);
  r.set_candidate(candidate);
  return r;
}

// A small residual model (BN, residual Add, depthwise conv, Concat) as an uploaded file.
std::string WriteResidualModel(const TempDir& dir) {
  const std::string path = dir.File("residual.onnx");
  std::ofstream(path, std::ios::binary) << model::testing::ResidualProto(model::testing::kSmallFirstHalf,
                                                                         model::testing::kSmallFirstHalf)
                                               .SerializeAsString();
  return path;
}

TEST_CASE("A candidate is exported over gRPC and with the CLI, cached, and shown measured beside predicted",
          "[e2e][export]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  const std::string model = Parse<v1::Model>(server.Cli({"--json", "models", "upload", WriteResidualModel(dir)})).id();
  const v1::SearchJob job = Parse<v1::SearchJob>(
      server.Cli({"--json", "search", "start", model, "--device", "host", "--device", "pixel-8", "--watch"}));
  REQUIRE(job.state() == v1::JOB_STATE_SUCCEEDED);
  REQUIRE(job.fronts(0).device_id() == "host");
  REQUIRE(job.fronts(0).candidates_size() > 1);
  const int last = job.fronts(0).candidates_size() - 1;  // the most accurate end of the front

  const Streamed first = ExportOverRpc(server, Request(job.id(), "host", last));
  INFO(first.status.error_message() << server.log());
  REQUIRE(first.status.ok());
  CHECK(first.phases.front() == "loading");
  CHECK(std::find(first.phases.begin(), first.phases.end(), "verifying") != first.phases.end());
  CHECK(first.chunks >= 1);
  CHECK(static_cast<int64_t>(first.bytes.size()) == first.report.file_bytes());
  onnx::ModelProto exported;
  REQUIRE(exported.ParseFromString(first.bytes));
  CHECK(exported.graph().output(0).name() == "y");
  CHECK(first.report.candidate() == last);
  CHECK(first.report.layers_size() == 4);
  CHECK(first.report.measured().samples() == 2);
  CHECK(first.report.measured().synthetic_calibration());
  CHECK(first.report.measured().latency_measured());  // host: this machine
  CHECK(first.report.measured().latency_ms() > 0);
  CHECK(first.report.predicted_latency_ms() == Approx(job.fronts(0).candidates(last).predicted_latency_ms()));
  CHECK_FALSE(first.report.from_cache());
  CHECK(first.report.file_sha256().size() == 64);

  SECTION("the same export again is answered from the stored file") {
    const Streamed again = ExportOverRpc(server, Request(job.id(), "host", last));
    REQUIRE(again.status.ok());
    CHECK(again.report.from_cache());
    CHECK(again.bytes == first.bytes);
  }
  SECTION("a device that is not this machine gets no latency measurement") {
    const Streamed phone = ExportOverRpc(server, Request(job.id(), "pixel-8", 0));
    INFO(phone.status.error_message());
    REQUIRE(phone.status.ok());
    CHECK_FALSE(phone.report.measured().latency_measured());
    CHECK(std::isfinite(phone.report.measured().cosine()));
  }
  SECTION("the CLI writes the file and the report, and search show puts measured figures beside predicted") {
    const std::string out = dir.File("knee.onnx"), report = dir.File("knee.json");
    CommandResult cli = server.Cli(
        {"export", job.id(), "--device", "host", "--recommendation", "balanced knee", "-o", out, "--report", report});
    INFO(cli.out << cli.err);
    REQUIRE(cli.exit_code == 0);
    CHECK_THAT(cli.out, Contains("MEASURED") && Contains("output SQNR dB"));
    CHECK_THAT(cli.err, Contains("verifying"));
    onnx::ModelProto m;
    std::ifstream in(out, std::ios::binary);
    REQUIRE(m.ParseFromIstream(&in));
    v1::ExportReport r;
    std::ifstream rj(report);
    std::stringstream text;
    text << rj.rdbuf();
    REQUIRE(google::protobuf::util::JsonStringToMessage(text.str(), &r).ok());
    CHECK(r.job_id() == job.id());
    CommandResult show = server.Cli({"search", "show", job.id()});
    CHECK_THAT(show.out, Contains("SQNR dB (meas)") && Contains("LATENCY ms (meas)"));
    const v1::SearchJob shown = Parse<v1::SearchJob>(server.Cli({"--json", "search", "show", job.id()}));
    CHECK(shown.fronts(0).candidates(last).has_measured());
    CHECK(shown.fronts(0).candidates(last).measured().sqnr_db() == Approx(first.report.measured().sqnr_db()));
    CommandResult csv = server.Cli({"search", "show", job.id(), "--csv"});
    CHECK_THAT(csv.out, Contains("measured_sqnr_db"));
  }
}

TEST_CASE("A two-output detector's export is measured per output, in the report and in search show", "[e2e][export]") {
  // UltraFace (faceplugin-face-recognition-js, installed by deploy/install-deps.sh): per-anchor
  // face/background probabilities [1, 4420, 2] and box coordinates [1, 4420, 4].
  const std::string path = std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/bench/ultraface_rfb320_fr_detect.onnx";
  TempDir dir;
  RunningServer server(dir.File("data"));
  const std::string model = Parse<v1::Model>(server.Cli({"--json", "models", "upload", path})).id();
  const v1::SearchJob job = Parse<v1::SearchJob>(
      server.Cli({"--json", "search", "start", model, "--device", "pixel-8", "--time-budget", "10", "--watch"}));
  REQUIRE(job.state() == v1::JOB_STATE_SUCCEEDED);
  REQUIRE(job.fronts(0).candidates_size() > 0);
  const std::string out = dir.File("fastest.onnx");
  CommandResult cli = server.Cli({"export", job.id(), "--device", "pixel-8", "--candidate", "0", "-o", out});
  INFO(cli.out << cli.err);
  REQUIRE(cli.exit_code == 0);
  CHECK_THAT(cli.out, Contains("measured per output (the SQNR above: equal over 2 outputs)") &&
                          Contains("'scores' 1x4420x2 (sequence scores, weight 0.50)") &&
                          Contains("argmax agreement") && Contains("'boxes' 1x4420x4 (map, weight 0.50)"));

  const v1::SearchJob shown = Parse<v1::SearchJob>(server.Cli({"--json", "search", "show", job.id()}));
  const v1::MeasuredFigures& measured = shown.fronts(0).candidates(0).measured();
  REQUIRE(measured.outputs_size() == 2);
  const v1::OutputFidelity& scores = measured.outputs(0);
  CHECK(scores.name() == "scores");
  CHECK(scores.kind() == "sequence scores");
  REQUIRE(scores.metrics_size() == 1);
  CHECK(scores.metrics(0).name() == "argmax agreement");
  CHECK(scores.metrics(0).value() >= 0);
  CHECK(scores.metrics(0).value() <= 1);
  CHECK(measured.outputs(1).name() == "boxes");
  CHECK(measured.outputs(1).metrics_size() == 0);
  // Each output weighs the same: the model's SQNR lies between the two outputs' own.
  CHECK(scores.weight() == 0.5);
  CHECK(measured.outputs(1).weight() == 0.5);
  CHECK(measured.sqnr_db() >= std::min(scores.sqnr_db(), measured.outputs(1).sqnr_db()) - 1e-9);
  CHECK(measured.sqnr_db() <= std::max(scores.sqnr_db(), measured.outputs(1).sqnr_db()) + 1e-9);
  CommandResult show = server.Cli({"search", "show", job.id()});
  CHECK_THAT(show.out, Contains("#0 measured per output: 'scores'"));
  // The chart's tooltip of the exported candidate gives the same per-output figures.
  CommandResult plot = server.Cli({"search", "plot", job.id(), "-o", dir.File("front.svg")});
  REQUIRE(plot.exit_code == 0);
  CHECK_THAT(ReadText(dir.File("front.svg")),
             Contains("dB predicted; measured ") && Contains("; 'scores' 1x4420x2 (sequence scores"));
}

TEST_CASE("A Jetson's export is TensorRT's flavour: int8 Q/DQ of zero point 0, its rules checked, measured here",
          "[e2e][export]") {
  // face-liveness (a real 57-layer classifier from npm): on the spec Jetson profile its fastest
  // candidates take int8 activations, which TensorRT wants symmetric.
  const std::string path = std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/bench/face_liveness_cls.onnx";
  TempDir dir;
  RunningServer server(dir.File("data"));
  CHECK_THAT(server.Cli({"devices", "show", "jetson-orin-nano"}).out,
             Contains("export flavour     tensorrt: w32a32, w16a16, w16a32, w2..8a32, w2..8a16, w2..8a8"));
  const std::string model = Parse<v1::Model>(server.Cli({"--json", "models", "upload", path})).id();
  const v1::SearchJob job = Parse<v1::SearchJob>(server.Cli(
      {"--json", "search", "start", model, "--device", "jetson-orin-nano", "--time-budget", "10", "--watch"}));
  REQUIRE(job.state() == v1::JOB_STATE_SUCCEEDED);
  REQUIRE(job.fronts(0).candidates_size() > 0);
  const std::string out = dir.File("jetson.onnx");
  CommandResult cli =
      server.Cli({"export", job.id(), "--device", "jetson-orin-nano", "--recommendation", "fastest", "-o", out});
  INFO(cli.out << cli.err);
  REQUIRE(cli.exit_code == 0);
  CHECK_THAT(cli.out, Contains("conformance: tensorrt: 6 rules held on") && Contains("output SQNR dB"));

  onnx::ModelProto file;
  {
    std::ifstream in(out, std::ios::binary);
    REQUIRE(file.ParseFromIstream(&in));
  }
  std::map<std::string, const onnx::TensorProto*> initializers;
  for (const onnx::TensorProto& t : file.graph().initializer()) initializers[t.name()] = &t;
  int quantize = 0, dequantize = 0;
  for (const onnx::NodeProto& n : file.graph().node()) {
    if (n.op_type() != "QuantizeLinear" && n.op_type() != "DequantizeLinear") continue;
    (n.op_type() == "QuantizeLinear" ? quantize : dequantize) += 1;
    INFO(n.name());
    REQUIRE(n.input_size() == 3);
    REQUIRE(initializers.count(n.input(2)) == 1);
    const onnx::TensorProto& zero_point = *initializers.at(n.input(2));
    CHECK(zero_point.data_type() == onnx::TensorProto::INT8);
    CHECK(zero_point.raw_data() == std::string(zero_point.raw_data().size(), '\0'));
  }
  CHECK(quantize > 10);  // int8 activations, not only weights
  CHECK(dequantize > quantize);

  // Another flavour on request: the file another runtime gets for the same plan, said so — the QNN
  // HTP's (whole-graph QDQ) for a candidate whose every layer it writes, else ONNX Runtime CPU's.
  // ONNX Runtime's CPU flavour writes no 16-bit activations, so a plan holding them is refused.
  auto writes_all = [](const v1::Candidate& c, model::ExportFlavour flavour) {
    for (const v1::LayerChoice& l : c.layers()) {
      if (!model::Realizes(flavour, l.weight_bits(), l.activation_bits())) return false;
    }
    return true;
  };
  int other_candidate = -1;
  std::string other_flavour;
  for (model::ExportFlavour f : {model::ExportFlavour::kQnn, model::ExportFlavour::kOrtCpu}) {
    for (const v1::Candidate& c : job.fronts(0).candidates()) {
      if (other_candidate < 0 && writes_all(c, f)) {
        other_candidate = c.index();
        other_flavour = std::string(model::FlavourName(f));
      }
    }
  }
  REQUIRE(other_candidate >= 0);
  CommandResult other =
      server.Cli({"export", job.id(), "--device", "jetson-orin-nano", "--candidate", std::to_string(other_candidate),
                  "--flavour", other_flavour, "-o", dir.File("other.onnx")});
  INFO(other_flavour << " " << other.out << other.err);
  REQUIRE(other.exit_code == 0);
  CHECK_THAT(other.out, Contains("conformance: " + other_flavour + ": ") && Contains(" rules held") &&
                            Contains("exported in the " + other_flavour + " flavour, not jetson-orin-nano's tensorrt"));
  int with_half = -1;  // the Jetson computes fp16: its front holds w16a16 layers
  for (const v1::Candidate& c : job.fronts(0).candidates()) {
    for (const v1::LayerChoice& l : c.layers()) {
      if (with_half < 0 && l.weight_bits() == 16 && l.activation_bits() == 16) with_half = c.index();
    }
  }
  REQUIRE(with_half >= 0);
  {
    CommandResult refused = server.Cli({"export", job.id(), "--device", "jetson-orin-nano", "--candidate",
                                        std::to_string(with_half), "--flavour", "ort-cpu", "-o", dir.File("cpu.onnx")});
    CHECK(refused.exit_code != 0);
    CHECK_THAT(refused.err, Contains("INVALID_ARGUMENT") && Contains("which the ort-cpu flavour does not write"));
  }
}

TEST_CASE("A phone NPU's export is whole-graph QDQ: no float op between quantized tensors, measured here",
          "[e2e][export]") {
  const std::string path = std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/bench/face_liveness_cls.onnx";
  TempDir dir;
  RunningServer server(dir.File("data"));
  CHECK_THAT(server.Cli({"devices", "show", "galaxy-s24-npu"}).out,
             Contains("export flavour     qnn: w16a16, w2..8a16, w2..8a8") && Contains("onnxruntime-qnn"));
  // The iPhone row is what ONNX Runtime's CoreML provider runs: fp16 only.
  CHECK_THAT(server.Cli({"devices", "show", "iphone-15-pro"}).out,
             Contains("export flavour     runtime-precision: w32a32, w16a16") && Contains("(version 2)"));
  const std::string model = Parse<v1::Model>(server.Cli({"--json", "models", "upload", path})).id();
  const v1::SearchJob job = Parse<v1::SearchJob>(
      server.Cli({"--json", "search", "start", model, "--device", "galaxy-s24-npu", "--time-budget", "10", "--watch"}));
  REQUIRE(job.state() == v1::JOB_STATE_SUCCEEDED);
  REQUIRE(job.fronts(0).candidates_size() > 0);
  for (const v1::Candidate& c : job.fronts(0).candidates()) {
    for (const v1::LayerChoice& l : c.layers()) {
      INFO(c.index() << " " << l.layer() << " " << l.option());
      // No fp32 and no float activations with integer weights: the HTP computes neither.
      CHECK(l.activation_bits() != 32);
    }
  }
  const std::string out = dir.File("npu.onnx");
  CommandResult cli =
      server.Cli({"export", job.id(), "--device", "galaxy-s24-npu", "--recommendation", "fastest", "-o", out});
  INFO(cli.out << cli.err);
  REQUIRE(cli.exit_code == 0);
  CHECK_THAT(cli.out, Contains("conformance: qnn: 6 rules held on") &&
                          Contains("float ops between quantized tensors: 0") && Contains("output SQNR dB"));
  const v1::ExportReport report = Parse<v1::ExportReport>(server.Cli(
      {"--json", "export", job.id(), "--device", "galaxy-s24-npu", "--recommendation", "fastest", "-o", out}));
  CHECK(report.float_ops_between_quantized() == 0);
  CHECK(report.quantized_activations() > 0);
  CHECK(std::isfinite(report.measured().sqnr_db()));
}

TEST_CASE("A search started with --verify gets its recommended candidates measured", "[e2e][export]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  const std::string model = Parse<v1::Model>(server.Cli({"--json", "models", "upload", WriteResidualModel(dir)})).id();
  const v1::SearchJob job =
      Parse<v1::SearchJob>(server.Cli({"--json", "search", "start", model, "--device", "host", "--verify", "--watch"}));
  REQUIRE(job.state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(job.spec().verify_recommended());
  const v1::RecommendResponse picks =
      Parse<v1::RecommendResponse>(server.Cli({"--json", "recommend", model, "--device", "host"}));
  REQUIRE(picks.recommendations_size() >= 1);
  // The recommendations come from the same stored front; the exports land in the background.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int measured = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const v1::SearchJob shown = Parse<v1::SearchJob>(server.Cli({"--json", "search", "show", job.id()}));
    measured = 0;
    for (const v1::Candidate& c : shown.fronts(0).candidates()) measured += c.has_measured();
    if (measured >= picks.recommendations_size()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  INFO(server.log());
  CHECK(measured >= picks.recommendations_size());
  CHECK(measured < job.fronts(0).candidates_size());  // only the recommended ones
}

TEST_CASE(
    "Bad exports: unknown job, device or candidate NOT_FOUND, bad fields INVALID_ARGUMENT, unfinished search "
    "FAILED_PRECONDITION",
    "[e2e][export]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  const std::string model = Parse<v1::Model>(server.Cli({"--json", "models", "upload", WriteResidualModel(dir)})).id();
  const v1::SearchJob job =
      Parse<v1::SearchJob>(server.Cli({"--json", "search", "start", model, "--device", "host", "--watch"}));
  REQUIRE(job.state() == v1::JOB_STATE_SUCCEEDED);
  auto code = [&](const v1::ExportRequest& r) { return ExportOverRpc(server, r).status.error_code(); };
  CHECK(code(Request("s-0000000000000000", "host", 0)) == grpc::StatusCode::NOT_FOUND);
  CHECK(code(Request(job.id(), "pixel-8", 0)) == grpc::StatusCode::NOT_FOUND);
  CHECK(code(Request(job.id(), "host", 9999)) == grpc::StatusCode::NOT_FOUND);
  // A negative index or a missing job is a bad field, not a missing candidate.
  CHECK(code(Request(job.id(), "host", -1)) == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(code(Request("", "host", 0)) == grpc::StatusCode::INVALID_ARGUMENT);
  v1::ExportRequest named = Request(job.id(), "host", 0);
  named.set_recommendation("cheapest");
  const Streamed unnamed = ExportOverRpc(server, named);
  CHECK(unnamed.status.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK_THAT(unnamed.status.error_message(), Contains("balanced knee"));
  v1::ExportRequest snpe = Request(job.id(), "host", 0);
  snpe.set_flavour("snpe");
  const Streamed unknown_flavour = ExportOverRpc(server, snpe);
  CHECK(unknown_flavour.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(unknown_flavour.status.error_message(),
             Contains("flavour 'snpe' is not one of ort-cpu, tensorrt, qnn, runtime-precision"));

  // A search still running: PP-OCRv4 det takes a while to measure.
  const std::string det =
      Parse<v1::Model>(server.Cli({"--json", "models", "upload",
                                   std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/ch_PP-OCRv4_det_infer.onnx",
                                   "--input-shape", "x=1,3,640,640"}))
          .id();
  const v1::SearchJob running =
      Parse<v1::SearchJob>(server.Cli({"--json", "search", "start", det, "--device", "host"}));
  const Streamed early = ExportOverRpc(server, Request(running.id(), "host", 0));
  CHECK(early.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CommandResult cli =
      server.Cli({"export", running.id(), "--device", "host", "--candidate", "0", "-o", dir.File("x.onnx")});
  CHECK(cli.exit_code == 1);
  CHECK_THAT(cli.err, Contains("JOB_STATE_"));
  CHECK_FALSE(std::ifstream(dir.File("x.onnx")).good());
  CHECK_FALSE(std::ifstream(dir.File("x.onnx.partial")).good());
  CHECK(server.Cli({"search", "cancel", running.id()}).exit_code == 0);
}

}  // namespace
}  // namespace squeeze::testing
