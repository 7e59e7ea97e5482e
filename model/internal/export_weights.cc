#include "model/internal/export_weights.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/internal/graph.h"
#include "model/internal/tensor_data.h"

namespace squeeze::model::internal {
namespace {

constexpr double kInt32Max = 2147483647.0;

int64_t Product(const std::vector<int64_t>& dims, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t i = begin; i < end; ++i) n *= dims[i];
  return n;
}

// Keeps, along `axis` of a row-major tensor with `dims`, the positions `keep` lists (ascending).
template <typename T>
std::vector<T> SliceAxis(const std::vector<T>& values, std::vector<int64_t>* dims, size_t axis,
                         const std::vector<int64_t>& keep) {
  const int64_t outer = Product(*dims, 0, axis), n = (*dims)[axis], inner = Product(*dims, axis + 1, dims->size());
  std::vector<T> out;
  out.reserve(static_cast<size_t>(outer * static_cast<int64_t>(keep.size()) * inner));
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k : keep) {
      const T* begin = values.data() + (o * n + k) * inner;
      out.insert(out.end(), begin, begin + inner);
    }
  }
  (*dims)[axis] = static_cast<int64_t>(keep.size());
  return out;
}

std::vector<int64_t> Complement(int64_t n, const std::set<int64_t>& removed) {
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < n; ++i) {
    if (!removed.count(i)) keep.push_back(i);
  }
  return keep;
}

// The axis of `dims` that holds the output channels of a groups == 1 layout, or -1.
int ChannelAxis(const std::vector<int64_t>& dims, const ChannelLayout& layout) {
  if (layout.groups != 1) return -1;
  for (size_t a = 0; a < dims.size(); ++a) {
    if (Product(dims, 0, a) == layout.outer && dims[a] == layout.axis &&
        Product(dims, a + 1, dims.size()) == layout.inner) {
      return static_cast<int>(a);
    }
  }
  return -1;
}

// The output rows (pruned Conv sources) and input channels a layer loses with the channels the
// flow removes.
struct Removals {
  std::set<int64_t> rows, inputs;
  bool depthwise = false;
};

Removals RemovalsOf(const Layer& layer, onnx::NodeProto* node_ptr, const ChannelFlow& flow) {
  Removals r;
  const onnx::NodeProto& node = *node_ptr;
  const bool main = layer.subgraph.empty();
  r.depthwise = main && flow.depthwise().count(node_ptr) > 0;
  if (main && layer.op_type == "Conv") {
    r.rows = flow.Removed(node.output(0));
    if (!r.depthwise) r.inputs = flow.Removed(node.input(0));
  } else if (main && layer.op_type == "ConvTranspose" && IntAttribute(node, "group", 1) == 1) {
    r.inputs = flow.Removed(node.input(0));
  }
  return r;
}

// The weight after removals: its original values, mask and masked values sliced alike, and the
// layout of what is left.
struct SlicedWeight {
  std::vector<float> original;
  std::vector<float> zeroed;  // masked weights 0
  std::vector<uint8_t> mask;
  std::vector<int64_t> dims;
  ChannelLayout layout;
  double energy = 0;  // ||W||² of the whole original weight, removals included
  int64_t kept = 0;   // weights the mask keeps
};

SlicedWeight Slice(const Layer& layer, const LayerWeight& w, const Removals& r, int channel_axis) {
  SlicedWeight s;
  s.original = w.original;
  s.zeroed = w.original;
  s.mask = w.mask;
  s.dims = w.dims;
  for (size_t k = 0; k < s.zeroed.size(); ++k) {
    s.energy += static_cast<double>(w.original[k]) * w.original[k];
    if (!w.mask[k]) s.zeroed[k] = 0;
  }
  auto slice = [&s](size_t axis, const std::set<int64_t>& removed) {
    const std::vector<int64_t> keep = Complement(s.dims[axis], removed);
    std::vector<int64_t> d0 = s.dims, d1 = s.dims;
    s.original = SliceAxis(s.original, &d0, axis, keep);
    s.mask = SliceAxis(s.mask, &d1, axis, keep);
    s.zeroed = SliceAxis(s.zeroed, &s.dims, axis, keep);
  };
  if (!r.rows.empty()) slice(0, r.rows);
  if (!r.inputs.empty()) slice(layer.op_type == "ConvTranspose" ? 0 : 1, r.inputs);
  s.layout = layer.weight_layout;
  if ((!r.rows.empty() || !r.inputs.empty()) && channel_axis >= 0) {
    s.layout = ChannelLayout{Product(s.dims, 0, channel_axis), s.dims[channel_axis],
                             Product(s.dims, channel_axis + 1, s.dims.size()), 1};
  }
  for (uint8_t m : s.mask) s.kept += m;
  return s;
}

