#include "device_profiles/cost_model.h"

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "tests/device_profiles/test_device.h"

namespace squeeze::device_profiles {
namespace {

using Catch::Matchers::Contains;

// 1 GMAC conv, 1M weights in 100 output channels, 1M input and 1M output activations.
LayerShape Layer() {
  LayerShape l;
  l.kind = OpKind::kConv;
  l.macs = 1'000'000'000;
  l.weight_params = 1'000'000;
  l.out_channels = 100;
  l.input_elements = 1'000'000;
  l.output_elements = 1'000'000;
  return l;
}

CompressionOption Option(int w, int a, Sparsity pattern = Sparsity::kDense, double prune = 0) {
  CompressionOption o;
  o.weight_bits = w;
  o.activation_bits = a;
  o.pattern = pattern;
  o.prune_ratio = prune;
  return o;
}

std::unique_ptr<DeviceCostModel> Model(Device device, std::vector<LatencySample> samples = {}) {
  auto model = DeviceCostModel::Create(std::move(device), std::move(samples));
  REQUIRE(model.ok());
  return *std::move(model);
}

TEST_CASE("Weight storage bytes count values and scales and sparse indices", "[cost_model]") {
  const LayerShape l = Layer();
  CHECK(WeightStorageBytes(l, Option(32, 32)) == 4'000'000);
  CHECK(WeightStorageBytes(l, Option(16, 16)) == 2'000'000);
  // int8: 1 byte per weight + a 4-byte scale per output channel.
  CHECK(WeightStorageBytes(l, Option(8, 8)) == 1'000'000 + 400);
  CHECK(WeightStorageBytes(l, Option(4, 8)) == 500'000 + 400);
  CHECK(WeightStorageBytes(l, Option(3, 8)) == 375'000 + 400);
  // Unstructured 50%: kept values + a 1-bit mask per weight.
  CHECK(WeightStorageBytes(l, Option(8, 8, Sparsity::kUnstructured, 0.5)) == 500'000 + 125'000 + 400);
  // 2:4: half the values + a 2-bit position per kept value.
  CHECK(WeightStorageBytes(l, Option(8, 8, Sparsity::kTwoFour, 0.5)) == 500'000 + 125'000 + 400);
  // 30% of output channels removed: 70 channels of 10,000 weights, 70 scales.
  CHECK(WeightStorageBytes(l, Option(8, 8, Sparsity::kOutputChannel, 0.3)) == 700'000 + 280);
}

TEST_CASE("Native options follow the spec roofline", "[cost_model]") {
  auto model = Model(TestDevice());
  SECTION("fp32 is compute bound: 2 Gops / (100 Gops/s x 0.5) + 10 us") {
    LatencyPrediction p = model->Predict(Layer(), Option(32, 32));
    CHECK(p.support == Support::kNative);
    CHECK(p.basis == Basis::kSpecRoofline);
    CHECK(p.seconds == Approx(0.04 + 10e-6).epsilon(1e-9));
  }
  SECTION("int8: 2 Gops / (400 Gops/s x 0.5) + 10 us") {
    LatencyPrediction p = model->Predict(Layer(), Option(8, 8));
    CHECK(p.support == Support::kNative);
    CHECK(p.seconds == Approx(0.01 + 10e-6).epsilon(1e-9));
  }
  SECTION("a memory-bound layer is limited by bandwidth") {
    LayerShape l = Layer();
    l.macs = 1'000'000;  // 2 Mops: 40 us of compute at fp32, but 12 MB to move at 10 GB/s
    LatencyPrediction p = model->Predict(l, Option(32, 32));
    CHECK(p.seconds == Approx(12e6 / 10e9 + 10e-6).epsilon(1e-9));
  }
  SECTION("output-channel pruning is a smaller dense layer") {
    LatencyPrediction p = model->Predict(Layer(), Option(32, 32, Sparsity::kOutputChannel, 0.3));
    CHECK(p.support == Support::kNative);
    CHECK(p.seconds == Approx(0.7 * 0.04 + 10e-6).epsilon(1e-9));
  }
}

TEST_CASE("Options the device does not run natively cost what it really does", "[cost_model]") {
  auto model = Model(TestDevice());
  SECTION("int4 weights are unpacked and run as int8") {
    LatencyPrediction p = model->Predict(Layer(), Option(4, 8));
    CHECK(p.support == Support::kEmulated);
    CHECK(p.executed_weight_bits == 8);
    CHECK(p.executed_activation_bits == 8);
    CHECK(p.seconds == Approx(0.01 + 10e-6).epsilon(1e-9));
    CHECK_THAT(p.explanation, Contains("runs as w8a8"));
  }
  SECTION("int8 weights with fp32 activations run at fp32") {
    LatencyPrediction p = model->Predict(Layer(), Option(8, 32));
    CHECK(p.support == Support::kEmulated);
    CHECK(p.executed_weight_bits == 32);
    CHECK(p.seconds == Approx(0.04 + 10e-6).epsilon(1e-9));
  }
  SECTION("fp16 with no fp16 arithmetic runs at fp32") {
    LatencyPrediction p = model->Predict(Layer(), Option(16, 16));
    CHECK(p.support == Support::kEmulated);
    CHECK(p.executed_weight_bits == 32);
  }
  SECTION("2:4 sparsity with no sparse kernel runs dense") {
    LatencyPrediction p = model->Predict(Layer(), Option(8, 8, Sparsity::kTwoFour, 0.5));
    CHECK(p.support == Support::kEmulated);
    CHECK(p.executed_sparsity == Sparsity::kDense);
    CHECK(p.seconds == Approx(0.01 + 10e-6).epsilon(1e-9));
    CHECK_THAT(p.explanation, Contains("no 2:4 sparse kernel"));
  }
}

TEST_CASE("2..7-bit weights are stored in int8 and cost what the 8-bit realization measured", "[cost_model]") {
  Device d = TestDevice();
  Capability w8a32 = d.capabilities[0];
  w8a32.op_kind = OpKind::kConv;
  w8a32.weight_bits = 8;
  w8a32.activation_bits = 32;
  w8a32.native = false;  // no faster than fp32: a DequantizeLinear and a float conv
  w8a32.provenance = Provenance::kMeasured;
  d.capabilities.push_back(w8a32);
  LatencySample sample = TestSample("conv k3 s1 16>32 20x20 w8a32", 120);
  sample.weight_bits = 8;
  sample.activation_bits = 32;
  auto model = Model(d, {sample});
  LayerShape l;
  l.kind = OpKind::kConv;
  l.macs = sample.macs;
  l.in_channels = 16;
  l.out_channels = 32;
  l.height = l.width = 20;
  l.kernel = 3;
  l.weight_params = 32 * 16 * 9;
  l.input_elements = 16 * 400;
  l.output_elements = 32 * 400;
  for (int bits : {2, 3, 4, 5, 6, 8}) {
    const LatencyPrediction p = model->Predict(l, Option(bits, 32));
    INFO(bits << ": " << p.explanation);
    CHECK(p.basis == Basis::kSamples);
    CHECK(p.executed_weight_bits == 8);
    CHECK(p.seconds == Approx(120e-6).epsilon(1e-6));  // the sampled shape comes back as measured
    if (bits < 8) CHECK_THAT(p.explanation, Contains("stored in int8: runs as w8a32"));
  }
}

TEST_CASE("Block-wise MatMul weights cost what MatMulNBits measured at their code width", "[cost_model]") {
  // A gemm measured as fp32, as int8 weights (DequantizeLinear and a float MatMul) and as a
  // MatMulNBits of 4-bit codes: the block-wise options take the last, whatever the block size.
  auto gemm = [](int w, double us) {
    LatencySample s = TestSample(absl::StrCat("gemm 16x256>64 w", w, "a32"), us);
    s.op_kind = OpKind::kGemm;
    s.in_channels = s.out_channels = s.height = s.width = s.kernel = 0;
    s.gemm_m = 16, s.gemm_k = 256, s.gemm_n = 64;
    s.macs = 16 * 256 * 64;
    s.weight_bits = w;
    s.activation_bits = 32;
    return s;
  };
  auto model = Model(TestDevice(), {gemm(32, 30), gemm(8, 45), gemm(4, 20)});
  LayerShape l;
  l.kind = OpKind::kGemm;
  l.macs = 16 * 256 * 64;
  l.weight_params = 256 * 64;
  l.out_channels = 64;
  l.input_elements = 16 * 256;
  l.output_elements = 16 * 64;
  for (int block : {32, 128}) {
    for (int bits : {3, 4}) {
      CompressionOption o = Option(bits, 32);
      o.block_size = block;
      const LatencyPrediction p = model->Predict(l, o);
      INFO(bits << " bits, block " << block << ": " << p.explanation);
      CHECK(p.basis == Basis::kSamples);
      CHECK(p.executed_weight_bits == 4);
      CHECK(p.seconds == Approx(20e-6).epsilon(1e-6));
      if (bits == 3) CHECK_THAT(p.explanation, Contains("stored in 4-bit MatMulNBits codes: runs as w4a32"));
    }
  }
  // The same 4-bit weights with a scale per column are stored in int4 behind a DequantizeLinear: int8's cost.
  CHECK(model->Predict(l, Option(4, 32)).seconds == Approx(45e-6).epsilon(1e-6));
  // A block's scale is stored with it: 64 columns x 256 / 32 blocks of 4 bytes beside 4-bit codes.
  CompressionOption o = Option(4, 32);
  o.block_size = 32;
  CHECK(WeightStorageBytes(l, o) == 256 * 64 / 2 + 64 * 8 * 4);
}

TEST_CASE("A native 2:4 kernel halves the work", "[cost_model]") {
  Device d = TestDevice();
  Capability sparse = d.capabilities[1];  // int8
  sparse.sparsity = Sparsity::kTwoFour;
  d.capabilities.push_back(sparse);
  auto model = Model(d);
  LatencyPrediction p = model->Predict(Layer(), Option(8, 8, Sparsity::kTwoFour, 0.5));
  CHECK(p.support == Support::kNative);
  CHECK(p.executed_sparsity == Sparsity::kTwoFour);
  CHECK(p.seconds == Approx(0.005 + 10e-6).epsilon(1e-9));
}

TEST_CASE("A device with no kernel wide enough cannot run the option", "[cost_model]") {
  Device npu = TestDevice("npu");
  npu.capabilities.erase(npu.capabilities.begin());  // int8 only
  auto model = Model(npu);
  LatencyPrediction p = model->Predict(Layer(), Option(32, 32));
  CHECK(p.support == Support::kUnsupported);
  CHECK_THAT(p.explanation, Contains("no kernel"));
  CHECK(model->Predict(Layer(), Option(4, 8)).support == Support::kEmulated);
}

TEST_CASE("An op kind's own row overrides the all-kinds row", "[cost_model]") {
  Device d = TestDevice();
  Capability depthwise = d.capabilities[0];
  depthwise.op_kind = OpKind::kDepthwiseConv;
  depthwise.efficiency = 0.1;
  d.capabilities.push_back(depthwise);
  auto model = Model(d);
  LayerShape l = Layer();
  l.kind = OpKind::kDepthwiseConv;
  CHECK(model->Predict(l, Option(32, 32)).seconds == Approx(2e9 / (100e9 * 0.1) + 10e-6).epsilon(1e-9));
  CHECK(model->Predict(Layer(), Option(32, 32)).seconds == Approx(0.04 + 10e-6).epsilon(1e-9));
}

TEST_CASE("Measured samples calibrate the roofline", "[cost_model]") {
  // A sample of the same shape measured at twice its roofline time: predictions double.
  LatencySample s;
  s.op_kind = OpKind::kConv;
  s.weight_bits = 8;
  s.activation_bits = 8;
  s.macs = 1'000'000'000;
  s.weight_bytes = 1'000'000;
  s.activation_bytes = 2'000'000;
  s.latency_mean_us = s.latency_median_us = 2 * (0.01 + 10e-6) * 1e6;
  s.source = "test";
  auto model = Model(TestDevice(), {s});
  LatencyPrediction p = model->Predict(Layer(), Option(8, 8));
  CHECK(p.basis == Basis::kSamples);
  CHECK(p.seconds == Approx(2 * (0.01 + 10e-6)).epsilon(1e-6));
  // No samples at fp32: still the roofline.
  CHECK(model->Predict(Layer(), Option(32, 32)).basis == Basis::kSpecRoofline);
}

// A conv sample of this shape whose latency follows a known law: 30 us + 0.1 ns a MAC + 0.5 ns an
// activation element, times `wobble` (what a real kernel adds per shape).
LatencySample LawSample(int64_t c_in, int64_t c_out, int64_t side, int64_t kernel, int64_t stride, double wobble = 1) {
  LatencySample s;
  s.key = "conv k" + std::to_string(kernel) + " s" + std::to_string(stride) + " " + std::to_string(c_in) + ">" +
          std::to_string(c_out) + " " + std::to_string(side);
  s.op_kind = OpKind::kConv;
  s.in_channels = c_in;
  s.out_channels = c_out;
  s.height = s.width = side;
  s.kernel = kernel;
  s.stride = stride;
  const int64_t out_side = (side + stride - 1) / stride;
  s.macs = c_out * out_side * out_side * c_in * kernel * kernel;
  const double elements = static_cast<double>(c_in * side * side + c_out * out_side * out_side);
  s.latency_median_us = s.latency_mean_us = wobble * (30 + 1e-4 * s.macs + 5e-4 * elements);
  s.repeats = 10;
  return s;
}

LayerShape LawLayer(int64_t c_in, int64_t c_out, int64_t side, int64_t kernel, int64_t stride) {
  const LatencySample s = LawSample(c_in, c_out, side, kernel, stride);
  LayerShape l;
  l.kind = OpKind::kConv;
  l.macs = s.macs;
  l.in_channels = c_in;
  l.out_channels = c_out;
  l.height = l.width = side;
  l.kernel = kernel;
  l.stride = stride;
  l.weight_params = c_out * c_in * kernel * kernel;
  l.input_elements = c_in * side * side;
  l.output_elements = s.macs / (c_in * kernel * kernel);
  return l;
}

TEST_CASE("Samples are fitted in MACs and bytes and interpolated across shapes", "[cost_model]") {
  std::vector<LatencySample> samples;
  for (int64_t c : {16, 64, 256}) {
    for (int64_t side : {20, 80, 160}) {
      for (int64_t k : {1, 3}) samples.push_back(LawSample(c, c, side, k, 1));
    }
  }
  auto model = Model(TestDevice(), samples);
  SECTION("an unsampled shape follows the law the samples do") {
    const LayerShape l = LawLayer(32, 48, 40, 3, 1);
    const LatencySample truth = LawSample(32, 48, 40, 3, 1);
    LatencyPrediction p = model->Predict(l, Option(32, 32));
    CHECK(p.basis == Basis::kSamples);
    CHECK_THAT(p.explanation, Contains("18 measured conv w32a32"));
    CHECK(p.seconds == Approx(truth.latency_median_us * 1e-6).epsilon(0.02));
  }
  SECTION("a sampled shape comes back as measured, its own quirk included") {
    std::vector<LatencySample> quirky = samples;
    quirky[9] = LawSample(64, 64, 80, 3, 1, 1.3);  // this shape runs 30% slower than the law
    auto m = Model(TestDevice(), quirky);
    CHECK(m->Predict(LawLayer(64, 64, 80, 3, 1), Option(32, 32)).seconds ==
          Approx(quirky[9].latency_median_us * 1e-6).epsilon(0.02));
    CHECK_THAT(m->Predict(LawLayer(64, 64, 80, 3, 1), Option(32, 32)).explanation, Contains("64>64 80"));
  }
  SECTION("samples of another precision do not apply") {
    CHECK(model->Predict(LawLayer(32, 48, 40, 3, 1), Option(8, 8)).basis == Basis::kSpecRoofline);
  }
  SECTION("a weight width stored in a wider container is predicted from that container's samples") {
    // A device with a weight-only row for w6a32 (characterised) and samples at w8a32 only: the
    // exporter stores 6-bit weights in int8, which the samples measured.
    Device device = TestDevice();
    Capability w6 = device.capabilities[0];
    w6.weight_bits = 6;
    w6.native = false;
    device.capabilities.push_back(w6);
    std::vector<LatencySample> w8a32 = samples;
    for (LatencySample& sample : w8a32) {
      sample.weight_bits = 8;
      sample.latency_median_us *= 1.5;  // weight-only dequantization costs half again
    }
    auto m = Model(device, w8a32);
    LatencyPrediction p = m->Predict(LawLayer(32, 48, 40, 3, 1), Option(6, 32));
    CHECK(p.basis == Basis::kSamples);
    CHECK_THAT(p.explanation, Contains("w8a32") && Contains("6-bit weights are stored in int8"));
    CHECK(p.seconds == Approx(1.5 * LawSample(32, 48, 40, 3, 1).latency_median_us * 1e-6).epsilon(0.02));
    // Never a narrower container, never another activation width.
    CHECK(m->Predict(LawLayer(32, 48, 40, 3, 1), Option(16, 32)).basis == Basis::kSpecRoofline);
  }
}

TEST_CASE("Integer-activation conv samples lose the transposes their single-op models ran", "[cost_model]") {
  // A uint8 transpose: 2 us + 1 ns a value. The w8a8 samples ran the law's kernel between two of
  // them (ONNX Runtime's NHWC integer conv inside an NCHW single-op graph).
  auto transpose_us = [](double elements) { return 2 + 1e-3 * elements; };
  std::vector<LatencySample> samples;
  for (int64_t c : {16, 64, 256}) {
    for (int64_t side : {20, 80, 160}) {
      for (int64_t k : {1, 3}) {
        LatencySample s = LawSample(c, c, side, k, 1);
        s.key += " w8a8";
        s.weight_bits = s.activation_bits = 8;
        const double elements = static_cast<double>(c * side * side);
        s.latency_median_us = s.latency_mean_us = s.latency_median_us + 2 * transpose_us(elements);
        samples.push_back(s);
      }
    }
  }
  const LayerShape layer = LawLayer(32, 48, 40, 3, 1);
  const double law = LawSample(32, 48, 40, 3, 1).latency_median_us * 1e-6;
  // Each transpose sample is a whole run, whose overhead (10 us on the test device) the conv's own
  // run paid once already.
  const double overhead = TestDevice().op_overhead_us * 1e-6;
  const double around = (transpose_us(32 * 40 * 40) + transpose_us(48 * 40 * 40)) * 1e-6;
  SECTION("without transpose samples the transposes stay in (nothing else would price them)") {
    LatencyPrediction p = Model(TestDevice(), samples)->Predict(layer, Option(8, 8));
    CHECK(p.seconds == Approx(law + around).epsilon(0.03));
    CHECK_THAT(p.explanation, !Contains("transposes"));
  }
  SECTION("with them, the kernel alone: boundaries pay the transposes where layouts meet") {
    for (int64_t elements : {1'000, 30'000, 1'000'000, 10'000'000}) {
      LatencySample s;
      s.key = "transpose " + std::to_string(elements);
      s.op_kind = OpKind::kTranspose;
      s.activation_bits = 8;
      s.elements = elements;
      s.latency_median_us = s.latency_mean_us = transpose_us(static_cast<double>(elements));
      samples.push_back(s);
    }
    auto model = Model(TestDevice(), samples);
    LatencyPrediction p = model->Predict(layer, Option(8, 8));
    CHECK(p.basis == Basis::kSamples);
    CHECK(p.seconds == Approx(law + 2 * overhead).epsilon(0.03));
    CHECK_THAT(p.explanation, Contains("less the uint8 NCHW/NHWC transposes"));
    CHECK(model->PredictOp(OpKind::kTranspose, 76'800, 153'600).seconds ==
          Approx(transpose_us(76'800) * 1e-6).epsilon(0.02));
    // Float samples are as measured.
    std::vector<LatencySample> fp32 = samples;
    for (LatencySample& s : fp32) {
      if (s.op_kind == OpKind::kConv) s.weight_bits = s.activation_bits = 32;
    }
    CHECK_THAT(Model(TestDevice(), fp32)->Predict(layer, Option(32, 32)).explanation, !Contains("transposes"));
  }
}

TEST_CASE("Non-layer ops are costed from their samples, else from bandwidth", "[cost_model]") {
  std::vector<LatencySample> samples;
  for (int64_t elements : {1'000, 100'000, 10'000'000}) {
    LatencySample s;
    s.key = "add " + std::to_string(elements);
    s.op_kind = OpKind::kElementwise;
    s.elements = elements;
    s.latency_median_us = s.latency_mean_us = 4 + 2e-3 * elements;  // 4 us + 2 ns a value
    samples.push_back(s);
  }
  auto model = Model(TestDevice(), samples);
  OpPrediction p = model->PredictOp(OpKind::kElementwise, 1'000'000, 8e6);
  CHECK(p.basis == Basis::kSamples);
  CHECK(p.seconds == Approx((4 + 2e-3 * 1e6) * 1e-6).epsilon(0.02));
  OpPrediction q = model->PredictOp(OpKind::kQuantizeLinear, 1'000'000, 5e6);
  CHECK(q.basis == Basis::kSpecRoofline);
  CHECK(q.seconds == Approx(5e6 / TestDevice().memory_bandwidth_bytes_per_s + 10e-6));
}

TEST_CASE("Invalid devices are refused", "[cost_model]") {
  Device d = TestDevice();
  d.memory_bandwidth_bytes_per_s = 0;
  CHECK(DeviceCostModel::Create(d, {}).status().code() == absl::StatusCode::kInvalidArgument);
  LatencySample negative;
  negative.macs = 10;
  negative.latency_mean_us = -1;
  CHECK(DeviceCostModel::Create(TestDevice(), {negative}).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("The proportional test model scales with MACs and bits", "[cost_model]") {
  ProportionalCostModel model(1e-9);
  CHECK(model.Predict(Layer(), Option(32, 32)).seconds == Approx(1.0));
  CHECK(model.Predict(Layer(), Option(8, 8)).seconds == Approx(0.25));
}

}  // namespace
}  // namespace squeeze::device_profiles
