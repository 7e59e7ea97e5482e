// Measured device profiles uploaded to a running server: the CLI and PutDeviceProfile, versions,
// merges, refusals, and searches that predict from the uploaded samples.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/sha256.h"
#include "device_profiles/profile_file.h"
#include "squeeze/v1/device.grpc.pb.h"
#include "squeeze/v1/model.pb.h"
#include "squeeze/v1/search.pb.h"
#include "tests/device_profiles/test_device.h"
#include "tests/e2e/server_fixture.h"

namespace squeeze::testing {
namespace {

namespace dp = device_profiles;
using Catch::Matchers::Contains;

const std::string kClsModel = std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";

// A profile of a small CPU: fp32 and w8a8 samples of every layer kind at a few shapes, with
// latencies from round rates (fp32 20 Gops/s, int8 40 Gops/s, plus 5 us per op).
dp::Profile SmallProfile() {
  dp::Profile p;
  p.device = dp::TestDevice("host");
  p.device.provenance = dp::Provenance::kMeasured;
  // The fp32 and int8 rows stand on the samples below; an fp16 row read off a CPU flag claims to
  // be measured, but nothing measured it.
  for (dp::Capability& c : p.device.capabilities) c.provenance = dp::Provenance::kMeasured;
  dp::Capability fp16 = p.device.capabilities.front();
  fp16.weight_bits = fp16.activation_bits = 16;
  fp16.peak_ops_per_s *= 2;
  p.device.capabilities.push_back(fp16);
  p.conditions.tool = "squeeze-profile (test)";
  p.conditions.mode = "quick";
  p.conditions.measured_at = "2026-12-03T19:00:00Z";
  p.conditions.threads = 1;
  p.conditions.repeats = 10;
  p.conditions.cpu_governor = "performance";
  p.conditions.runtime_version = "1.29.0";
  p.conditions.host = "test-host";
  for (int bits : {32, 8}) {
    const double rate = bits == 32 ? 20e9 : 40e9;
    for (int channels : {8, 32, 128}) {
      for (int size : {12, 48}) {
        for (dp::OpKind kind : {dp::OpKind::kConv, dp::OpKind::kDepthwiseConv}) {
          dp::LatencySample s = dp::TestSample("");
          s.op_kind = kind;
          s.in_channels = s.out_channels = channels;
          s.groups = kind == dp::OpKind::kDepthwiseConv ? channels : 1;
          s.height = s.width = size;
          s.weight_bits = s.activation_bits = bits;
          s.macs = dp::ShapeMacs(s);
          s.key = absl::StrCat(dp::OpKindName(kind), " ", channels, " ", size, "x", size, " w", bits);
          s.latency_median_us = s.latency_mean_us = 5 + 2e6 * static_cast<double>(s.macs) / rate;
          s.latency_p10_us = 0.95 * s.latency_median_us;
          s.latency_p90_us = 1.1 * s.latency_median_us;
          p.samples.push_back(s);
        }
      }
      dp::LatencySample g = dp::TestSample("");
      g.op_kind = dp::OpKind::kGemm;
      g.gemm_m = 1;
      g.gemm_k = channels * 9;
      g.gemm_n = channels;
      g.weight_bits = g.activation_bits = bits;
      g.macs = dp::ShapeMacs(g);
      g.key = absl::StrCat("gemm ", channels, " w", bits);
      g.latency_median_us = g.latency_mean_us = 5 + 2e6 * static_cast<double>(g.macs) / rate;
      g.latency_p10_us = g.latency_p90_us = 0;
      p.samples.push_back(g);
    }
  }
  return p;
}

std::string WriteProfile(const TempDir& dir, const std::string& name, const dp::Profile& profile) {
  const std::string path = dir.File(name);
  REQUIRE(dp::WriteProfileFile(path, profile).ok());
  return path;
}

// A Xeon with AVX-512-FP16 and AMX, as its /proc/cpuinfo shows it (one CPU, flags abridged).
constexpr char kSapphireRapidsCpuinfo[] =
    "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n"
    "model name\t: Intel(R) Xeon(R) Platinum 8488C\ncpu MHz\t\t: 2400.000\n"
    "flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16 "
    "avx_vnni avx512_fp16 amx_bf16 amx_tile amx_int8\n\n";

// The front's header counts exactly what its candidates' layers used, and each candidate's basis
// matches its layers. Returns the header.
std::string CheckBasisCounts(const v1::DeviceFront& front) {
  int samples = 0, spec = 0;
  for (const v1::Candidate& c : front.candidates()) {
    int own_spec = 0;
    for (const v1::LayerChoice& layer : c.layers()) own_spec += layer.latency_basis() == "spec-roofline" ? 1 : 0;
    CHECK(c.spec_layers() == own_spec);
    CHECK(c.latency_basis() ==
          (own_spec == 0 ? std::string("samples")
                         : absl::StrCat("spec-roofline for ", own_spec, " of ", c.layers_size(), " layers")));
    samples += c.layers_size() - own_spec;
    spec += own_spec;
  }
  INFO(front.latency_basis());
  CHECK_THAT(front.latency_basis(),
             Contains(absl::StrCat(samples, " of ", samples + spec, " layer latencies of the ", front.candidates_size(),
                                   " candidates from measured samples, ", spec, " from the spec roofline")));
  return front.latency_basis();
}

// Uploads PP-OCR cls and searches it on host to the end; the job succeeded with one front.
v1::SearchJob SearchClsOnHost(const RunningServer& server) {
  const std::string model =
      Parse<v1::Model>(server.Cli({"--json", "models", "upload", kClsModel, "--input-shape", "x=1,3,48,192"})).id();
  const v1::SearchJob job = Parse<v1::SearchJob>(
      server.Cli({"--json", "search", "start", model, "--device", "host", "--time-budget", "10", "--watch"}));
  REQUIRE(job.state() == v1::JOB_STATE_SUCCEEDED);
  REQUIRE(job.fronts_size() == 1);
  return job;
}

v1::Device Show(const RunningServer& server, const std::string& id, int64_t version = 0) {
  return Parse<v1::Device>(server.Cli({"--json", "devices", "show", id, "--version", std::to_string(version)}));
}

TEST_CASE("devices put makes host a measured device and keeps the spec version", "[e2e][profiles]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  const dp::Profile profile = SmallProfile();
  const std::string path = WriteProfile(dir, "host.json", profile);

  CommandResult put = server.Cli({"devices", "put", path, "--id", "host", "--name", "Build box"});
  INFO(put.out << put.err);
  REQUIRE(put.exit_code == 0);
  CHECK_THAT(put.out, Contains("host version 2: measured"));

  const v1::Device host = Show(server, "host");
  CHECK(host.version() == 2);
  CHECK(host.name() == "Build box");
  CHECK(host.provenance() == v1::PROVENANCE_MEASURED);
  CHECK(host.latency_sample_count() == static_cast<int64_t>(profile.samples.size()));
  CHECK(host.conditions().cpu_governor() == "performance");
  // Provenance is never upgraded: the rows the samples measured are measured, the fp16 row is not.
  REQUIRE(host.capabilities_size() == 3);
  for (const v1::Capability& c : host.capabilities()) {
    INFO(c.weight_bits() << "/" << c.activation_bits() << ": " << c.derivation());
    CHECK(c.provenance() == (c.weight_bits() == 16 ? v1::PROVENANCE_SPEC : v1::PROVENANCE_MEASURED));
  }
  // The same through the CLI's JSON, as a user reads it.
  const v1::Device shown = Parse<v1::Device>(server.Cli({"--json", "devices", "show", "host"}));
  for (const v1::Capability& c : shown.capabilities()) {
    if (c.weight_bits() == 16) CHECK_THAT(c.derivation(), Contains("no sample of the profile measured it"));
  }
  // The spec version is still there, as jobs that used it recorded.
  const v1::Device spec = Show(server, "host", 1);
  CHECK(spec.provenance() == v1::PROVENANCE_SPEC);
  CHECK(spec.latency_sample_count() == 0);

  CommandResult samples = server.Cli({"devices", "show", "host", "--samples"});
  REQUIRE(samples.exit_code == 0);
  CHECK_THAT(samples.out,
             Contains("depthwise") && Contains("gemm") && Contains("Measured by") && Contains("performance"));
  const v1::Device with_samples = Parse<v1::Device>(server.Cli({"--json", "devices", "show", "host", "--samples"}));
  REQUIRE(with_samples.samples_size() == static_cast<int>(profile.samples.size()));
  CHECK(with_samples.samples(0).id() == profile.samples[0].key);
  CHECK(with_samples.samples(0).latency_median_us() == profile.samples[0].latency_median_us);

  CommandResult list = server.Cli({"devices", "list"});
  CHECK_THAT(list.out, Contains("measured"));

  // A member may read profiles but not write them.
  const std::string member = server.CreateKey("beta");
  CommandResult denied = server.CliAs(member, {"devices", "put", path, "--id", "host"});
  CHECK(denied.exit_code != 0);
  CHECK_THAT(denied.err, Contains("PERMISSION_DENIED"));
  CHECK(Show(server, "host").version() == 2);
}

// PutDeviceProfile over gRPC with the admin key; the CLI checks files itself, so the server's
// own checks are reached only this way.
grpc::Status Put(const RunningServer& server, const v1::PutDeviceProfileRequest& request, v1::Device* out) {
  auto stub = v1::DeviceService::NewStub(server.Channel());
  grpc::ClientContext context;
  server.Authorize(&context);
  return stub->PutDeviceProfile(&context, request, out);
}

TEST_CASE("Bad profile uploads are INVALID_ARGUMENT and nothing is stored", "[e2e][profiles]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  v1::PutDeviceProfileRequest request;
  request.set_id("board");
  *request.mutable_profile() = dp::ToProto(SmallProfile());
  std::string expect;
  grpc::StatusCode code = grpc::StatusCode::INVALID_ARGUMENT;
  SECTION("a negative latency") {
    request.mutable_profile()->mutable_samples(3)->set_latency_median_us(-40);
    expect = "positive";
  }
  SECTION("latencies in seconds, not microseconds") {
    for (v1::LatencySample& s : *request.mutable_profile()->mutable_samples()) {
      s.set_latency_median_us(s.latency_median_us() * 1e-6);
    }
    expect = "microseconds";
  }
  SECTION("an unknown op kind") {
    request.mutable_profile()->mutable_samples(5)->set_op_kind(static_cast<v1::OpKind>(42));
    expect = "op_kind 42";
  }
  SECTION("duplicate sample ids") {
    request.mutable_profile()->mutable_samples(7)->set_id(request.profile().samples(2).id());
    expect = "duplicate sample id";
  }
  SECTION("no device and no merge") {
    request.mutable_profile()->clear_device();
    expect = "no device";
  }
  SECTION("a bad device id") {
    request.set_id("Board 7");
    expect = "id must be";
  }
  SECTION("a merge into a device that does not exist") {
    request.set_merge(true);
    code = grpc::StatusCode::NOT_FOUND;
    expect = "board";
  }
  v1::Device out;
  grpc::Status status = Put(server, request, &out);
  INFO(status.error_message());
  CHECK(status.error_code() == code);
  CHECK_THAT(status.error_message(), Contains(expect));
  CommandResult show = server.Cli({"devices", "show", "board"});
  CHECK(show.exit_code != 0);
  CHECK_THAT(show.err, Contains("NOT_FOUND"));
}

TEST_CASE("A search on a measured device predicts from its samples and a reported model latency corrects it",
          "[e2e][profiles][search]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  const std::string profile_path = WriteProfile(dir, "host.json", SmallProfile());
  REQUIRE(server.Cli({"devices", "put", profile_path, "--id", "host"}).exit_code == 0);
  const std::string model =
      Parse<v1::Model>(server.Cli({"--json", "models", "upload", kClsModel, "--input-shape", "x=1,3,48,192"})).id();

  v1::SearchJob first = Parse<v1::SearchJob>(
      server.Cli({"--json", "search", "start", model, "--device", "host", "--time-budget", "10", "--watch"}));
  REQUIRE(first.state() == v1::JOB_STATE_SUCCEEDED);
  REQUIRE(first.fronts_size() == 1);
  const v1::DeviceFront& front = first.fronts(0);
  CHECK(front.device_version() == 2);
  INFO(front.latency_basis());
  REQUIRE(front.candidates_size() > 0);
  // Every layer of every candidate is predicted from the samples, and the header counts them.
  CHECK_THAT(front.latency_basis(), Contains(absl::StrCat(54 * front.candidates_size(), " of ",
                                                          54 * front.candidates_size(), " layer latencies")));
  CheckBasisCounts(front);
  for (const v1::Candidate& c : front.candidates()) {
    CHECK(c.latency_basis() == "samples");
    for (const v1::LayerChoice& layer : c.layers()) CHECK(layer.activation_bits() != 16);
  }
  // The profile never timed this model, and host is this machine: the search timed it first, as
  // it is and exported uniformly, and calibrated every precision to those times.
  INFO(absl::StrJoin(front.warnings(), "; "));
  // Which uniform exports get a line of their own depends on how fast this CPU runs them against
  // the other ops' prediction; the model as it is always does.
  CHECK_THAT(front.latency_basis(), Contains("the model as it is measured"));
  CHECK_THAT(front.latency_basis(), Contains("x=1,3,48,192 (timed before this search)"));
  CHECK(Show(server, "host").model_latency_count() == 0);  // the profile itself is unchanged

  // A user reports the model's measured latency on this device: merged, a new version.
  absl::StatusOr<std::string> bytes = common::ReadFile(kClsModel);
  REQUIRE(bytes.ok());
  dp::Profile report;
  dp::ModelLatency m = dp::TestModelLatency("cls as uploaded", 2500);
  m.model_sha256 = common::Sha256Hex(*bytes);
  m.model_name = "ch_ppocr_mobile_v2.0_cls_infer.onnx";
  report.model_latencies = {m};
  const std::string report_path = dir.File("report.json");
  REQUIRE(common::WriteFileAtomically(report_path, *dp::ProfileToJson(report)).ok());
  CommandResult merged = server.Cli({"devices", "put", report_path, "--id", "host", "--merge"});
  INFO(merged.out << merged.err);
  REQUIRE(merged.exit_code == 0);
  const v1::Device host = Show(server, "host");
  CHECK(host.version() == 3);
  CHECK(host.model_latency_count() == 1);
  CHECK(host.latency_sample_count() == static_cast<int64_t>(SmallProfile().samples.size()));

  v1::SearchJob second = Parse<v1::SearchJob>(
      server.Cli({"--json", "search", "start", model, "--device", "host", "--time-budget", "10", "--watch"}));
  REQUIRE(second.state() == v1::JOB_STATE_SUCCEEDED);
  REQUIRE(second.fronts_size() == 1);
  CHECK(second.fronts(0).device_version() == 3);
  INFO(second.fronts(0).latency_basis());
  CHECK_THAT(second.fronts(0).latency_basis(), Contains("2.50 ms"));
  // The uniform fp32 baseline is the model as it is: its prediction is the reported latency.
  bool saw_fp32 = false;
  for (const v1::Candidate& b : second.fronts(0).baselines()) {
    if (b.tags_size() == 0 || b.tags(0) != "fp32") continue;
    saw_fp32 = true;
    CHECK(b.predicted_latency_ms() == Approx(2.5).epsilon(0.01));
  }
  CHECK(saw_fp32);
}

TEST_CASE("squeeze-profile --quick then devices put: a search on host predicts from the measured samples",
          "[e2e][profiles][search]") {
  TempDir dir;
  const std::string profile_path = dir.File("host-profile.json");
  // The quick grid with the fewest runs: what is checked here is the path, not the figures.
  CommandResult profiled =
      Run({Binary("squeeze-profile"), "--quick", "--warmup", "1", "--repeats", "1", "--min-time-ms", "0", "--model",
           kClsModel, "--input-shape", "x=1,3,48,192", "-o", profile_path},
          {}, std::chrono::seconds(240));
  INFO(profiled.out << profiled.err);
  REQUIRE(profiled.exit_code == 0);
  CHECK_THAT(profiled.err, Contains("100%"));
  absl::StatusOr<dp::Profile> profile = dp::ReadProfileFile(profile_path);
  REQUIRE(profile.ok());
  // The model as it is and its uniform fp16-weight, int8-weight, int8 and half-pruned fp32 exports.
  REQUIRE(profile->model_latencies.size() == 5);
  CHECK(profile->model_latencies.back().variant == "uniform w32a32 channel 50%");

  RunningServer server(dir.File("data"));
  CommandResult put = server.Cli({"devices", "put", profile_path, "--id", "host"});
  INFO(put.out << put.err);
  REQUIRE(put.exit_code == 0);
  const v1::Device host = Show(server, "host");
  CHECK(host.provenance() == v1::PROVENANCE_MEASURED);
  CHECK(host.latency_sample_count() == static_cast<int64_t>(profile->samples.size()));
  CHECK(host.model_latency_count() == 5);

  const v1::SearchJob job = SearchClsOnHost(server);
  CHECK(job.fronts(0).device_version() == 2);
  INFO(job.fronts(0).latency_basis());
  CHECK_THAT(job.fronts(0).latency_basis(), Contains("the model as it is measured") &&
                                                Contains("uniform w8a8 measured") &&
                                                Contains("uniform w32a32 channel 50% measured"));
  REQUIRE(job.fronts(0).candidates_size() > 0);
  // Whatever this CPU offers: the header counts exactly what the candidates' layers used, and no
  // option has 16-bit activations, which the CPU flavour's file would not have.
  const std::string header = CheckBasisCounts(job.fronts(0));
  for (const v1::Candidate& c : job.fronts(0).candidates()) {
    for (const v1::LayerChoice& layer : c.layers()) CHECK(layer.activation_bits() != 16);
  }
  // The text result says it too.
  CommandResult shown = server.Cli({"search", "show", job.id()});
  REQUIRE(shown.exit_code == 0);
  CHECK_THAT(shown.out, Contains("latency: " + header.substr(0, header.find(';'))));
}

TEST_CASE("On a CPU with AVX-512-FP16 and AMX, a measured host offers nothing its samples did not measure",
          "[e2e][profiles][search]") {
  // squeeze-profile reads this Xeon's /proc/cpuinfo instead of this machine's (the detection
  // override): what it detects must not become a capability the samples never measured.
  TempDir dir;
  const std::string cpuinfo = dir.File("cpuinfo");
  REQUIRE(common::WriteFileAtomically(cpuinfo, kSapphireRapidsCpuinfo).ok());
  const std::string profile_path = dir.File("host-profile.json");
  CommandResult profiled = Run({Binary("squeeze-profile"), "--quick", "--warmup", "1", "--repeats", "1",
                                "--min-time-ms", "0", "-o", profile_path},
                               {{"SQUEEZE_HOST_CPUINFO", cpuinfo}}, std::chrono::seconds(240));
  INFO(profiled.out << profiled.err);
  REQUIRE(profiled.exit_code == 0);
  absl::StatusOr<dp::Profile> profile = dp::ReadProfileFile(profile_path);
  REQUIRE(profile.ok());
  CHECK_THAT(profile->device.name, Contains("Xeon"));
  CHECK(std::count(profile->device.simd_features.begin(), profile->device.simd_features.end(), "avx512_fp16") == 1);
  for (const dp::Capability& c : profile->device.capabilities) {
    INFO(c.weight_bits << "/" << c.activation_bits << " " << c.derivation);
    CHECK(c.activation_bits != 16);
    CHECK(c.provenance == dp::Provenance::kMeasured);
  }

  RunningServer server(dir.File("data"));
  CommandResult put = server.Cli({"devices", "put", profile_path, "--id", "host"});
  INFO(put.out << put.err);
  REQUIRE(put.exit_code == 0);
  // devices show --json: no row is measured unless its samples measured it.
  const v1::Device host = Parse<v1::Device>(server.Cli({"--json", "devices", "show", "host", "--samples"}));
  for (const v1::Capability& c : host.capabilities()) {
    if (c.provenance() != v1::PROVENANCE_MEASURED) continue;
    const v1::OpKind kind = c.op_kind() == v1::OP_KIND_UNSPECIFIED ? v1::OP_KIND_CONV : c.op_kind();
    bool sampled = false;
    for (const v1::LatencySample& s : host.samples()) {
      sampled |= s.op_kind() == kind && s.weight_bits() == c.weight_bits() &&
                 s.activation_bits() == c.activation_bits() && s.sparsity() == c.sparsity();
    }
    INFO(c.weight_bits() << "/" << c.activation_bits() << " " << c.derivation());
    CHECK(sampled);
  }

  const v1::SearchJob job = SearchClsOnHost(server);
  CheckBasisCounts(job.fronts(0));
  for (const v1::Candidate& c : job.fronts(0).candidates()) {
    for (const v1::LayerChoice& layer : c.layers()) CHECK(layer.activation_bits() != 16);
  }
  // On this measured host the picks were exported and timed before they were named: the fastest
  // is no slower than uniform fp32 or int8 in the same interleaved run.
  CheckFastestMeasuredBeatsBaselines(job.fronts(0));
}

}  // namespace
}  // namespace squeeze::testing