// A layer's bias where it is rewritten: the constant vector, sliced with the removed rows.
struct Bias {
  const onnx::TensorProto* constant = nullptr;  // null when the bias is no constant vector
  std::vector<int64_t> dims;
  std::vector<float> values;
};

Bias BiasOf(const Site& site, const std::set<int64_t>& rows_removed) {
  Bias bias;
  const onnx::TensorProto* b = FindConstant(site.scopes, site.node->input(2));
  if (b == nullptr || b->dims_size() != 1 || !IsDecodableFloat(b->data_type())) return bias;
  bias.constant = b;
  bias.dims = {b->dims(0)};
  bias.values = DecodeFloats(*b);
  if (!rows_removed.empty()) {
    bias.values = SliceAxis(bias.values, &bias.dims, 0, Complement(bias.dims[0], rows_removed));
  }
  return bias;
}

// Integer weights: per output channel, the MSE-clipped symmetric scale (QuantizeRow), raised to
// `scale_floor[c]` where the int32 bias needs it.
struct IntWeight {
  std::vector<float> w_hat;  // dequantized, storage order
  std::vector<int8_t> q;     // storage order
  std::vector<float> scales;
  int64_t raised_scales = 0;
};

IntWeight QuantizeWeight(const SlicedWeight& s, int bits, const std::vector<float>& scale_floor) {
  const ChannelMatrix cm = ToChannelMajor(s.zeroed, s.layout);
  const ChannelMatrix mask_cm = ToChannelMajor(std::vector<float>(s.mask.begin(), s.mask.end()), s.layout);
  ChannelMatrix out = cm;
  ChannelMatrix levels = cm;
  IntWeight iw;
  iw.scales.resize(static_cast<size_t>(cm.channels));
  for (int64_t c = 0; c < cm.channels; ++c) {
    const size_t begin = static_cast<size_t>(c * cm.per_channel);
    const absl::Span<float> row_out = absl::MakeSpan(out.values).subspan(begin, static_cast<size_t>(cm.per_channel));
    std::vector<uint8_t> row_mask(static_cast<size_t>(cm.per_channel));
    for (int64_t k = 0; k < cm.per_channel; ++k) row_mask[k] = mask_cm.values[begin + k] != 0;
    float scale = QuantizeRow(cm.Row(c), row_mask, bits, row_out);
    if (!(scale > 0)) scale = 1;  // an all-zero row
    if (static_cast<size_t>(c) < scale_floor.size() && scale < scale_floor[c]) {
      scale = scale_floor[c];
      QuantizeRowAt(cm.Row(c), row_mask, bits, scale, row_out);
      ++iw.raised_scales;
    }
    iw.scales[c] = scale;
    for (int64_t k = 0; k < cm.per_channel; ++k) {
      levels.values[begin + k] = static_cast<int8_t>(std::nearbyint(out.values[begin + k] / scale));
    }
  }
  iw.w_hat = FromChannelMajor(out, s.layout);
  const std::vector<float> q_storage = FromChannelMajor(levels, s.layout);
  iw.q.resize(q_storage.size());
  for (size_t k = 0; k < iw.q.size(); ++k) iw.q[k] = static_cast<int8_t>(q_storage[k]);
  return iw;
}

// The names a layer's rewrite adds are made from one base, so a file reads layer by layer.
struct Writer {
  GraphEditor& editor;
  const Site& site;
  std::string base;
  std::set<std::string>* weight_constants;
  int64_t written = 0;  // bytes of every constant written (LayerExport::file_bytes)

