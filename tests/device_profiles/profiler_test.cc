// squeeze-profile: the single-op models (they run, with the shapes and MACs they claim), the grid
// (it covers PP-OCRv4 det), a tiny profiling run (a valid profile, sane figures, conditions),
// capabilities derived from samples, and the CLI's --list.
#include "device_profiles/profiler.h"

#include <onnx/onnx_pb.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/sha256.h"
#include "device_profiles/op_grid.h"
#include "device_profiles/profile_file.h"
#include "device_profiles/single_op.h"
#include "model/loader.h"
#include "runtime/session.h"
#include "runtime/shape_probe.h"
#include "tests/model/export_models.h"
#include "tests/testing/process.h"
#include "tests/testing/temp_dir.h"

namespace squeeze::device_profiles {
namespace {

OpSpec ConvSpec(OpKind kind, int64_t in, int64_t out, int64_t res, int64_t kernel, int64_t stride, int64_t groups = 1) {
  OpSpec s;
  s.kind = kind;
  s.in_channels = in;
  s.out_channels = out;
  s.height = s.width = res;
  s.kernel = kernel;
  s.stride = stride;
  s.groups = kind == OpKind::kDepthwiseConv ? in : groups;
  return s;
}

OpSpec GemmSpec(int64_t m, int64_t k, int64_t n) {
  OpSpec s;
  s.kind = OpKind::kGemm;
  s.gemm_m = m, s.gemm_k = k, s.gemm_n = n;
  return s;
}

OpSpec OpOf(OpKind kind, const std::string& op, std::vector<int64_t> shape) {
  OpSpec s;
  s.kind = kind;
  s.op_type = op;
  s.shape = std::move(shape);
  if (kind != OpKind::kElementwise) s.activation_bits = 8;
  return s;
}

OpSpec At(OpSpec s, int w, int a, Sparsity sparsity = Sparsity::kDense) {
  s.weight_bits = w;
  s.activation_bits = a;
  s.sparsity = sparsity;
  s.sparsity_ratio = sparsity == Sparsity::kDense ? 0 : 0.5;
  return s;
}

// The output shape a spec's op has: "same" convs ceil(h / stride), ConvTranspose h x stride.
std::vector<int64_t> ExpectedOutput(const OpSpec& s) {
  if (s.kind == OpKind::kGemm) return {s.gemm_m, s.gemm_n};
  if (!IsLayerKind(s.kind)) return s.shape;
  if (s.kind == OpKind::kConvTranspose) return {1, s.out_channels, s.height * s.stride, s.width * s.stride};
  return {1, s.out_channels, (s.height + s.stride - 1) / s.stride, (s.width + s.stride - 1) / s.stride};
}

int Count(const std::vector<std::string>& ops, const std::string& op) {
  return static_cast<int>(std::count(ops.begin(), ops.end(), op));
}

// Share of zeros among the fp32 or int8 values of the layer's weight initializer (the largest).
double WeightZeroShare(const std::string& bytes) {
  onnx::ModelProto m;
  REQUIRE(m.ParseFromString(bytes));
  const onnx::TensorProto* w = nullptr;
  for (const onnx::TensorProto& t : m.graph().initializer()) {
    if (w == nullptr || t.raw_data().size() > w->raw_data().size()) w = &t;
  }
  REQUIRE(w != nullptr);
  int64_t zeros = 0, count = 0;
  if (w->data_type() == onnx::TensorProto::FLOAT) {
    std::vector<float> v(w->raw_data().size() / sizeof(float));
    std::memcpy(v.data(), w->raw_data().data(), v.size() * sizeof(float));
    for (float x : v) zeros += x == 0, ++count;
  } else {
    for (char c : w->raw_data()) zeros += c == 0, ++count;
  }
  return count > 0 ? static_cast<double>(zeros) / count : 0;
}

TEST_CASE("Single-op models of every kind and precision run with the shape and MACs they claim", "[profiler]") {
  const std::vector<OpSpec> shapes = {ConvSpec(OpKind::kConv, 16, 32, 20, 3, 2),
                                      ConvSpec(OpKind::kConv, 24, 12, 14, 1, 1),
                                      ConvSpec(OpKind::kConv, 32, 32, 10, 3, 1, 4),
                                      ConvSpec(OpKind::kDepthwiseConv, 16, 16, 15, 5, 2),
                                      ConvSpec(OpKind::kConvTranspose, 8, 8, 12, 2, 2),
                                      ConvSpec(OpKind::kConvTranspose, 8, 1, 12, 4, 2),
                                      GemmSpec(4, 64, 16)};
  struct Precision {
    int w, a;
    Sparsity sparsity;
  };
  const Precision precisions[] = {
      {32, 32, Sparsity::kDense},        {16, 32, Sparsity::kDense}, {8, 8, Sparsity::kDense},
      {8, 32, Sparsity::kDense},         {4, 8, Sparsity::kDense},   {4, 32, Sparsity::kDense},
      {32, 32, Sparsity::kUnstructured}, {8, 8, Sparsity::kTwoFour}, {2, 32, Sparsity::kDense}};
  runtime::SessionOptions options;
  for (const OpSpec& shape : shapes) {
    for (const Precision& p : precisions) {
      const OpSpec spec = At(shape, p.w, p.a, p.sparsity);
      INFO(OpSpecKey(spec));
      absl::StatusOr<SingleOpModel> model = BuildSingleOpModel(spec, 7);
      INFO(model.status().ToString());
      REQUIRE(model.ok());
      const LatencySample sample = SampleOf(spec);
      CHECK(model->macs > 0);
      CHECK(model->macs == ShapeMacs(sample));
      CHECK(model->output_shape == ExpectedOutput(spec));
      CHECK(model->weight_bytes > 0);

      // What the file holds, as the exporter writes it.
      CHECK(Count(model->op_types, "Cast") == (p.w == 16 ? 1 : 0));
      CHECK(Count(model->op_types, "QuantizeLinear") == (p.a == 8 ? 1 : 0));  // the output's only
      // A gemm of 4-bit weights and float activations is the MatMulNBits the export writes for it.
      const bool nbits = spec.kind == OpKind::kGemm && p.w <= 4 && p.a == 32;
      CHECK(Count(model->op_types, "MatMulNBits") == (nbits ? 1 : 0));
      CHECK((Count(model->op_types, "DequantizeLinear") > 0) == (p.w <= 8 && !nbits));
      if (p.sparsity != Sparsity::kDense) CHECK(WeightZeroShare(model->bytes) >= 0.45);

      absl::StatusOr<std::unique_ptr<runtime::Session>> session = runtime::Session::Create(model->bytes, options);
      INFO(session.status().ToString());
      REQUIRE(session.ok());
      REQUIRE((*session)->inputs().size() == 1);
      CHECK((*session)->inputs()[0].type == (p.a == 8 ? runtime::ElementType::kUint8 : runtime::ElementType::kFloat32));
      absl::StatusOr<std::vector<runtime::Tensor>> out = (*session)->Run(model->inputs);
      INFO(out.status().ToString());
      REQUIRE(out.ok());
      REQUIRE(out->size() == 1);
      CHECK((*out)[0].shape == ExpectedOutput(spec));
      CHECK((*out)[0].type == (p.a == 8 ? runtime::ElementType::kUint8 : runtime::ElementType::kFloat32));
      const int64_t act = p.a == 8 ? 1 : 4;
      CHECK(model->activation_bytes == act * (model->inputs[0].ElementCount() + (*out)[0].ElementCount()));
    }
  }
}

TEST_CASE("Single-op models of the ops around layers", "[profiler]") {
  const std::vector<int64_t> shape = {1, 8, 4, 6};
  const std::vector<OpSpec> specs = {OpOf(OpKind::kQuantizeLinear, "QuantizeLinear", shape),
                                     OpOf(OpKind::kDequantizeLinear, "DequantizeLinear", shape),
                                     OpOf(OpKind::kElementwise, "Add", shape),
                                     OpOf(OpKind::kElementwise, "Mul", shape),
                                     OpOf(OpKind::kElementwise, "Relu", shape),
                                     OpOf(OpKind::kElementwise, "HardSigmoid", shape),
                                     OpOf(OpKind::kElementwise, "HardSwish", shape)};
  for (const OpSpec& spec : specs) {
    INFO(OpSpecKey(spec));
    absl::StatusOr<SingleOpModel> model = BuildSingleOpModel(spec, 1);
    INFO(model.status().ToString());
    REQUIRE(model.ok());
    CHECK(model->macs == 0);
    CHECK(ShapeMacs(SampleOf(spec)) == 0);
    CHECK(SampleOf(spec).elements == 8 * 4 * 6);
    absl::StatusOr<std::unique_ptr<runtime::Session>> session = runtime::Session::Create(model->bytes);
    REQUIRE(session.ok());
    absl::StatusOr<std::vector<runtime::Tensor>> out = (*session)->Run(model->inputs);
    INFO(out.status().ToString());
    REQUIRE(out.ok());
    CHECK((*out)[0].shape == shape);
    CHECK((*out)[0].type ==
          (spec.kind == OpKind::kQuantizeLinear ? runtime::ElementType::kUint8 : runtime::ElementType::kFloat32));
  }

  SECTION("a uint8 transpose from channels-first to channels-last") {
    OpSpec spec = OpOf(OpKind::kTranspose, "Transpose", shape);
    spec.activation_bits = 8;
    absl::StatusOr<SingleOpModel> model = BuildSingleOpModel(spec, 1);
    REQUIRE(model.ok());
    CHECK(model->op_types == std::vector<std::string>{"Transpose"});
    CHECK(model->activation_bytes == 2 * 8 * 4 * 6);
    CHECK(SampleOf(spec).elements == 8 * 4 * 6);
    absl::StatusOr<std::unique_ptr<runtime::Session>> session = runtime::Session::Create(model->bytes);
    REQUIRE(session.ok());
    absl::StatusOr<std::vector<runtime::Tensor>> out = (*session)->Run(model->inputs);
    REQUIRE(out.ok());
    CHECK((*out)[0].shape == std::vector<int64_t>{1, 4, 6, 8});
    CHECK((*out)[0].type == runtime::ElementType::kUint8);
    // Value (c, h, w) lands at (h, w, c).
    const std::string& in = model->inputs[0].bytes;
    const std::string& moved = (*out)[0].bytes;
    CHECK(moved[(2 * 6 + 5) * 8 + 3] == in[(3 * 4 + 2) * 6 + 5]);
    OpSpec flat = OpOf(OpKind::kTranspose, "Transpose", {1, 192});
    CHECK(BuildSingleOpModel(flat, 1).status().code() == absl::StatusCode::kInvalidArgument);
  }

  SECTION("a uint8 max pool in channels-first, 2x2 stride 2") {
    OpSpec spec = OpOf(OpKind::kMaxPool, "MaxPool", shape);
    spec.activation_bits = 8;
    absl::StatusOr<SingleOpModel> model = BuildSingleOpModel(spec, 1);
    REQUIRE(model.ok());
    CHECK(model->op_types == std::vector<std::string>{"MaxPool"});
    absl::StatusOr<std::unique_ptr<runtime::Session>> session = runtime::Session::Create(model->bytes);
    REQUIRE(session.ok());
    absl::StatusOr<std::vector<runtime::Tensor>> out = (*session)->Run(model->inputs);
    REQUIRE(out.ok());
    CHECK((*out)[0].shape == std::vector<int64_t>{1, 8, 2, 3});
    CHECK((*out)[0].type == runtime::ElementType::kUint8);
    // Output (c, h, w) is the largest of its 2x2 window.
    const auto in = [&](int c, int h, int w) {
      return static_cast<uint8_t>(model->inputs[0].bytes[(c * 4 + h) * 6 + w]);
    };
    const uint8_t expected = std::max({in(5, 2, 4), in(5, 2, 5), in(5, 3, 4), in(5, 3, 5)});
    CHECK(static_cast<uint8_t>((*out)[0].bytes[(5 * 2 + 1) * 3 + 2]) == expected);
    OpSpec odd = OpOf(OpKind::kMaxPool, "MaxPool", {1, 8, 5, 6});
    CHECK(BuildSingleOpModel(odd, 1).status().code() == absl::StatusCode::kInvalidArgument);
  }

  SECTION("specs that are no op are InvalidArgument") {
    OpSpec unknown = OpOf(OpKind::kElementwise, "Softmax", shape);
    CHECK(BuildSingleOpModel(unknown, 1).status().code() == absl::StatusCode::kInvalidArgument);
    OpSpec groups = ConvSpec(OpKind::kConv, 16, 16, 8, 3, 1, 3);
    CHECK(BuildSingleOpModel(groups, 1).status().code() == absl::StatusCode::kInvalidArgument);
    OpSpec float_activations = At(ConvSpec(OpKind::kConv, 16, 16, 8, 3, 1), 32, 8);
    CHECK(BuildSingleOpModel(float_activations, 1).status().code() == absl::StatusCode::kInvalidArgument);
    OpSpec even = ConvSpec(OpKind::kConv, 16, 16, 8, 2, 1);
    CHECK(BuildSingleOpModel(even, 1).status().code() == absl::StatusCode::kInvalidArgument);
  }
}

// The nearest grid shape of the same kind, kernel, stride and grouping to a conv layer, as the
// largest factor by which input channels, output channels or resolution differ.
double NearestFactor(const std::vector<OpSpec>& grid, const model::Layer& l, std::string* nearest) {
  const OpKind kind = l.op_type == "ConvTranspose" ? OpKind::kConvTranspose
                      : l.depthwise                ? OpKind::kDepthwiseConv
                                                   : OpKind::kConv;
  const double res = std::sqrt(static_cast<double>(l.input_shape[2]) * l.input_shape[3]);
  double best = 1e9;
  for (const OpSpec& s : grid) {
    if (s.kind != kind || s.kernel != l.kernel[0] || s.stride != l.strides[0] || (s.groups > 1) != l.grouped) continue;
    const double d = std::max({std::fabs(std::log(static_cast<double>(s.in_channels) / l.in_channels)),
                               std::fabs(std::log(static_cast<double>(s.out_channels) / l.out_channels)),
                               std::fabs(std::log(s.height / res))});
    if (d < best) best = d, *nearest = OpSpecKey(s);
  }
  return std::exp(best);
}

TEST_CASE("The grids cover every conv of PP-OCRv4 det", "[profiler]") {
  std::ifstream in(std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/ch_PP-OCRv4_det_infer.onnx", std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  REQUIRE_FALSE(bytes.str().empty());
  model::AnalyzeOptions options;
  options.input_shapes["x"] = {1, 3, 640, 640};
  options.shape_probe = runtime::OnnxRuntimeShapeProbe();
  absl::StatusOr<model::LoadedModel> det = model::LoadModel(bytes.str(), options);
  REQUIRE(det.ok());
  REQUIRE(det->analysis.layers.size() == 64);

  for (const auto& [mode, limit] : {std::pair{ProfileMode::kFull, 1.5}, std::pair{ProfileMode::kQuick, 3.0}}) {
    const std::vector<OpSpec> grid = ProfileGrid(mode);
    INFO(ProfileModeName(mode) << " grid, " << grid.size() << " samples");
    for (const model::Layer& l : det->analysis.layers) {
      std::string nearest;
      const double factor = NearestFactor(grid, l, &nearest);
      INFO(l.name << " " << l.op_type << " k" << l.kernel[0] << " s" << l.strides[0] << " g" << l.groups << " "
                  << l.in_channels << ">" << l.out_channels << " at " << l.input_shape[2] << ": nearest " << nearest);
      CHECK(factor <= limit);
    }
  }
}

TEST_CASE("The grids: unique keys, every kind at every precision, a size that fits the time", "[profiler]") {
  for (ProfileMode mode : {ProfileMode::kQuick, ProfileMode::kFull}) {
    const std::vector<OpSpec> grid = ProfileGrid(mode);
    INFO(ProfileModeName(mode));
    std::set<std::string> keys, groups;
    for (const OpSpec& s : grid) {
      keys.insert(OpSpecKey(s));
      groups.insert(GroupKey(s.kind, s.weight_bits, s.activation_bits, s.sparsity));
      CHECK(ValidateSample([&] {
              LatencySample sample = SampleOf(s);
              sample.macs = ShapeMacs(sample);
              sample.latency_median_us = sample.latency_mean_us = 1;
              return sample;
            }())
                .ok());
    }
    CHECK(keys.size() == grid.size());
    for (OpKind kind : {OpKind::kConv, OpKind::kDepthwiseConv, OpKind::kConvTranspose, OpKind::kGemm}) {
      for (const char* precision : {"fp32 dense", "w8a8 dense", "w16a32 dense", "w8a32 dense", "w4a8 dense",
                                    "w4a32 dense", "fp32 unstructured", "fp32 2:4", "w8a8 unstructured", "w8a8 2:4"}) {
        INFO(OpKindName(kind) << " " << precision);
        CHECK(groups.count(absl::StrCat(OpKindName(kind), " ", precision)) == 1);
      }
    }
    // 2-bit MatMulNBits runs a kernel of its own: gemms only.
    CHECK(groups.count("gemm w2a32 dense") == 1);
    CHECK(groups.count("conv w2a32 dense") == 0);
    for (OpKind kind : {OpKind::kQuantizeLinear, OpKind::kDequantizeLinear, OpKind::kElementwise, OpKind::kTranspose,
                        OpKind::kMaxPool}) {
      CHECK(std::any_of(grid.begin(), grid.end(), [&](const OpSpec& s) { return s.kind == kind; }));
    }
    if (mode == ProfileMode::kQuick) {
      CHECK(grid.size() >= 250);
      CHECK(grid.size() <= 700);
    } else {
      CHECK(grid.size() >= 1500);
      CHECK(grid.size() <= 3500);
    }
  }
}

TEST_CASE("A tiny profiling run gives a valid profile with sane figures and its conditions", "[profiler]") {
  testing::TempDir dir;
  // A whole model to time: the small conv as a file.
  const OpSpec small = ConvSpec(OpKind::kConv, 8, 8, 8, 1, 1);
  const OpSpec big = ConvSpec(OpKind::kConv, 64, 64, 40, 3, 1);  // 3600x the MACs
  absl::StatusOr<SingleOpModel> file_model = BuildSingleOpModel(big, 3);
  REQUIRE(file_model.ok());
  const std::string model_path = dir.File("big.onnx");
  std::ofstream(model_path, std::ios::binary) << file_model->bytes;

  ProfilerOptions options;
  options.device_id = "test-box";
  options.device_name = "Test box";
  options.mode = "test";
  options.grid = {small, big, At(big, 8, 8), OpOf(OpKind::kElementwise, "Relu", {1, 8, 8, 8})};
  options.models = {{model_path, {}, {}}};
  options.timing.warmup = 1;
  options.timing.min_repeats = 1;
  options.timing.min_time_s = 0;
  options.model_timing = options.timing;
  std::vector<ProfileProgress> progress;
  options.progress = [&](const ProfileProgress& p) { progress.push_back(p); };

  absl::StatusOr<Profile> profile = RunProfile(options);
  INFO(profile.status().ToString());
  REQUIRE(profile.ok());
  CHECK(ValidateProfile(*profile).ok());
  REQUIRE(profile->samples.size() == 4);
  REQUIRE(progress.size() == 5);
  CHECK(progress.back().done == 5);
  CHECK(progress.back().total == 5);
  CHECK(progress.back().drift >= 1);

  const LatencySample& s = profile->samples[0];
  const LatencySample& b = profile->samples[1];
  CHECK(s.key == "conv k1 s1 8>8 8x8 fp32");
  CHECK(b.macs == 64 * 64 * 9 * 40 * 40);
  CHECK(b.latency_median_us > s.latency_median_us);  // 3600x the work is not faster
  CHECK(b.weight_bytes == (64 * 64 * 9 + 64) * 4);
  CHECK(b.activation_bytes == 2 * 64 * 40 * 40 * 4);
  CHECK(profile->samples[2].activation_bytes == 2 * 64 * 40 * 40);  // uint8 in and out
  CHECK(profile->samples[3].elements == 512);
  CHECK(profile->samples[3].macs == 0);
  for (const LatencySample& x : profile->samples) {
    CHECK(x.repeats >= 1);
    CHECK(x.threads == 1);
    CHECK(x.provenance == Provenance::kMeasured);
    CHECK(x.runtime_version == runtime::OrtVersion());
    CHECK(x.measured_at.size() == 20);  // 2024-06-01T12:00:00Z
    CHECK(x.latency_p10_us <= x.latency_median_us);
    CHECK(x.latency_median_us <= x.latency_p90_us);
  }

  // The model as it is, then its uniform exports, timed in turns.
  REQUIRE(profile->model_latencies.size() == 4);
  const ModelLatency& m = profile->model_latencies[0];
  CHECK(m.model_sha256 == common::Sha256Hex(file_model->bytes));
  CHECK(m.model_name == "big");
  CHECK(m.variant.empty());
  CHECK(m.latency_median_us > 0);
  const std::vector<std::string> variants = {"uniform w16a32", "uniform w8a32", "uniform w8a8"};
  for (size_t v = 0; v < variants.size(); ++v) {
    const ModelLatency& u = profile->model_latencies[v + 1];
    CHECK(u.variant == variants[v]);
    CHECK(u.model_sha256 == m.model_sha256);
    CHECK(u.latency_median_us > 0);
    CHECK(ParseUniformVariant(u.variant).has_value());
  }
  // A single Conv writes the graph output: no channel of it can go, so no pruned variant.

  const ProfileConditions& c = profile->conditions;
  CHECK(c.tool == "squeeze-profile 0.1.0");
  CHECK(c.mode == "test");
  CHECK(c.threads == 1);
  CHECK(c.warmup_runs == 1);
  CHECK(c.repeats == 1);
  CHECK(c.duration_seconds > 0);
  CHECK(c.runtime_version == runtime::OrtVersion());
  CHECK_FALSE(c.host.empty());
  CHECK(c.measured_at.size() == 20);

  const Device& d = profile->device;
  CHECK(d.id == "test-box");
  CHECK(d.name == "Test box");
  CHECK(d.provenance == Provenance::kMeasured);
  CHECK(d.threads == 1);
  CHECK(d.latency_sample_count == 4);
  CHECK(d.model_latency_count == 4);
  CHECK(d.op_overhead_us == profile->samples[3].latency_median_us);
  CHECK_THAT(d.derivation, Catch::Matchers::Contains("machine speed through the run: '" + OpSpecKey(ReferenceOp())));
  const auto row = std::find_if(d.capabilities.begin(), d.capabilities.end(), [](const Capability& cap) {
    return cap.op_kind == OpKind::kConv && cap.weight_bits == 8 && cap.activation_bits == 8;
  });
  REQUIRE(row != d.capabilities.end());
  CHECK(row->provenance == Provenance::kMeasured);
  CHECK_THAT(row->derivation, Catch::Matchers::Contains("QLinearConv"));

  SECTION("the file round-trips") {
    REQUIRE(WriteProfileFile(dir.File("p.json"), *profile).ok());
    absl::StatusOr<Profile> read = ReadProfileFile(dir.File("p.json"));
    INFO(read.status().ToString());
    REQUIRE(read.ok());
    CHECK(read->samples.size() == 4);
    CHECK(read->model_latencies[0].model_sha256 == m.model_sha256);
  }
  SECTION("bad options are refused before anything is measured") {
    ProfilerOptions bad = options;
    bad.threads = 0;
    CHECK(RunProfile(bad).status().code() == absl::StatusCode::kInvalidArgument);
    bad = options;
    bad.device_id = "Not A Slug";
    CHECK(RunProfile(bad).status().code() == absl::StatusCode::kInvalidArgument);
    bad = options;
    bad.grid.push_back(small);
    CHECK(RunProfile(bad).status().code() == absl::StatusCode::kInvalidArgument);
    bad = options;
    bad.models = {{dir.File("missing.onnx"), {}, {}}};
    CHECK(RunProfile(bad).status().code() == absl::StatusCode::kNotFound);
    bad = options;
    bad.grid.clear();
    bad.models.clear();
    CHECK(RunProfile(bad).status().code() == absl::StatusCode::kInvalidArgument);
  }
}

LatencySample Measured(const OpSpec& spec, double us) {
  LatencySample s = SampleOf(spec);
  s.macs = ShapeMacs(s);
  s.latency_median_us = s.latency_mean_us = us;
  return s;
}

TEST_CASE("A model whose channels can go is also timed with half of them pruned", "[profiler]") {
  // Chain: a and b (8 channels each) can lose channels; at multiples of 4 half of each goes.
  testing::TempDir dir;
  const std::string model_path = dir.File("chain.onnx");
  std::ofstream(model_path, std::ios::binary) << model::testing::ChainProto().SerializeAsString();
  ProfilerOptions options;
  options.mode = "test";
  options.grid = {ConvSpec(OpKind::kConv, 8, 8, 8, 1, 1)};  // a profile needs a sample
  options.timing.min_repeats = 1;
  options.timing.min_time_s = 0;
  options.models = {{model_path, {}, {}}};
  options.channel_alignment = 4;
  options.model_timing.warmup = 0;
  options.model_timing.min_repeats = 1;
  options.model_timing.min_time_s = 0;
  options.reference_checks = 0;
  absl::StatusOr<Profile> profile = RunProfile(options);
  INFO(profile.status().ToString());
  REQUIRE(profile.ok());
  std::vector<std::string> variants;
  for (const ModelLatency& m : profile->model_latencies) {
    variants.push_back(m.variant);
    CHECK(m.latency_median_us > 0);
  }
  CHECK(variants ==
        std::vector<std::string>{"", "uniform w16a32", "uniform w8a32", "uniform w8a8", "uniform w32a32 channel 50%"});
  const std::optional<UniformVariant> pruned = ParseUniformVariant(variants.back());
  REQUIRE(pruned.has_value());
  CHECK(pruned->weight_bits == 32);
  CHECK(pruned->activation_bits == 32);
  CHECK(pruned->channel_ratio == 0.5);
  // At multiples of 8 nothing of 8 channels can go: no pruned variant.
  options.channel_alignment = 8;
  profile = RunProfile(options);
  REQUIRE(profile.ok());
  CHECK(profile->model_latencies.size() == 4);
}

TEST_CASE("Uniform variant labels read back as what they name", "[profiler]") {
  CHECK(UniformVariantLabel(8, 8) == "uniform w8a8");
  CHECK(UniformVariantLabel(32, 32, 0.25) == "uniform w32a32 channel 25%");
  const std::optional<UniformVariant> dense = ParseUniformVariant("uniform w16a32");
  REQUIRE(dense.has_value());
  CHECK(dense->weight_bits == 16);
  CHECK(dense->activation_bits == 32);
  CHECK(dense->channel_ratio == 0);
  for (const char* bad : {"", "w8a8", "uniform w8", "uniform w8a8 channel", "uniform w8a8 channel 0%",
                          "uniform w8a8 channel 100%", "uniform w8a8 unstructured 50%", "uniform w8a8 channel x%"}) {
    INFO(bad);
    CHECK_FALSE(ParseUniformVariant(bad).has_value());
  }
}

TEST_CASE("Capabilities from samples: what is no faster than what it stands for is not native", "[profiler]") {
  const OpSpec a = ConvSpec(OpKind::kConv, 32, 32, 20, 3, 1), b = ConvSpec(OpKind::kConv, 64, 64, 20, 3, 1);
  const std::vector<LatencySample> samples = {
      Measured(a, 100),
      Measured(b, 400),
      Measured(At(a, 8, 8), 50),
      Measured(At(b, 8, 8), 200),  // 2x: native
      Measured(At(a, 32, 32, Sparsity::kTwoFour), 98),
      Measured(At(b, 32, 32, Sparsity::kTwoFour), 410),
      Measured(At(a, 8, 32), 150),
      Measured(At(b, 8, 32), 600),  // slower: emulated
  };
  const std::vector<Capability> rows = MeasuredCapabilities(samples, {{"conv w8a8 dense", "QLinearConv"}}, "test");
  auto find = [&](std::optional<OpKind> kind, int w, int act, Sparsity sp) -> const Capability* {
    for (const Capability& c : rows) {
      if (c.op_kind == kind && c.weight_bits == w && c.activation_bits == act && c.sparsity == sp) return &c;
    }
    return nullptr;
  };
  const Capability* fp32 = find(OpKind::kConv, 32, 32, Sparsity::kDense);
  REQUIRE(fp32 != nullptr);
  CHECK(fp32->native);
  // 2 x 64·64·9·400 MACs in 400 us, the faster of the two.
  CHECK(fp32->peak_ops_per_s == Approx(2.0 * 64 * 64 * 9 * 400 / 400e-6));
  CHECK(fp32->efficiency > 0);
  CHECK(fp32->efficiency <= 1);
  CHECK(fp32->provenance == Provenance::kMeasured);
  const Capability* int8 = find(OpKind::kConv, 8, 8, Sparsity::kDense);
  REQUIRE(int8 != nullptr);
  CHECK(int8->native);
  CHECK_THAT(int8->derivation, Catch::Matchers::Contains("2.00x") && Catch::Matchers::Contains("QLinearConv"));
  const Capability* sparse = find(OpKind::kConv, 32, 32, Sparsity::kTwoFour);
  REQUIRE(sparse != nullptr);
  CHECK_FALSE(sparse->native);
  const Capability* weight_only = find(OpKind::kConv, 8, 32, Sparsity::kDense);
  REQUIRE(weight_only != nullptr);
  CHECK_FALSE(weight_only->native);
  // All-kinds rows mirror conv's.
  const Capability* all = find(std::nullopt, 8, 8, Sparsity::kDense);
  REQUIRE(all != nullptr);
  CHECK(all->native);
  Device d;
  d.id = "x";
  d.name = "x";
  d.runtime = "onnxruntime-cpu";
  d.ram_bytes = d.app_memory_budget_bytes = 1;
  d.memory_bandwidth_bytes_per_s = 1;
  d.source = "test";
  d.capabilities = rows;
  CHECK(ValidateDevice(d).ok());
}

TEST_CASE("squeeze-profile --list prints the grid without measuring, --help describes it", "[profiler]") {
  const std::string binary = testing::Binary("squeeze-profile");
  testing::CommandResult quick = testing::Run({binary, "--list", "--quick"});
  REQUIRE(quick.exit_code == 0);
  const std::vector<std::string> lines = absl::StrSplit(quick.out, '\n', absl::SkipEmpty());
  CHECK(lines.size() == ProfileGrid(ProfileMode::kQuick).size());
  CHECK(lines.front() == OpSpecKey(ProfileGrid(ProfileMode::kQuick).front()));
  CHECK_THAT(quick.err, Catch::Matchers::Contains("quick grid"));
  testing::CommandResult full = testing::Run({binary, "--list"});
  REQUIRE(full.exit_code == 0);
  CHECK(std::count(full.out.begin(), full.out.end(), '\n') ==
        static_cast<long>(ProfileGrid(ProfileMode::kFull).size()));

  testing::CommandResult help = testing::Run({binary, "--help"});
  CHECK(help.exit_code == 0);
  for (const char* flag : {"--output", "--quick", "--threads", "--warmup", "--repeats", "--min-time-ms", "--seed",
                           "--id", "--name", "--list", "--model", "--input-shape"}) {
    CHECK_THAT(help.out, Catch::Matchers::Contains(flag));
  }
  testing::CommandResult orphan = testing::Run({binary, "--input-shape", "x=1,3,8,8", "-o", "/dev/null"});
  CHECK(orphan.exit_code != 0);
  CHECK_THAT(orphan.err, Catch::Matchers::Contains("before any --model"));
}

}  // namespace
}  // namespace squeeze::device_profiles
