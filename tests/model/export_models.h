// Small models for export tests (tests/model and tests/runtime): a residual block whose channel
// pruning must be followed through BatchNormalization, a residual Add, a per-channel Mul, a
// depthwise conv and a Concat.
#ifndef SQUEEZE_TESTS_MODEL_EXPORT_MODELS_H_
#define SQUEEZE_TESTS_MODEL_EXPORT_MODELS_H_

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "tests/model/test_models.h"

namespace squeeze::model::testing {

// Rows scaled by `row_scale[c]`: which output channels magnitude pruning takes is under control.
inline std::vector<float> Rows(const std::vector<int64_t>& dims, const std::vector<float>& row_scale) {
  const int64_t per = Count(dims) / dims[0];
  std::vector<float> v = Ramp(Count(dims), 0.1f);
  for (int64_t c = 0; c < dims[0]; ++c) {
    for (int64_t k = 0; k < per; ++k) {
      float& x = v[c * per + k];
      if (x == 0) x = 0.05f;
      x *= row_scale[c];
    }
  }
  return v;
}

// x → Conv a (3→8) → Relu ar → Conv b (8→8, 1×1) → BN → Add(·, ar) r → depthwise Conv d →
// Concat(d, ar) → Conv y (16→4): a residual, a depthwise conv and a concat on one channel set.
inline onnx::ModelProto ResidualProto(const std::vector<float>& a_rows, const std::vector<float>& b_rows) {
  onnx::ModelProto proto = ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 13]>
    residual (float[1, 3, 8, 8] x) => (float[1, 4, 8, 8] y) {
      a = Conv <pads = [1, 1, 1, 1]> (x, wa, ba)
      ar = Relu (a)
      b = Conv (ar, wb)
      bn = BatchNormalization (b, gamma, beta, mean, var)
      r = Add (bn, ar)
      s = Mul (r, chscale)
      d = Conv <group = 8, pads = [1, 1, 1, 1]> (s, wd, bd)
      c = Concat <axis = 1> (d, ar)
      y = Conv (c, wy, by)
    }
  )onnx");
  onnx::GraphProto* g = proto.mutable_graph();
  AddInitializer(g, FloatTensor("wa", {8, 3, 3, 3}, Encoding::kRaw, Rows({8, 3, 3, 3}, a_rows)));
  AddInitializer(g, FloatTensor("ba", {8}, Encoding::kRaw, std::vector<float>(8, 0.f)));
  AddConstantNode(g, "wb", FloatTensor("", {8, 8, 1, 1}, Encoding::kRaw, Rows({8, 8, 1, 1}, b_rows)));
  AddInitializer(g, FloatTensor("gamma", {8}, Encoding::kRaw, std::vector<float>(8, 1.f)));
  AddInitializer(g, FloatTensor("beta", {8}, Encoding::kRaw, std::vector<float>(8, 0.f)));
  AddInitializer(g, FloatTensor("mean", {8}, Encoding::kRaw, std::vector<float>(8, 0.f)));
  AddInitializer(g, FloatTensor("var", {8}, Encoding::kRaw, std::vector<float>(8, 1.f)));
  AddInitializer(g, FloatTensor("chscale", {8, 1, 1}, Encoding::kRaw, {1, 2, 1, 2, 1, 2, 1, 2}));
  AddInitializer(g, FloatTensor("wd", {8, 1, 3, 3}, Encoding::kRaw));
  AddInitializer(g, FloatTensor("bd", {8}, Encoding::kRaw, std::vector<float>(8, 0.f)));
  AddInitializer(g, FloatTensor("wy", {4, 16, 1, 1}, Encoding::kRaw));
  AddInitializer(g, FloatTensor("by", {4}));
  return proto;
}