  std::string Weight(onnx::TensorProto t) {
    weight_constants->insert(t.name());
    return Constant(std::move(t));
  }
  std::string Constant(onnx::TensorProto t) {
    written += StoredBytes(t);
    return editor.AddInitializer(site.graph(), std::move(t));
  }
  std::string Fresh(const std::string& suffix) { return editor.Fresh(base + suffix); }
  void Before(onnx::NodeProto node) { editor.InsertBefore(site.graph(), site.node, std::move(node)); }
};

// int4 values (each in [-8, 7]) two to a byte, the first in the low nibble: ONNX's INT4 layout.
onnx::TensorProto Int4TensorOf(const std::string& name, const std::vector<int64_t>& dims,
                               const std::vector<int8_t>& values) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(kInt4);
  for (int64_t d : dims) t.add_dims(d);
  std::string packed((values.size() + 1) / 2, '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    const uint8_t nibble = static_cast<uint8_t>(values[i]) & 0x0F;
    packed[i / 2] = static_cast<char>(static_cast<uint8_t>(packed[i / 2]) | (i % 2 ? nibble << 4 : nibble));
  }
  t.set_raw_data(std::move(packed));
  return t;
}

// Stores integer weights with a per-channel DequantizeLinear (a Cast to fp16 after it for an fp16
// model): in int8, or — `int4`, for 2..4-bit weights — two to a byte in INT4, read by ONNX
// Runtime's com.microsoft DequantizeLinear (the standard one takes INT4 only from opset 21, which
// the converter this build links cannot reach). Returns the value the layer reads.
std::string StoreIntWeight(Writer& out, const SlicedWeight& s, const IntWeight& iw, int channel_axis, int32_t elem_type,
                           bool int4) {
  const int64_t channels = s.layout.channels();
  const std::vector<int8_t> zeros(static_cast<size_t>(channels), 0);
  const std::string q = out.Weight(int4 ? Int4TensorOf(out.Fresh("_q"), s.dims, iw.q)
                                        : RawTensorOf(out.Fresh("_q"), onnx::TensorProto::INT8, s.dims, iw.q));
  const std::string scale =
      out.Weight(RawTensorOf(out.Fresh("_scale"), onnx::TensorProto::FLOAT, {channels}, iw.scales));
  const std::string zero_point =
      out.Weight(int4 ? Int4TensorOf(out.Fresh("_zero_point"), {channels}, zeros)
                      : RawTensorOf(out.Fresh("_zero_point"), onnx::TensorProto::INT8, {channels}, zeros));
  std::string value = out.Fresh("_dq");
  onnx::NodeProto dq = MakeNode("DequantizeLinear", out.Fresh("_dequantize"), {q, scale, zero_point}, {value});
  if (int4) dq.set_domain(std::string(kMicrosoftDomain));
  SetIntAttribute(&dq, "axis", channel_axis);
  out.Before(std::move(dq));
  if (elem_type == onnx::TensorProto::FLOAT16) {
    const std::string half = out.Fresh("_half");
    out.Before(CastNode(out.Fresh("_cast"), value, half, onnx::TensorProto::FLOAT16));
    value = half;
  }
  return value;
}

// Stores float weights, in fp16 for 16 bits (a Cast back when the model computes in fp32);
// returns the value the layer reads and sets `w_hat` to what it holds.
std::string StoreFloatWeight(Writer& out, const SlicedWeight& s, int bits, int32_t elem_type,
                             std::vector<float>* w_hat) {
  *w_hat = s.zeroed;
  const int32_t store = bits == 16 ? onnx::TensorProto::FLOAT16 : elem_type;
  if (store == onnx::TensorProto::FLOAT16) {
    for (float& x : *w_hat) x = RoundToHalf(x);
  }
  std::string value = out.Weight(FloatTensorOf(out.editor.Fresh(out.base), store, s.dims, *w_hat));
  if (store != elem_type) {
    const std::string as_float = out.Fresh("_float");
    out.Before(CastNode(out.Fresh("_cast"), value, as_float, elem_type));
    value = as_float;
  }
  return value;
}

