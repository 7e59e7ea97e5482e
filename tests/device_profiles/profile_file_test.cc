#include "device_profiles/profile_file.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "absl/strings/str_replace.h"
#include "common/files.h"
#include "tests/device_profiles/test_device.h"
#include "tests/testing/temp_dir.h"

namespace squeeze::device_profiles {
namespace {

Profile TestProfile() {
  Profile p;
  p.device = TestDevice("host");
  p.device.provenance = Provenance::kMeasured;
  p.conditions.tool = "squeeze-profile 0.1";
  p.conditions.mode = "quick";
  p.conditions.measured_at = "2026-12-03T19:00:00Z";
  p.conditions.duration_seconds = 24.5;
  p.conditions.threads = 1;
  p.conditions.warmup_runs = 3;
  p.conditions.repeats = 20;
  p.conditions.cpu_governor = "performance";
  p.conditions.cpu_frequency_khz = 3100000;
  p.conditions.runtime_version = "1.29.0";
  p.conditions.host = "builder";
  LatencySample dw = TestSample("dw k3 s2 64 40x40 fp32", 80);
  dw.op_kind = OpKind::kDepthwiseConv;
  dw.in_channels = dw.out_channels = dw.groups = 64;
  dw.height = dw.width = 40;
  dw.stride = 2;
  dw.weight_bits = dw.activation_bits = 32;
  dw.macs = ShapeMacs(dw);
  LatencySample q = TestSample("quantize 100000", 30);
  q.op_kind = OpKind::kQuantizeLinear;
  q.macs = 0;
  q.elements = 100000;
  LatencySample gemm = TestSample("gemm 1x288x2 w8a8", 4);
  gemm.op_kind = OpKind::kGemm;
  gemm.gemm_m = 1;
  gemm.gemm_k = 288;
  gemm.gemm_n = 2;
  gemm.macs = 576;
  p.samples = {TestSample("conv k3 s1 16>32 20x20 w8a8"), dw, q, gemm};
  p.model_latencies = {TestModelLatency("det")};
  return p;
}

absl::StatusCode CodeOf(const Profile& p) { return ValidateProfile(p).code(); }

TEST_CASE("A profile file round-trips through JSON on disk", "[profiles][profile-file]") {
  testing::TempDir dir;
  const std::string path = dir.File("host.json");
  Profile p = TestProfile();
  REQUIRE(ValidateProfile(p).ok());
  REQUIRE(WriteProfileFile(path, p).ok());
  absl::StatusOr<std::string> text = common::ReadFile(path);
  REQUIRE(text.ok());
  // Proto field names, so people and scripts can read it.
  CHECK(text->find("\"latency_median_us\"") != std::string::npos);
  CHECK(text->find("\"OP_KIND_DEPTHWISE_CONV\"") != std::string::npos);

  absl::StatusOr<Profile> back = ReadProfileFile(path);
  INFO(back.status().ToString());
  REQUIRE(back.ok());
  CHECK(back->device.id == "host");
  CHECK(back->device.capabilities.size() == p.device.capabilities.size());
  CHECK(back->conditions.cpu_governor == "performance");
  CHECK(back->conditions.cpu_frequency_khz == 3100000);
  REQUIRE(back->samples.size() == p.samples.size());
  for (size_t i = 0; i < p.samples.size(); ++i) {
    const LatencySample& a = p.samples[i];
    const LatencySample& b = back->samples[i];
    INFO(a.key);
    CHECK(b.key == a.key);
    CHECK(b.op_kind == a.op_kind);
    CHECK(b.macs == a.macs);
    CHECK(b.elements == a.elements);
    CHECK(b.latency_median_us == a.latency_median_us);
    CHECK(b.latency_p10_us == a.latency_p10_us);
    CHECK(b.latency_p90_us == a.latency_p90_us);
    CHECK(b.weight_bits == a.weight_bits);
    CHECK(b.stride == a.stride);
    CHECK(b.groups == a.groups);
  }
  REQUIRE(back->model_latencies.size() == 1);
  CHECK(back->model_latencies[0].model_sha256 == p.model_latencies[0].model_sha256);
  CHECK(back->model_latencies[0].latency_median_us == p.model_latencies[0].latency_median_us);
}

TEST_CASE("Bad profiles are refused with a reason that names the entry", "[profiles][profile-file]") {
  Profile p = TestProfile();
  std::string expect;
  SECTION("milliseconds written as microseconds: 50 Tops/s is no CPU") {
    p.samples[0].latency_median_us = 0.05;
    expect = "Tops/s";
  }
  SECTION("a latency below 0.05 us") {
    p.samples[2].latency_median_us = 0.001;
    expect = "microseconds";
  }
  SECTION("negative latency") {
    p.samples[1].latency_median_us = -80;
    expect = "positive";
  }
  SECTION("a negative percentile") {
    p.samples[1].latency_p10_us = -1;
    expect = "negative";
  }
  SECTION("MACs that do not match the shape") {
    p.samples[0].macs *= 4;
    expect = "do not match";
  }
  SECTION("duplicate sample ids") {
    p.samples[3].key = p.samples[0].key;
    expect = "duplicate sample id";
  }
  SECTION("duplicate model latency ids") {
    p.model_latencies.push_back(p.model_latencies[0]);
    expect = "duplicate model latency id";
  }
  SECTION("a model latency without a sha256") {
    p.model_latencies[0].model_sha256 = "det.onnx";
    expect = "sha256";
  }
  SECTION("a model latency in seconds") {
    p.model_latencies[0].latency_median_us = 0.045;
    expect = "microseconds";
  }
  SECTION("an unknown format version") {
    p.format_version = 9;
    expect = "format_version";
  }
  SECTION("nothing measured") {
    p.samples.clear();
    p.model_latencies.clear();
    expect = "neither";
  }
  SECTION("a device without a name") {
    p.device.name.clear();
    expect = "name";
  }
  absl::Status status = ValidateProfile(p);
  INFO(status.ToString());
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK(status.message().find(expect) != absl::string_view::npos);
}

TEST_CASE("A merge upload may omit the device", "[profiles][profile-file]") {
  Profile p = TestProfile();
  p.device = Device{};
  CHECK(CodeOf(p) == absl::StatusCode::kInvalidArgument);
  CHECK(ValidateProfile(p, /*require_device=*/false).ok());
}

TEST_CASE("Profile files that are not profiles are InvalidArgument naming the path", "[profiles][profile-file]") {
  testing::TempDir dir;
  absl::StatusOr<std::string> good = ProfileToJson(TestProfile());
  REQUIRE(good.ok());
  std::string text;
  SECTION("not JSON") { text = "conv,3,16,32\n"; }
  SECTION("an unknown op kind") { text = absl::StrReplaceAll(*good, {{"OP_KIND_DEPTHWISE_CONV", "OP_KIND_WINOGRAD"}}); }
  SECTION("an unknown field") {
    text = absl::StrReplaceAll(*good, {{"\"latency_median_us\"", "\"latency_median_ms\""}});
  }
  SECTION("an unspecified op kind") {
    text = absl::StrReplaceAll(*good, {{"OP_KIND_DEPTHWISE_CONV", "OP_KIND_UNSPECIFIED"}});
  }
  const std::string path = dir.File("bad.json");
  REQUIRE(common::WriteFileAtomically(path, text).ok());
  absl::StatusOr<Profile> read = ReadProfileFile(path);
  INFO(read.status().ToString());
  CHECK(read.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(read.status().message().find(path) != absl::string_view::npos);
  CHECK(ReadProfileFile(dir.File("missing.json")).status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("Provenance is never upgraded: a row is measured only where samples measured it",
          "[profiles][profile-file]") {
  Profile p = TestProfile();                              // samples: conv w8a8, depthwise fp32, gemm w8a8, quantize
  std::vector<Capability>& rows = p.device.capabilities;  // fp32 and int8 all-kinds rows, spec
  rows[1].provenance = Provenance::kMeasured;             // int8, all kinds: the conv w8a8 sample
  Capability fp16 = rows[0];                              // an fp16 rate read off a CPU flag
  fp16.weight_bits = fp16.activation_bits = 16;
  fp16.provenance = Provenance::kMeasured;
  rows.push_back(fp16);
  Capability w3 = rows[1];  // derived from the int8 row, never measured itself
  w3.weight_bits = 3;
  w3.activation_bits = 32;
  w3.op_kind = OpKind::kConv;
  rows.push_back(w3);
  CHECK(KeepMeasuredRowsHonest(p.device, p.samples) == 2);
  CHECK(rows[0].provenance == Provenance::kSpec);      // spec stays spec
  CHECK(rows[1].provenance == Provenance::kMeasured);  // its samples measured it
  CHECK(rows[2].provenance == Provenance::kSpec);
  CHECK_THAT(rows[2].derivation, Catch::Matchers::Contains("no sample of the profile measured it"));
  CHECK(rows[3].provenance == Provenance::kSpec);
  CHECK(KeepMeasuredRowsHonest(p.device, p.samples) == 0);  // nothing left to downgrade
}

TEST_CASE("ShapeMacs counts same-padded convolutions, transposed convolutions and gemms", "[profiles][profile-file]") {
  LatencySample s;
  s.op_kind = OpKind::kConv;
  s.in_channels = 3;
  s.out_channels = 8;
  s.height = s.width = 33;
  s.kernel = 3;
  s.stride = 2;
  CHECK(ShapeMacs(s) == 8 * 17 * 17 * 3 * 9);
  s.op_kind = OpKind::kConvTranspose;
  s.in_channels = 24;
  s.out_channels = 6;
  s.height = s.width = 10;
  s.kernel = 2;
  s.stride = 2;
  CHECK(ShapeMacs(s) == 24 * 100 * 6 * 4);
  s.op_kind = OpKind::kGemm;
  s.gemm_m = 2;
  s.gemm_k = 3;
  s.gemm_n = 4;
  CHECK(ShapeMacs(s) == 24);
  s.op_kind = OpKind::kElementwise;
  CHECK(ShapeMacs(s) == 0);
}

}  // namespace
}  // namespace squeeze::device_profiles