// x -> Conv a (3>8) -> Relu -> Conv b (8>8) -> depthwise d -> Conv c (8>4) -> y
inline onnx::ModelProto ChainProto() {
  onnx::ModelProto proto = ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 13]>
    chain (float[1, 3, 8, 8] x) => (float[1, 4, 8, 8] y) {
      a = Conv <pads = [1, 1, 1, 1]> (x, wa)
      ar = Relu (a)
      b = Conv (ar, wb)
      d = Conv <group = 8, pads = [1, 1, 1, 1]> (b, wd)
      y = Conv (d, wc)
    }
  )onnx");
  onnx::GraphProto* g = proto.mutable_graph();
  AddInitializer(g, FloatTensor("wa", {8, 3, 3, 3}, Encoding::kRaw));
  AddInitializer(g, FloatTensor("wb", {8, 8, 1, 1}, Encoding::kRaw));
  AddInitializer(g, FloatTensor("wd", {8, 1, 3, 3}, Encoding::kRaw));
  AddInitializer(g, FloatTensor("wc", {4, 8, 1, 1}, Encoding::kRaw));
  return proto;
}
// x → Conv a (3→C, 3×3, bias) → Relu → Conv b (C→C, 1×1) → BN → Relu → depthwise Conv d (C, 3×3,
// bias) → BN → Relu → Mul by a per-channel scale → Conv c (C→4, 1×1, bias) → y, on a 16×16 input.
// a's channels narrow b's input; b's run through its BatchNormalization, the depthwise Conv, its
// BatchNormalization and the Mul into c. Both BatchNormalizations fold into integer weights.
inline onnx::ModelProto NarrowingProto(int64_t channels) {
  std::string text = R"onnx(
    <ir_version: 8, opset_import: ["" : 13]>
    narrowing (float[1, 3, 16, 16] x) => (float[1, 4, 16, 16] y) {
      a = Conv <pads = [1, 1, 1, 1]> (x, wa, ba)
      ar = Relu (a)
      b = Conv (ar, wb)
      bn = BatchNormalization (b, gb, betab, mb, vb)
      br = Relu (bn)
      d = Conv <group = C, pads = [1, 1, 1, 1]> (br, wd, bd)
      dn = BatchNormalization (d, gd, betad, md, vd)
      dr = Relu (dn)
      s = Mul (dr, chscale)
      y = Conv (s, wc, bc)
    }
  )onnx";
  text.replace(text.find("group = C"), 9, "group = " + std::to_string(channels));
  onnx::ModelProto proto = ParseModel(text.c_str());
  onnx::GraphProto* g = proto.mutable_graph();
  const int64_t c = channels;
  AddInitializer(g, FloatTensor("wa", {c, 3, 3, 3}, Encoding::kRaw));
  AddInitializer(g, FloatTensor("ba", {c}, Encoding::kRaw));
  AddInitializer(g, FloatTensor("wb", {c, c, 1, 1}, Encoding::kRaw));
  AddInitializer(g, FloatTensor("wd", {c, 1, 3, 3}, Encoding::kRaw));
  AddInitializer(g, FloatTensor("bd", {c}, Encoding::kRaw));
  for (const char* bn : {"b", "d"}) {
    const std::string k = bn;
    AddInitializer(g, FloatTensor("g" + k, {c}, Encoding::kRaw, std::vector<float>(c, 1.5f)));
    AddInitializer(g, FloatTensor("beta" + k, {c}, Encoding::kRaw));
    AddInitializer(g, FloatTensor("m" + k, {c}, Encoding::kRaw, std::vector<float>(c, 0.25f)));
    AddInitializer(g, FloatTensor("v" + k, {c}, Encoding::kRaw, std::vector<float>(c, 2.f)));
  }
  AddInitializer(g, FloatTensor("chscale", {c, 1, 1}, Encoding::kRaw));
  AddInitializer(g, FloatTensor("wc", {4, c, 1, 1}, Encoding::kRaw));
  AddInitializer(g, FloatTensor("bc", {4}, Encoding::kRaw));
  return proto;
}

// x → Conv a (3→C) → Mul by a per-channel scale s → Add a [C, side, side] bias → Conv b (C→4) → y,
// on a side×side input: one region between the two layers on a whole-graph flavour, holding two
// float constants.
inline onnx::ModelProto ScaledBiasProto(int64_t channels, int64_t side) {
  std::string text = R"onnx(
    <ir_version: 8, opset_import: ["" : 13]>
    scaled (float[1, 3, S, S] x) => (float[1, 4, S, S] y) {
      a = Conv <pads = [1, 1, 1, 1]> (x, wa)
      m = Mul (a, s)
      t = Add (m, bias)
      y = Conv (t, wb)
    }
  )onnx";
  for (size_t at = text.find(", S"); at != std::string::npos; at = text.find(", S")) {
    text.replace(at, 3, ", " + std::to_string(side));
  }
  onnx::ModelProto proto = ParseModel(text.c_str());
  onnx::GraphProto* g = proto.mutable_graph();
  AddInitializer(g, FloatTensor("wa", {channels, 3, 3, 3}, Encoding::kRaw));
  AddInitializer(g, FloatTensor("s", {1, channels, 1, 1}, Encoding::kRaw));
  AddInitializer(g, FloatTensor("bias", {1, channels, side, side}, Encoding::kRaw));
  AddInitializer(g, FloatTensor("wb", {4, channels, 1, 1}, Encoding::kRaw));
  return proto;
}

inline const std::vector<float> kSmallFirstHalf = {0.001f, 0.001f, 0.001f, 0.001f, 1, 1, 1, 1};

}  // namespace squeeze::model::testing

#endif  // SQUEEZE_TESTS_MODEL_EXPORT_MODELS_H_