// An int32 bias at scale s_input · s_weight[c] behind a DequantizeLinear, so ONNX Runtime fuses
// the layer into its integer kernel; false (nothing written) when a channel's bias overflows int32.
bool StoreInt32Bias(Writer& out, const Bias& bias, float input_scale, const std::vector<float>& scales) {
  std::vector<int32_t> levels(bias.values.size());
  std::vector<float> bias_scales(bias.values.size());
  for (size_t c = 0; c < bias.values.size(); ++c) {
    bias_scales[c] = input_scale * scales[c];
    const double v = std::nearbyint(static_cast<double>(bias.values[c]) / bias_scales[c]);
    if (!(std::fabs(v) <= kInt32Max && bias_scales[c] > 0)) return false;
    levels[c] = static_cast<int32_t>(v);
  }
  const std::string q = out.Constant(RawTensorOf(out.Fresh("_bias_q"), onnx::TensorProto::INT32, bias.dims, levels));
  const std::string scale =
      out.Constant(RawTensorOf(out.Fresh("_bias_scale"), onnx::TensorProto::FLOAT, bias.dims, bias_scales));
  const std::string zero_point = out.Constant(RawTensorOf(out.Fresh("_bias_zero_point"), onnx::TensorProto::INT32,
                                                          bias.dims, std::vector<int32_t>(bias.values.size(), 0)));
  const std::string value = out.Fresh("_bias_dq");
  onnx::NodeProto dq = MakeNode("DequantizeLinear", out.Fresh("_bias_dequantize"), {q, scale, zero_point}, {value});
  SetIntAttribute(&dq, "axis", 0);
  out.Before(std::move(dq));
  out.site.node->set_input(2, value);
  return true;
}

// The least weight scale per channel at which its bias fits int32 at `input_scale` (a little
// below the limit, for the float roundings of the scales), as ONNX Runtime's own quantizer does.
std::vector<float> ScaleFloor(const Bias& bias, double input_scale) {
  std::vector<float> floor;
  for (float v : bias.values)
    floor.push_back(static_cast<float>(std::fabs(v) / (input_scale * kInt32Max * (1 - 1e-5))));
  return floor;
}

// Why a layer's plan is not followed exactly for its activations, or "" when it is.
std::string ActivationNote(const Layer& layer, const LayerPlan& plan, ExportFlavour flavour, LayerExport* le) {
  if (!QuantizesActivations(flavour, plan.weight_bits, plan.activation_bits)) {
    // (An fp16 layer is float in the file by definition; integer weights with 16-bit activations
    // are worth the note.)
    return plan.activation_bits == 16 && plan.weight_bits <= 8
               ? "16-bit activations are the runtime's choice: float in the file"
               : "";
  }
  if (!layer.subgraph.empty()) return "activations inside a subgraph stay float";
  if (layer.weight_elem_type != onnx::TensorProto::FLOAT) return "fp16 activations stay float16";
  le->activation_quantized = true;
  return "";
}

// ||W − Ŵ||² / ||W||² over the original weight, removed weights counted in full.
double Distortion(const SlicedWeight& s, const std::vector<float>& w_hat) {
  double kept_energy = 0, err = 0;
  for (size_t k = 0; k < s.original.size(); ++k) {
    kept_energy += static_cast<double>(s.original[k]) * s.original[k];
    const double d = static_cast<double>(s.original[k]) - w_hat[k];
    err += d * d;
  }
  return s.energy > 0 ? (s.energy - kept_energy + err) / s.energy : 0;
}

// A layer's report before its rewrite: what it is and what the plan asks.
LayerExport ReportOf(const Layer& layer, const LayerPlan& plan) {
  LayerExport le;
  le.layer = layer.name;
  le.op_type = layer.op_type;
  le.plan = plan;
  le.option = LayerPlanLabel(plan);
  le.params = layer.params;
  le.out_channels = layer.out_channels;
  return le;
}

// The rows the plan prunes that stay in the file as zeros, with a note saying why.
int64_t ZeroedRows(const Layer& layer, size_t index, const LayerWeight& weight, const Removals& removals,
                   const ChannelFlow& flow, std::vector<std::string>* notes) {
  int64_t zeroed = 0;
  for (int64_t c = 0; c < layer.out_channels; ++c) zeroed += weight.pruned_rows[c] && !removals.rows.count(c);
  if (zeroed == 0) return 0;
  const std::string why = flow.WhyKept(index);
  notes->push_back(absl::StrCat(zeroed, " pruned output channels kept as zeros: ",
                                !layer.subgraph.empty()   ? "the layer sits in a subgraph"
                                : layer.op_type != "Conv" ? "only Conv output channels are removed"
                                : !why.empty()            ? why
                                                          : "they cannot be followed"));
  return zeroed;
}

// A layer's weight as written: the value the layer reads, what it holds, its per-channel scales
// (integer weights) and its size at the chosen bit-width with scales and sparse index.
struct WrittenWeight {
  std::string value;
  std::vector<float> w_hat;
  std::vector<float> scales;
  int64_t packed_bytes = 0;
};

WrittenWeight WriteWeight(Writer& out, const SlicedWeight& sliced, Sparsity pattern, int bits, bool int4,
                          int32_t elem_type, int channel_axis, const Bias& bias, std::optional<float> int32_bias_at,
                          std::vector<std::string>* notes) {
  WrittenWeight w;
  if (bits <= 8) {
    const std::vector<float> floor =
        int32_bias_at && bias.constant != nullptr ? ScaleFloor(bias, *int32_bias_at) : std::vector<float>{};
    IntWeight iw = QuantizeWeight(sliced, bits, floor);
    if (iw.raised_scales > 0) {
      notes->push_back(absl::StrCat("weight scale raised on ", iw.raised_scales,
                                    iw.raised_scales == 1 ? " channel" : " channels", " so its bias fits int32"));
    }
    w.value = StoreIntWeight(out, sliced, iw, channel_axis, elem_type, int4);
    w.packed_bytes = (sliced.kept * bits + 7) / 8 + 4 * sliced.layout.channels();
    w.w_hat = std::move(iw.w_hat);
    w.scales = std::move(iw.scales);
  } else {
    w.value = StoreFloatWeight(out, sliced, bits, elem_type, &w.w_hat);
    w.packed_bytes = (sliced.kept * bits + 7) / 8;
  }
  if (pattern == Sparsity::kUnstructured) w.packed_bytes += (static_cast<int64_t>(sliced.mask.size()) + 7) / 8;
  if (pattern == Sparsity::kTwoFour) w.packed_bytes += (sliced.kept * 2 + 7) / 8;
  return w;
}

// A MatMul written as ONNX Runtime's MatMulNBits (WritesMatMulNBits): each output column's K
// weights quantized in runs of `block` (QuantizeBlocks: each run with its own MSE-clipped symmetric
// scale, rounded by GPTQ on `inputs` where given), stored as codes q + 2^(bits-1) — the zero
// point MatMulNBits takes when none is given — packed low first into [N, ceil(K / block),
// block x bits / 8] bytes, a run past K padded with the zero point, and the scales as
// [N, ceil(K / block)] floats. The node itself becomes the MatMulNBits; it reads the float input
// as the MatMul did.
WrittenWeight WriteMatMulNBits(Writer& out, const SlicedWeight& s, int weight_bits, int64_t block,
                               const LayerInputRows* inputs, bool* compensated) {
  const int bits = MatMulNBitsStorageBits(weight_bits);
  const ChannelMatrix cm = ToChannelMajor(s.zeroed, s.layout);
  const ChannelMatrix mask_cm = ToChannelMajor(std::vector<float>(s.mask.begin(), s.mask.end()), s.layout);
  std::vector<uint8_t> mask(mask_cm.values.size());
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = mask_cm.values[i] != 0;
  const int64_t n = cm.channels, k = cm.per_channel;
  const int64_t blocks = (k + block - 1) / block, blob = block * bits / 8;
  const int zero_point = 1 << (bits - 1);
  const std::optional<CompensationBasis> basis =
      inputs != nullptr && inputs->k == k ? CompensationBasisOf(*inputs) : std::nullopt;
  BlockQuantized quantized = QuantizeBlocks(cm, mask, weight_bits, block, basis ? &*basis : nullptr);
  *compensated = quantized.compensated;
  std::vector<float>& scales = quantized.scales;
  std::string codes(static_cast<size_t>(n * blocks * blob), '\0');
  for (int64_t c = 0; c < n; ++c) {
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t begin = c * k + b * block, len = std::min(block, k - b * block);
      const float scale = scales[c * blocks + b];
      for (int64_t j = 0; j < block; ++j) {
        const int code = j < len
                             ? static_cast<int>(std::nearbyint(quantized.values.values[begin + j] / scale)) + zero_point
                             : zero_point;
        const int64_t bit = j * bits;
        char& byte = codes[static_cast<size_t>((c * blocks + b) * blob + bit / 8)];
        byte = static_cast<char>(static_cast<uint8_t>(byte) | (code << (bit % 8)));
      }
    }
  }
  onnx::TensorProto q;
  q.set_name(out.Fresh("_q"));
  q.set_data_type(onnx::TensorProto::UINT8);
  for (int64_t d : {n, blocks, blob}) q.add_dims(d);
  q.set_raw_data(std::move(codes));
  onnx::NodeProto* node = out.site.node;
  const std::string old = node->input(1);
  const std::string a = node->input(0);
  const std::string q_name = out.Weight(std::move(q));
  const std::string scale_name =
      out.Weight(RawTensorOf(out.Fresh("_scale"), onnx::TensorProto::FLOAT, {n, blocks}, scales));
  node->set_op_type("MatMulNBits");
  node->set_domain(std::string(kMicrosoftDomain));
  node->clear_input();
  for (const std::string& input : {a, q_name, scale_name}) node->add_input(input);
  SetIntAttribute(node, "K", k);
  SetIntAttribute(node, "N", n);
  SetIntAttribute(node, "bits", bits);
  SetIntAttribute(node, "block_size", block);
  out.editor.Orphan(old);
  WrittenWeight w;
  w.value = q_name;
  w.w_hat = FromChannelMajor(quantized.values, s.layout);
  w.scales = std::move(scales);
  w.packed_bytes = (s.kept * weight_bits + 7) / 8 + 4 * n * blocks;
  return w;
}

// The bias: int32 at `int32_bias_at` × the weight scales for an 8-bit-activation Conv so it fuses,
// else float; sliced with the removed rows either way.
void WriteBias(Writer& out, const Bias& bias, std::optional<float> int32_bias_at, const std::vector<float>& scales,
               std::vector<std::string>* notes) {
  onnx::NodeProto* node = out.site.node;
  const std::string old = node->input(2);
  bool stored = false;
  if (int32_bias_at && static_cast<int64_t>(scales.size()) == bias.dims[0]) {
    stored = StoreInt32Bias(out, bias, *int32_bias_at, scales);
    if (!stored) notes->push_back("bias too large for int32 at the input and weight scales: kept float");
  }
  if (!stored) {
    node->set_input(
        2, out.Constant(FloatTensorOf(out.Fresh("_bias"), bias.constant->data_type(), bias.dims, bias.values)));
  }
  out.editor.Orphan(old);
}

}  // namespace

absl::StatusOr<std::vector<LayerWeight>> LayerWeightsOf(const GraphEditor& editor, const Analysis& analysis,
                                                        const std::vector<LayerPlan>& plan,
                                                        const std::map<size_t, std::vector<float>>& folded_row_scales) {
  std::vector<LayerWeight> weights(analysis.layers.size());
  for (size_t i = 0; i < analysis.layers.size(); ++i) {
    const Layer& layer = analysis.layers[i];
    LayerWeight& w = weights[i];
    absl::StatusOr<Site> site = editor.Find(layer);
    if (!site.ok()) return site.status();
    if (site->node->input_size() < 2) {
      return absl::FailedPreconditionError(
          absl::StrCat("the model holds no node '", layer.name, "' (", layer.op_type, "): not the analysed model"));
    }
    w.site = *std::move(site);
    const onnx::TensorProto* t = FindConstant(w.site.scopes, w.site.node->input(1));
    if (t == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat("layer '", layer.name, "': its weight is not a constant"));
    }
    if (absl::Status s = CheckTensorData(*t, t->name()); !s.ok()) return s;
    w.original = DecodeFloats(*t);
    w.dims.assign(t->dims().begin(), t->dims().end());
    w.elem_type = t->data_type();
    if (static_cast<int64_t>(w.original.size()) != layer.params ||
        layer.weight_layout.channels() != layer.out_channels) {
      return absl::FailedPreconditionError(
          absl::StrCat("layer '", layer.name, "': its weight does not match the analysis"));
    }
    ChannelMatrix cm = ToChannelMajor(w.original, layer.weight_layout);
    if (auto f = folded_row_scales.find(i); f != folded_row_scales.end()) {
      for (int64_t c = 0; c < cm.channels; ++c) {
        const float s = f->second[c] != 0 ? f->second[c] : 1.f;
        for (int64_t k = 0; k < cm.per_channel; ++k) cm.values[c * cm.per_channel + k] /= s;
      }
    }
    const std::vector<uint8_t> mask = PruneMask(cm, plan[i].pattern, plan[i].prune_ratio);
    ChannelMatrix mask_cm = cm;
    mask_cm.values.assign(mask.begin(), mask.end());
    const std::vector<float> mask_storage = FromChannelMajor(mask_cm, layer.weight_layout);
    w.mask.assign(mask_storage.size(), 0);
    for (size_t k = 0; k < mask_storage.size(); ++k) w.mask[k] = mask_storage[k] != 0;
    w.pruned_rows.assign(static_cast<size_t>(layer.out_channels), 0);
    if (plan[i].pattern != Sparsity::kOutputChannel) continue;
    for (int64_t c = 0; c < cm.channels; ++c) {
      bool any = false;
      for (int64_t k = 0; k < cm.per_channel; ++k) any |= mask[c * cm.per_channel + k] != 0;
      w.pruned_rows[c] = !any;
    }
  }
  return weights;
}

std::map<std::string, size_t> LayerOfNode(const Analysis& analysis, const std::vector<LayerWeight>& weights) {
  std::map<std::string, size_t> layer_of_node;
  for (size_t i = 0; i < analysis.layers.size(); ++i) {
    if (analysis.layers[i].subgraph.empty()) layer_of_node[weights[i].site.node->name()] = i;
  }
  return layer_of_node;
}

absl::Status SliceChannelConsumers(const ChannelFlow& flow, GraphEditor& editor) {
  onnx::GraphProto* main = editor.main_graph();
  for (const ParamSlice& s : flow.slices()) {
    const std::set<int64_t> removed = flow.Removed(s.channels_of);
    if (removed.empty()) continue;
    const std::string old = s.node->input(s.input);
    const onnx::TensorProto* t = FindConstant({main}, old);
    if (t == nullptr || !IsDecodableFloat(t->data_type())) {
      return absl::InternalError(absl::StrCat("constant '", old, "' of '", s.node->name(), "' cannot be sliced"));
    }
    std::vector<int64_t> dims(t->dims().begin(), t->dims().end());
    const std::vector<float> values =
        SliceAxis(DecodeFloats(*t), &dims, static_cast<size_t>(s.axis), Complement(dims[s.axis], removed));
    const std::string name = editor.Fresh(absl::StrCat(old, "_pruned"));
    editor.AddInitializer(main, FloatTensorOf(name, t->data_type(), dims, values));
    s.node->set_input(s.input, name);
    editor.Orphan(old);
  }
  for (const auto& [node, input] : flow.depthwise()) {
    const int64_t removed = static_cast<int64_t>(flow.Removed(input).size());
    if (removed > 0) SetIntAttribute(node, "group", IntAttribute(*node, "group", 1) - removed);
  }
  return absl::OkStatus();
}

absl::Status ExportLayerWeights(const Layer& layer, size_t index, const LayerPlan& plan, const LayerWeight& weight,
                                const ChannelFlow& flow,
                                const std::map<std::string, ActivationQuantizer>& activation_quant,
                                ExportFlavour flavour, const LayerInputRows* inputs, GraphEditor& editor,
                                std::set<std::string>* weight_constants, ExportReport* report) {
  onnx::NodeProto* node = weight.site.node;
  LayerExport& le = report->layers.emplace_back(ReportOf(layer, plan));
  std::vector<std::string> notes;
  const int channel_axis = ChannelAxis(weight.dims, layer.weight_layout);
  const Removals removals = RemovalsOf(layer, node, flow);
  le.zeroed_out_channels = ZeroedRows(layer, index, weight, removals, flow, &notes);
  if (!removals.depthwise) report->removed_channels += static_cast<int>(removals.rows.size());
  le.removed_in_channels = static_cast<int64_t>(removals.inputs.size());
  const SlicedWeight sliced = Slice(layer, weight, removals, channel_axis);
  le.kept_out_channels = sliced.layout.channels();
  le.kept_params = sliced.kept;

  int weight_bits = plan.weight_bits;
  if (weight_bits <= 8 && channel_axis < 0) {
    notes.push_back("a grouped layout has no single channel axis for per-channel scales: weights kept float");
    weight_bits = 32;
  }
  // An integer-activation Conv fuses into ONNX Runtime's integer kernel (and into the QNN HTP's
  // quantized node unit) only with an int32 bias at scale input x weight. A channel whose bias
  // would overflow int32 there (weights far smaller than its bias) gets the least weight scale at
  // which it fits rather than leaving the layer float. TensorRT (int8 symmetric activations) takes
  // the bias float and fuses it itself: its DequantizeLinear reads int8, not int32.
  // Which layers: StoresInt32Bias, the rule the predicted size follows too.
  const auto input_quant = activation_quant.find(node->input(0));
  const std::optional<float> int32_bias_at =
      weight_bits <= 8 && StoresInt32Bias(layer, plan, flavour) && input_quant != activation_quant.end()
          ? std::optional<float>(input_quant->second.scale)
          : std::nullopt;
  const bool rewrite_bias =
      node->input_size() > 2 && !node->input(2).empty() && (!removals.rows.empty() || int32_bias_at.has_value());
  const Bias bias = rewrite_bias ? BiasOf(weight.site, removals.rows) : Bias{};
  if (rewrite_bias && bias.constant == nullptr && !removals.rows.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("layer '", layer.name, "': its bias is not a constant vector, so its channels cannot be removed"));
  }

  Writer out{editor, weight.site, absl::StrCat("squeeze_w", index), weight_constants};
  if (plan.block_size > 0 && weight_bits == plan.weight_bits) {  // ValidatePlan: WritesMatMulNBits
    const WrittenWeight written = WriteMatMulNBits(out, sliced, weight_bits, plan.block_size, inputs, &le.compensated);
    if (le.compensated) notes.push_back(absl::StrCat("rounded by GPTQ on ", inputs->rows(), " calibration rows"));
    le.packed_bytes = written.packed_bytes;
    le.weight_distortion = Distortion(sliced, written.w_hat);
    le.file_bytes = out.written;
    le.note = absl::StrJoin(notes, "; ");
    report->packed_weight_bytes += le.packed_bytes;
    return absl::OkStatus();
  }
  const WrittenWeight written =
      WriteWeight(out, sliced, plan.pattern, weight_bits, StoresInt4(flavour, weight_bits, plan.activation_bits),
                  weight.elem_type, channel_axis, bias, int32_bias_at, &notes);
  le.packed_bytes = written.packed_bytes;
  editor.Orphan(node->input(1));
  node->set_input(1, written.value);
  le.weight_distortion = Distortion(sliced, written.w_hat);
  if (bias.constant != nullptr) WriteBias(out, bias, int32_bias_at, written.scales, &notes);
  if (std::string note = ActivationNote(layer, plan, flavour, &le); !note.empty()) notes.push_back(std::move(note));
  le.file_bytes = out.written - (bias.constant != nullptr ? StoredBytes(*bias.constant) : 0);
  le.note = absl::StrJoin(notes, "; ");
  report->packed_weight_bytes += le.packed_bytes;
  return absl::OkStatus();
}

}  // namespace squeeze::model::internal
