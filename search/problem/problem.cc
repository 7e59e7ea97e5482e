#include "search/problem/problem.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "model/activation_sites.h"
#include "model/batch_norm_folding.h"
#include "model/channel_pruning.h"
#include "model/export.h"
#include "model/quantized_region.h"
#include "model/rounding.h"
#include "model/weight_math.h"
#include "model/weights.h"
#include "search/problem/plan.h"

namespace squeeze::search {
namespace {

const model::LayerInputRows* InputsOf(const ProblemInputs& in, const std::string& layer) {
  if (in.layer_inputs == nullptr) return nullptr;
  const auto it = in.layer_inputs->find(layer);
  return it != in.layer_inputs->end() ? it->second.get() : nullptr;
}

// D_i of one layer's options: ||W − Ŵ||² / ||W||² for Ŵ as the exporter writes it, each
// (bits, block) quantized once however many pruning masks it meets.
class LayerDistortions {
 public:
  LayerDistortions(const model::ChannelMatrix& w, const model::LayerInputRows* inputs)
      : w_(w), inputs_(inputs), energy_(SquaredNorm(w.values)) {}

  // `keep` the option's mask and `pruned` what it alone removes (a share of ||W||²).
  // - Nothing pruned: Ŵ as the exporter quantizes it. A block-wise option GPTQ rounds
  //   (model::CompensatesRounding) moves its error where the calibration inputs do not look: the
  //   network sees it as a round-to-nearest error as much smaller as the layer's output error is,
  //   so its distortion is round-to-nearest's times the ratio of the two output errors on the same
  //   rows (the sensitivities were measured with round-to-nearest's error shape).
  // - Pruned: what the mask removes plus the kept weights' error as the unpruned quantizer rounds
  //   them. Exact for channel pruning (each row keeps its scales) and fp16; for unstructured and 2:4
  //   the exporter fits each scale to the kept weights alone, which errs no more than this.
  double Of(const std::vector<uint8_t>& keep, double pruned, const device_profiles::CompressionOption& option) {
    if (option.weight_bits >= 32) return pruned;
    if (option.pattern != device_profiles::Sparsity::kDense) {
      const std::vector<float>& squared = SquaredErrors(option.weight_bits, option.block_size, nullptr);
      double kept = 0;
      for (size_t k = 0; k < keep.size(); ++k) kept += keep[k] ? squared[k] : 0.f;
      return pruned + (energy_ > 0 ? kept / energy_ : 0);
    }
    const bool compensable =
        option.block_size > 0 && option.weight_bits <= 8 && inputs_ != nullptr && inputs_->k == w_.per_channel;
    // Ŵ to nearest: kept where GPTQ's output error is set against it, else only its errors.
    std::optional<model::ChannelMatrix> nearest;
    if (compensable) nearest = model::QuantizeMasked(w_, keep, option.weight_bits, option.block_size);
    const std::vector<float>& squared =
        SquaredErrors(option.weight_bits, option.block_size, nearest ? &*nearest : nullptr);
    const double d = energy_ > 0 ? Sum(squared) / energy_ : 0;
    if (!compensable) return d;
    const model::CompensationBasis* basis = Basis();
    if (!model::CompensatesRounding(w_, keep, basis)) return d;
    const model::BlockQuantized compensated =
        model::QuantizeBlocks(w_, keep, option.weight_bits, option.block_size, basis);
    const double nearest_out = model::OutputError(w_, *nearest, *inputs_);
    if (!(nearest_out > 0)) return d;
    return d * model::OutputError(w_, compensated.values, *inputs_) / nearest_out;
  }

 private:
  static double SquaredNorm(const std::vector<float>& v) {
    double sum = 0;
    for (float x : v) sum += static_cast<double>(x) * x;
    return sum;
  }
  static double Sum(const std::vector<float>& v) {
    double sum = 0;
    for (float x : v) sum += x;
    return sum;
  }

  // (w − Q(w))² per weight for the unpruned quantizer at (bits, block); `quantized`, when given, is
  // that quantizer's Ŵ already made.
  const std::vector<float>& SquaredErrors(int bits, int block, const model::ChannelMatrix* quantized) {
    auto [it, added] = squared_errors_.try_emplace({bits, block});
    if (added) {
      std::optional<model::ChannelMatrix> own;
      const model::ChannelMatrix& q =
          quantized != nullptr
              ? *quantized
              : own.emplace(model::QuantizeMasked(w_, std::vector<uint8_t>(w_.values.size(), 1), bits, block));
      it->second.resize(w_.values.size());
      for (size_t k = 0; k < w_.values.size(); ++k) {
        const double e = static_cast<double>(w_.values[k]) - q.values[k];
        it->second[k] = static_cast<float>(e * e);
      }
    }
    return it->second;
  }

  // GPTQ's basis of the layer's inputs, computed when a block-wise option first asks.
  const model::CompensationBasis* Basis() {
    if (!basis_) basis_ = model::CompensationBasisOf(*inputs_);
    return *basis_ ? &**basis_ : nullptr;
  }

  const model::ChannelMatrix& w_;
  const model::LayerInputRows* inputs_;
  const double energy_;
  std::map<std::pair<int, int>, std::vector<float>> squared_errors_;
  std::optional<std::optional<model::CompensationBasis>> basis_;  // outer: not computed yet
};

namespace dp = device_profiles;

int64_t Product(const std::vector<int64_t>& dims) {
  return std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<int64_t>());
}

dp::LayerShape ShapeOf(const model::Layer& l) {
  dp::LayerShape s;
  if (l.op_type == "ConvTranspose") {
    s.kind = dp::OpKind::kConvTranspose;
  } else if (l.op_type == "Conv") {
    s.kind = l.depthwise ? dp::OpKind::kDepthwiseConv : dp::OpKind::kConv;
  } else {
    s.kind = dp::OpKind::kGemm;
  }
  s.macs = l.macs;
  s.weight_params = l.params;
  s.out_channels = l.out_channels;
  s.in_channels = l.in_channels;
  s.input_elements = l.input_shape.empty() ? 0 : Product(l.input_shape);
  s.output_elements = l.output_shape.empty() ? 0 : Product(l.output_shape);
  if (l.input_shape.size() == 4) {
    s.height = l.input_shape[2];
    s.width = l.input_shape[3];
  }
  s.kernel = l.kernel.empty() ? 0 : l.kernel[0];
  s.stride = l.strides.empty() ? 1 : l.strides[0];
  s.groups = l.groups;
  return s;
}

// The measured activation error of a layer at `bits` in `scheme` (8-bit activations int8 symmetric
// for TensorRT, else asymmetric uint8; 16-bit ones uint16 for the QNN HTP, else fp16); nullopt
// when it was not measured. uint16 is not measured on its own: uniform quantization noise goes
// with the square of the step, and over the same range uint16's step is 255/65535 of uint8's.
std::optional<double> MeasuredActivationError(const runtime::LayerSensitivity* sens, int bits,
                                              model::ActivationScheme scheme) {
  if (sens == nullptr || !sens->measured) return std::nullopt;
  if (bits == 8 && scheme == model::ActivationScheme::kSymmetricInt8) return sens->int8_symmetric_activation_error;
  if (bits == 16 && scheme == model::ActivationScheme::kAsymmetricUint16) {
    auto it = sens->activation_error.find(8);
    if (it == sens->activation_error.end()) return std::nullopt;
    const double step_ratio = 255.0 / 65535.0;
    return it->second * step_ratio * step_ratio;
  }
  auto it = sens->activation_error.find(bits);
  if (it == sens->activation_error.end()) return std::nullopt;
  return it->second;
}

// Relative noise of uniform b-bit quantization over a range of 8 standard deviations, for layers
// whose activation error could not be measured: (8 / 2^b)² / 12. fp16 rounding: 2^-22.
double AssumedActivationError(int bits, model::ActivationScheme scheme) {
  if (bits >= 32) return 0;
  if (bits == 16 && scheme != model::ActivationScheme::kAsymmetricUint16) return std::ldexp(1.0, -22);
  const double step = 8.0 / std::ldexp(1.0, bits);
  return step * step / 12;
}

// The metadata an export adds besides each layer's plan entry: the "squeeze.plan" and
// "squeeze.flavour" properties (48 bytes) and the job, device and candidate an export was made for.
constexpr double kMetadataBytes = 48 + 120;

// The graph structure (nodes, tensor names and headers) an export adds for layer `index` beyond
// the original's: its entry in the file's plan metadata (model::PlanJson); its weight renamed
// "squeeze_w<index>" (an initializer and the layer's input); the DequantizeLinear of integer
// weights with its three tensors, or the Cast of fp16 ones (195, 211 for INT4 and 74 bytes, measured
// on exports of PP-OCRv4 det and BlazeFace); as much again for an int32 bias; and the
// QuantizeLinear/DequantizeLinear pairs of integer activations (`activation_pairs`,
// model::QdqStructureBytes). A MatMulNBits replaces its MatMul and weight
// (model::MatMulNBitsStructureBytes).
double StructureBytesOf(const model::Layer& layer, size_t index, const dp::CompressionOption& option,
                        model::ExportFlavour flavour, double activation_pairs, const model::BatchNormFold& fold) {
  const model::LayerPlan plan = LayerPlanOf(option);
  double bytes = static_cast<double>(model::PlanEntryJson(layer, plan, flavour).size() + 1);  // and its ","
  if (option.block_size > 0) {
    return bytes + static_cast<double>(model::MatMulNBitsStructureBytes(layer, plan, absl::StrCat("squeeze_w", index)));
  }
  bytes += 2.0 * (static_cast<double>(absl::StrCat("squeeze_w", index).size()) -
                  static_cast<double>(layer.weight_name.size()));
  if (option.weight_bits <= 8) {
    bytes += model::StoresInt4(flavour, option.weight_bits, option.activation_bits) ? 211 : 195;
    const bool bias = layer.bias_params > 0 || fold.folds;
    if (bias && model::StoresInt32Bias(layer, plan, flavour)) bytes += 215;
    if (fold.folds) bytes -= static_cast<double>(fold.structure_bytes);  // the BatchNormalization folded in
  }
  if (option.weight_bits == 16) bytes += 74;
  if (model::QuantizesActivations(flavour, option.weight_bits, option.activation_bits)) bytes += activation_pairs;
  return bytes;
}

// Ops that only relabel a tensor's shape: ONNX Runtime runs them without touching the values.
const std::set<std::string> kShapeOnly = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Shape", "Identity"};

// The nodes ONNX Runtime's CPU provider folds into the Conv (or Gemm) before them at its default
// optimization level: a BatchNormalization or Add of a constant into the weights, an activation
// into the kernel (FusedConv), each only when it is the sole consumer of what it folds.
std::map<std::string, std::string> FusedIntoLayers(const onnx::GraphProto& graph) {
  static const std::set<std::string> kActivations = {"Relu", "Clip", "LeakyRelu", "HardSigmoid", "Sigmoid", "Tanh"};
  std::map<std::string, int> consumers;
  std::set<std::string> constants;
  for (const onnx::TensorProto& t : graph.initializer()) constants.insert(t.name());
  for (const onnx::NodeProto& node : graph.node()) {
    for (const std::string& input : node.input()) ++consumers[input];
    if (node.op_type() == "Constant") constants.insert(node.output(0));
  }
  std::map<std::string, std::string> fused;  // fused node -> the layer node it fuses into
  std::map<std::string, bool> activated;     // a layer's (or fused chain's) output -> an activation is in it
  std::map<std::string, std::string> owner;  // that output -> the layer node
  for (const onnx::NodeProto& node : graph.node()) {
    const std::string& op = node.op_type();
    if (op == "Conv" || op == "Gemm" || op == "ConvTranspose") {
      if (node.output_size() > 0) {
        activated[node.output(0)] = false;
        owner[node.output(0)] = node.name();
      }
      continue;
    }
    if (node.input_size() == 0 || node.output_size() == 0) continue;
    auto from = activated.find(node.input(0));
    if (from == activated.end() || consumers[node.input(0)] != 1) continue;
    const bool affine = op == "BatchNormalization" ||
                        ((op == "Add" || op == "Mul") && node.input_size() == 2 && constants.count(node.input(1)) > 0);
    const std::string layer = owner[node.input(0)];
    if (affine && !from->second) {
      fused[node.name()] = layer;
      activated[node.output(0)] = false;
      owner[node.output(0)] = layer;
    } else if (kActivations.count(op) > 0 && !from->second) {
      fused[node.name()] = layer;
      activated[node.output(0)] = true;
      owner[node.output(0)] = layer;
    }
  }
  return fused;
}

// The precision class an option runs as in ONNX Runtime's CPU flavour: fp32 compute with fp32 or
// fp16 weights, integer weights dequantized to fp32 compute, or integer compute.
int PrecisionClass(int weight_bits, int activation_bits) {
  if (weight_bits >= 32) return 0;
  if (weight_bits == 16) return 1;
  return activation_bits < 32 ? 3 : 2;
}

// Measured uniform variants of the model (squeeze-profile --model) calibrate their precision: the
// layers of a uniform plan at (w, a) predict Σ; the variant measured t; every option of that
// precision class is scaled by (t − fixed) / Σ, so the uniform plan comes out as measured and a
// mixed plan takes each layer at its class's measured scale. Returns 1, or, when some variant
// measured no more than the other ops and conversions of its plan predict (so no scale of its
// layers can match it: the other ops are what is over-predicted), the least measured / predicted
// ratio of such a variant's whole plan, which the caller scales the other ops by before
// calibrating again. Such a variant is skipped here.
double CalibrateToVariants(const ProblemInputs& in, Problem* problem) {
  std::vector<std::string> notes;
  double fixed_scale = 1;
  for (const dp::ModelLatency& m : in.model_latencies) {
    if (in.model_sha256.empty() || m.model_sha256 != in.model_sha256) continue;
    const std::optional<dp::UniformVariant> variant = dp::ParseUniformVariant(m.variant);
    if (!variant || variant->channel_ratio > 0) continue;  // a pruned one: CalibrateToPrunedVariant
    const int w = variant->weight_bits, a = variant->activation_bits;
    const double seconds = m.latency_median_us * 1e-6;
    // A measurement that cannot be used is said so, never dropped in silence.
    auto unused = [&](const std::string& why) {
      notes.push_back(absl::StrFormat("%s measured %.2f ms (%s): not used, %s", m.variant, seconds * 1e3, m.key, why));
    };
    const std::optional<Choice> uniform = UniformChoice(*problem, w, a);
    if (!uniform) {
      unused("as some layer has no such option on this device");
      continue;
    }
    double predicted = 0;
    for (size_t i = 0; i < uniform->size(); ++i) predicted += problem->table.layers[i].options[(*uniform)[i]].latency;
    const absl::StatusOr<ObjectiveValues> whole = Evaluate(problem->table, *uniform);
    if (!whole.ok()) continue;
    // The other ops and the uniform plan's own conversions (around float ops) are not its layers'.
    const double fixed = whole->latency - predicted;
    if (predicted <= 0) {
      unused("as its layers are predicted to take no time");
      continue;
    }
    if (seconds <= fixed) {
      fixed_scale = std::min(fixed_scale, seconds / whole->latency);
      unused(absl::StrFormat("as it is no more than the other ops and conversions of its plan predict (%.2f ms)",
                             fixed * 1e3));
      continue;
    }
    const double scale = (seconds - fixed) / predicted;
    const int cls = PrecisionClass(w, a);
    for (size_t i = 0; i < problem->details.size(); ++i) {
      for (size_t k = 0; k < problem->details[i].size(); ++k) {
        const dp::CompressionOption& o = problem->details[i][k].option;
        if (PrecisionClass(o.weight_bits, o.activation_bits) != cls) continue;
        problem->table.layers[i].options[k].latency *= scale;
        problem->details[i][k].latency.seconds *= scale;
      }
    }
    notes.push_back(absl::StrFormat("%s measured %.2f ms (%s): its precision's options scaled by %.3f", m.variant,
                                    seconds * 1e3, m.key, scale));
  }
  if (notes.empty()) return fixed_scale;
  problem->latency_calibration = absl::StrCat(
      problem->latency_calibration, problem->latency_calibration.empty() ? "" : "; ", absl::StrJoin(notes, "; "));
  return fixed_scale;
}

// A measured uniform export of the model in fp32 with a share r0 of every layer's output channels
// pruned (squeeze-profile --model's "uniform w32a32 channel 50%", model::UniformChannelPlan at
// `alignment`) calibrates the pruned float options. The calibration to the model as it is holds at
// full width; a narrower layer's single-op samples stand in another ratio to its time in the
// network (at half the channels its activations may fit a cache the full width spills, or its
// per-op overhead weighs more). A float option pruning a share r is scaled by
// 1 + (s − 1) · min(1, r / r0), moving from the full width's calibration to s at the variant's
// width, with s such that the variant's plan, narrowings and all, comes out as measured (a plan's
// latency is linear in s). Runs after CreditNarrowedReaders, whose table that plan needs. A scale
// outside [1/4, 4] is not applied (the variant or the samples are off), and says so.
void CalibrateToPrunedVariant(const ProblemInputs& in, const std::vector<model::ChannelPruningReach>& reach,
                              int alignment, Problem* problem) {
  for (const dp::ModelLatency& m : in.model_latencies) {
    if (in.model_sha256.empty() || m.model_sha256 != in.model_sha256) continue;
    const std::optional<dp::UniformVariant> variant = dp::ParseUniformVariant(m.variant);
    if (!variant || variant->channel_ratio <= 0 || variant->weight_bits != 32 || variant->activation_bits != 32) {
      continue;
    }
    const double r0 = variant->channel_ratio;
    const std::vector<model::LayerPlan> plan =
        model::UniformChannelPlan(reach, *in.model, model::LayerPlan{32, 32}, r0, alignment);
    const double seconds = m.latency_median_us * 1e-6;
    auto unused = [&](const std::string& why) {
      problem->latency_calibration =
          absl::StrCat(problem->latency_calibration, problem->latency_calibration.empty() ? "" : "; ",
                       absl::StrFormat("%s measured %.2f ms (%s): not used, %s", m.variant, seconds * 1e3, m.key, why));
    };
    const std::optional<Choice> found = ChoiceOfPlan(*problem, plan);
    if (!found) {
      unused("as some layer has no such option on offer");
      continue;
    }
    const Choice& choice = *found;
    // The share of each option the scale acts on.
    auto weight = [&](const dp::CompressionOption& o) {
      if (o.weight_bits < 16 || o.pattern != dp::Sparsity::kOutputChannel || o.prune_ratio <= 0) return 0.0;
      return std::min(1.0, o.prune_ratio / r0);
    };
    const absl::StatusOr<ObjectiveValues> now = Evaluate(problem->table, choice);
    OptionTable unscaled = problem->table;  // at s = 0
    for (size_t i = 0; i < problem->details.size(); ++i) {
      for (size_t k = 0; k < problem->details[i].size(); ++k) {
        unscaled.layers[i].options[k].latency *= 1 - weight(problem->details[i][k].option);
      }
    }
    const absl::StatusOr<ObjectiveValues> at_zero = Evaluate(unscaled, choice);
    if (!now.ok() || !at_zero.ok()) continue;
    const double slope = now->latency - at_zero->latency;
    if (slope <= 0) {
      unused("as no pruned float option of its plan takes any time");
      continue;
    }
    const double s = 1 + (seconds - now->latency) / slope;
    std::string note;
    if (s < 0.25 || s > 4) {
      note = absl::StrFormat(
          "%s measured %.2f ms (%s) against %.2f ms predicted: a scale of %.3f for the pruned "
          "float options is out of bounds, not applied",
          m.variant, seconds * 1e3, m.key, now->latency * 1e3, s);
    } else {
      for (size_t i = 0; i < problem->details.size(); ++i) {
        for (size_t k = 0; k < problem->details[i].size(); ++k) {
          const double f = 1 + (s - 1) * weight(problem->details[i][k].option);
          if (f == 1) continue;
          problem->table.layers[i].options[k].latency *= f;
          problem->details[i][k].latency.seconds *= f;
          absl::StrAppend(&problem->details[i][k].latency.explanation,
                          absl::StrFormat("; x %.3f for its width (%s measured)", f, m.variant));
        }
      }
      note = absl::StrFormat(
          "%s measured %.2f ms (%s), %.2f ms predicted before: the pruned float options scaled "
          "by up to %.3f (in proportion to their pruned share, up to %.0f%%)",
          m.variant, seconds * 1e3, m.key, now->latency * 1e3, s, 100 * r0);
    }
    problem->latency_calibration =
        absl::StrCat(problem->latency_calibration, problem->latency_calibration.empty() ? "" : "; ", note);
  }
}

// A weight-only integer option between two tensors its neighbours quantize runs as its uint8
// sibling (LayerOption::fused_latency): ONNX Runtime fuses the DequantizeLinear → Conv →
// QuantizeLinear the export then holds into a QLinearConv. Its latency there is the sibling's —
// same weight bits and pruning, 8-bit activations, calibrated and credited alike — so this runs
// last. An option without such a sibling (the device runs no uint8 kernel) is not fused, nor is a
// MatMulNBits (block-wise weights: no DequantizeLinear for ONNX Runtime to fuse).
void PriceFusedWeightOnly(const std::vector<double>& boundary_bound, Problem* problem) {
  for (size_t i = 0; i < problem->table.layers.size(); ++i) {
    Layer& layer = problem->table.layers[i];
    if (layer.input_boundary < 0 || layer.output_boundary < 0) continue;
    const std::vector<OptionDetail>& details = problem->details[i];
    for (size_t k = 0; k < details.size(); ++k) {
      const dp::CompressionOption& o = details[k].option;
      if (o.weight_bits > 8 || o.activation_bits != 32 || o.block_size > 0) continue;
      for (size_t s = 0; s < details.size(); ++s) {
        const dp::CompressionOption& q = details[s].option;
        if (!layer.options[s].integer_activations || q.weight_bits != o.weight_bits || q.pattern != o.pattern ||
            q.prune_ratio != o.prune_ratio) {
          continue;
        }
        LayerOption& option = layer.options[k];
        option.fused_latency = layer.options[s].latency;
        option.boundary_latency = boundary_bound[i] + std::max(0.0, option.fused_latency - option.latency);
        problem->details[i][k].latency.explanation += absl::StrFormat(
            "; %.1f us where its neighbours quantize both its input and output (ONNX Runtime then fuses it into "
            "the uint8 kernel its %s sibling runs)",
            option.fused_latency * 1e6, layer.options[s].label);
        break;
      }
    }
  }
}

// See problem.h. A measured latency of the model as it is (all layers fp32) corrects the
// predictions: when it is above them, the float layers and the other ops are scaled up alike;
// when below, the fp32 layers are what was over-predicted (a single-op fp32 sample pays the layout
// reorders around its kernel, which a network of float layers mostly skips), so the float options
// of every layer are scaled until the model as it is comes out as measured. Integer options keep
// their own samples. Only when the other ops alone predict more than was measured is everything
// scaled down. With `other_ops_known` (a uniform export bounded them) only the float options move.
void CalibrateToMeasurement(const ProblemInputs& in, bool other_ops_known, Problem* problem) {
  const dp::ModelLatency* measured = nullptr;
  for (const dp::ModelLatency& m : in.model_latencies) {
    if (!in.model_sha256.empty() && m.model_sha256 == in.model_sha256 && m.variant.empty()) measured = &m;
  }
  if (measured == nullptr || problem->table.layers.empty()) return;
  const model::Analysis& analysis = in.model->analysis;
  double layers = 0;
  for (const model::Layer& layer : analysis.layers) {
    layers += in.cost_model->Predict(ShapeOf(layer), dp::CompressionOption{}).seconds;
  }
  const double seconds = measured->latency_median_us * 1e-6;
  const double fixed = problem->table.fixed.latency;
  auto scale_options = [&](double scale, bool float_only) {
    for (size_t i = 0; i < problem->table.layers.size(); ++i) {
      for (size_t k = 0; k < problem->table.layers[i].options.size(); ++k) {
        if (float_only && problem->details[i][k].option.weight_bits < 16) continue;
        problem->table.layers[i].options[k].latency *= scale;
        problem->details[i][k].latency.seconds *= scale;
      }
    }
  };
  if (!other_ops_known && seconds >= layers + fixed && layers + fixed > 0) {
    // Slower than the single ops say: the network runs its float layers and other ops alike
    // slower than alone (their share of the time, and what pruning saves of it, keep their ratio).
    const double scale = seconds / (layers + fixed);
    scale_options(scale, /*float_only=*/true);
    problem->table.fixed.latency *= scale;
    problem->latency_calibration = absl::StrFormat(
        "the model as it is measured %.2f ms on this device (%s), more than predicted (fp32 layers %.2f ms, other "
        "ops %.2f ms): the float options and the other ops are scaled by %.3f, the integer ones keep their samples",
        seconds * 1e3, measured->key, layers * 1e3, fixed * 1e3, scale);
    return;
  }
  if (seconds > fixed && layers > 0) {
    const double scale = (seconds - fixed) / layers;
    scale_options(scale, /*float_only=*/true);
    problem->latency_calibration = absl::StrFormat(
        "the model as it is measured %.2f ms on this device (%s), %s than predicted (fp32 layers %.2f ms, other "
        "ops %.2f ms): the float options are scaled by %.3f, the integer ones keep their samples",
        seconds * 1e3, measured->key, scale > 1 ? "more" : "less", layers * 1e3, fixed * 1e3, scale);
    return;
  }
  const double scale = seconds / (layers + fixed);
  scale_options(scale, /*float_only=*/false);
  problem->table.fixed.latency *= scale;
  problem->latency_calibration = absl::StrFormat(
      "the model as it is measured %.2f ms on this device (%s), less than even its other ops predict (%.2f ms): "
      "every latency is scaled by %.3f",
      seconds * 1e3, measured->key, fixed * 1e3, scale);
}

// Layer j's dense option at (w, a), else its fp32 option; nullptr when it has neither.
const LayerOption* DenseOption(const Problem& problem, size_t j, int weight_bits, int activation_bits) {
  const LayerOption* fp32 = nullptr;
  for (size_t k = 0; k < problem.details[j].size(); ++k) {
    const dp::CompressionOption& o = problem.details[j][k].option;
    if (o.pattern != dp::Sparsity::kDense) continue;
    if (o.weight_bits == weight_bits && o.activation_bits == activation_bits)
      return &problem.table.layers[j].options[k];
    if (o.weight_bits == 32) fp32 = &problem.table.layers[j].options[k];
  }
  return fp32;
}

// Removing a share r of a layer's output channels also narrows the layers that read them (the
// exporter cuts their input channels, or a depthwise Conv's channels): the table's narrowings,
// which a plan evaluates at the readers' chosen options, in time and in bytes. Additive strategies
// plan with estimates, the option's narrowing_credit and bytes_credit: what the readers' dense
// options at the option's own precision take and store less.
// The other ops its channels pass through shrink with it too, whatever the plan: `other_ops` holds
// each such node's share of the fixed cost before calibration, which scaled the fixed cost by
// `fixed_scale`; that time is moved from the fixed cost to the option. Where it outgrows the
// option's own time, the layer's options are lifted alike by what the fixed cost can give up, so
// no latency is negative and every plan's total is unchanged.
void CreditNarrowedReaders(const std::vector<model::ChannelPruningReach>& reach,
                           const std::map<std::string, double>& other_ops, double fixed_scale, Problem* problem) {
  for (size_t i = 0; i < problem->details.size() && i < reach.size(); ++i) {
    const std::vector<LayerOption>& options = problem->table.layers[i].options;
    if (std::none_of(options.begin(), options.end(), [](const LayerOption& o) { return o.removed_channels > 0; }))
      continue;
    for (const auto& [j, share] : reach[i].readers) {
      problem->table.narrowings.push_back({static_cast<int32_t>(i), static_cast<int32_t>(j), share});
    }
  }
  std::vector<double> lift(problem->details.size(), 0);
  std::vector<std::vector<double>> credit(problem->details.size());
  for (size_t i = 0; i < problem->details.size() && i < reach.size(); ++i) {
    credit[i].assign(problem->details[i].size(), 0);
    for (size_t k = 0; k < problem->details[i].size(); ++k) {
      const dp::CompressionOption& o = problem->details[i][k].option;
      if (o.pattern != dp::Sparsity::kOutputChannel || o.prune_ratio <= 0) continue;
      LayerOption& option = problem->table.layers[i].options[k];
      for (const auto& [j, share] : reach[i].readers) {
        if (const LayerOption* dense = DenseOption(*problem, j, o.weight_bits, o.activation_bits); dense != nullptr) {
          option.narrowing_credit += option.removed_channels * share * dense->latency;
          option.bytes_credit += option.removed_channels * share * dense->narrowable_bytes;
        }
      }
      if (option.narrowing_credit > 0) {
        absl::StrAppend(&problem->details[i][k].latency.explanation,
                        absl::StrFormat("; the layers that read its channels take less with them (%.1f us at this "
                                        "precision; a plan counts what their chosen options save)",
                                        option.narrowing_credit * 1e6));
      }
      double c = 0;
      for (const model::ReachedNode& node : reach[i].nodes) {
        if (auto op = other_ops.find(node.name); op != other_ops.end())
          c += o.prune_ratio * node.share * op->second * fixed_scale;
      }
      credit[i][k] = c;
      lift[i] = std::max(lift[i], c - 0.98 * option.latency);  // keep at least 2% of its own time
    }
  }
  double total_lift = 0;
  for (double l : lift) total_lift += l;
  const double affordable = total_lift > 0 ? std::min(1.0, problem->table.fixed.latency / total_lift) : 0;
  for (size_t i = 0; i < problem->details.size(); ++i) {
    const double l = lift[i] * affordable;
    for (size_t k = 0; k < problem->details[i].size() && k < credit[i].size(); ++k) {
      LayerOption& option = problem->table.layers[i].options[k];
      const double narrowed = std::max(0.02 * option.latency, option.latency - credit[i][k] + l);
      option.latency = narrowed;
      OptionDetail& d = problem->details[i][k];
      d.latency.seconds = narrowed;
      if (credit[i][k] > 0) {
        absl::StrAppend(&d.latency.explanation,
                        absl::StrFormat("; - %.1f us of the other ops its channels pass through", credit[i][k] * 1e6));
      }
      if (l > 0)
        absl::StrAppend(&d.latency.explanation, absl::StrFormat("; + %.1f us moved from the fixed cost", l * 1e6));
    }
    problem->table.fixed.latency -= l;
  }
  problem->table.fixed.latency = std::max(0.0, problem->table.fixed.latency);
}

}  // namespace

int ChannelAlignment(const dp::Device& device) {
  return model::ChannelAlignment(model::FlavourForRuntime(device.runtime), device.simd_features);
}

absl::StatusOr<Problem> BuildProblem(const ProblemInputs& in) {
  if (in.model == nullptr || in.device == nullptr || in.cost_model == nullptr) {
    return absl::InvalidArgumentError("BuildProblem needs a model, a device and its cost model");
  }
  if (absl::Status s = ValidateOptionGrid(in.grid); !s.ok()) return s;
  const model::Analysis& analysis = in.model->analysis;
  const size_t n = analysis.layers.size();
  if (in.sensitivity != nullptr && in.sensitivity->layers.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("the sensitivity report has ", in.sensitivity->layers.size(), " layers, the model ", n));
  }
  absl::StatusOr<std::vector<model::ChannelMatrix>> weights = model::ReadLayerWeights(*in.model);
  if (!weights.ok()) return weights.status();

  Problem problem;
  problem.synthetic_calibration = in.sensitivity == nullptr || in.sensitivity->synthetic_calibration;
  if (in.sensitivity == nullptr) {
    problem.warnings.push_back("no sensitivity was measured: every layer's output sensitivity is taken as 1");
  } else {
    problem.warnings = in.sensitivity->warnings;
  }

  const DeviceRealization realization{model::FlavourForRuntime(in.device->runtime),
                                      in.channel_alignment > 0 ? in.channel_alignment : ChannelAlignment(*in.device)};
  // Live activations besides each main-graph layer's own input and output; fixed costs of the rest.
  std::vector<int64_t> live_other(n, 0);
  std::map<std::string, double> other_ops;  // the fixed cost's memory-bound ops, by node
  const std::map<std::string, std::string> fused = FusedIntoLayers(in.model->proto.graph());
  // What a layer's fused followers cost when they run on their own. ONNX Runtime folds affine
  // followers (BatchNormalization, Add/Mul of a constant) into constant weights only: not into
  // weights that come out of a DequantizeLinear. It fuses activations into a Conv whatever its
  // weights (FusedConv), but into a QLinearConv only the Relu the exporter quantizes after (the
  // Q's saturation; model/activation_sites.h).
  std::map<std::string, double> unfused_affine, unfused_activation;
  // The exporter folds a BatchNormalization right after a Conv into integer weights itself.
  std::set<std::string> folded_by_export;
  for (const onnx::NodeProto& node : in.model->proto.graph().node()) {
    if (const onnx::NodeProto* bn = model::FoldableBatchNorm(in.model->proto.graph(), node); bn != nullptr) {
      folded_by_export.insert(bn->name());
    }
  }
  for (const model::NodeActivations& node : analysis.nodes) {
    auto f = fused.find(node.name);
    if (f == fused.end() || folded_by_export.count(node.name) > 0) continue;
    const double seconds = in.cost_model
                               ->PredictOp(dp::OpKind::kElementwise, node.output_bytes / 4,
                                           static_cast<double>(node.input_bytes + node.output_bytes))
                               .seconds;
    const bool affine = node.op_type == "BatchNormalization" || node.op_type == "Add" || node.op_type == "Mul";
    if (affine) {
      unfused_affine[f->second] += seconds;
    } else if (node.op_type != "Relu") {
      unfused_activation[f->second] += seconds;
    }
  }
  for (const model::NodeActivations& node : analysis.nodes) {
    if (node.layer >= 0 && static_cast<size_t>(node.layer) < n) {
      live_other[node.layer] = std::max<int64_t>(0, node.live_bytes - node.input_bytes - node.output_bytes);
      continue;
    }
    problem.table.fixed.activation_bytes =
        std::max(problem.table.fixed.activation_bytes, static_cast<double>(node.live_bytes));
    if (node.op_type == "Constant" || fused.count(node.name) > 0) continue;
    if (kShapeOnly.count(node.op_type) > 0) {
      problem.table.fixed.latency += in.device->op_overhead_us * 1e-6;
      continue;
    }
    // Memory-bound work over its float output (4 bytes a value); a whole-graph flavour (qnn) runs
    // it quantized, on uint8 values — the width of every plan with an 8-bit layer near it (an
    // all-fp16 neighbourhood moves twice that: priced optimistically there).
    const double width = model::QuantizesWholeGraph(realization.flavour) ? 0.25 : 1.0;
    const dp::OpPrediction op =
        in.cost_model->PredictOp(dp::OpKind::kElementwise, node.output_bytes / 4,
                                 width * static_cast<double>(node.input_bytes + node.output_bytes));
    problem.table.fixed.latency += op.seconds;
    other_ops[node.name] += op.seconds;
  }
  // Besides the weights, every file of the model holds its other constants and its structure.
  // The export drops the value_info the loader inferred, and adds its plan and flavour metadata.
  {
    onnx::ModelProto bare = in.model->proto;
    bare.mutable_graph()->clear_value_info();
    problem.table.fixed.bytes =
        static_cast<double>(analysis.other_initializer_bytes + model::StructureBytes(bare) + kMetadataBytes);
  }

  // Output-channel pruning only where the exporter removes channels, and what it narrows.
  const std::vector<model::ChannelPruningReach> reach = model::AnalyzeChannelPruning(*in.model);
  // The tensors integer-activation layers quantize: a standalone QuantizeLinear or
  // DequantizeLinear runs on one only where its two sides run in different domains.
  std::vector<bool> quantizable(n, false);
  for (size_t i = 0; i < n; ++i) quantizable[i] = model::ActivationsQuantizable(analysis, i);
  // The BatchNormalizations integer weights would fold, which leave the file with their structure.
  const std::vector<model::BatchNormFold> folds = model::BatchNormFolds(*in.model);
  // Which layer folds each such BatchNormalization, by node name: with that layer's integer
  // options its vectors leave the file, with the others they stay and narrow with its channels.
  std::map<std::string, size_t> folded_into;
  for (size_t j = 0; j < n; ++j) {
    if (folds[j].folds) folded_into[folds[j].batch_norm] = j;
  }
  problem.table.layers.resize(n);
  // The layers whose output-channel pruning narrows a tensor: through its writer, a node that
  // carries their channels (ChannelPruningReach::nodes), or as their own output.
  std::map<std::string, std::vector<std::pair<int32_t, double>>> narrowing;
  for (size_t j = 0; j < reach.size(); ++j) {
    if (!reach[j].removable) continue;
    for (const model::ReachedNode& node : reach[j].nodes) {
      if (!node.name.empty()) narrowing[node.name].emplace_back(static_cast<int32_t>(j), std::min(1.0, node.share));
    }
  }
  // What converting a site costs where pruning keeps a share `kept` of its channels. Conversions
  // are not linear in size (a uint8 pool slows down threefold per value once its input leaves L1),
  // so each narrower width is predicted for itself.
  auto conversion_costs = [&](const model::ActivationSite& site, double kept) {
    ConversionCosts c;
    c.kept = kept;
    const int64_t elements = std::llround(static_cast<double>(site.elements) * kept);
    // A runtime that fuses Q/DQ into the neighbouring layer's kernel (an int8 convolution reads
    // and writes its scales itself, float or int8 on either side) runs no standalone op there.
    const bool fused_qdq = model::FusesQdq(realization.flavour);
    c.quantize_latency =
        fused_qdq ? 0 : in.cost_model->PredictOp(dp::OpKind::kQuantizeLinear, elements, elements * 5.0).seconds;
    c.dequantize_latency =
        fused_qdq ? 0 : in.cost_model->PredictOp(dp::OpKind::kDequantizeLinear, elements, elements * 5.0).seconds;
    // Only a device whose transposes were measured pays them: its integer samples then exclude them
    // (device_profiles/cost_model.h), where a profile without them has them inside every sample.
    const dp::OpPrediction transpose = in.cost_model->PredictOp(dp::OpKind::kTranspose, elements, elements * 2.0);
    c.transpose_latency = transpose.basis == dp::Basis::kSamples ? transpose.seconds : 0;
    if (!site.pool.empty() && site.pool_reads > 0) {
      // A pool sample is a whole run: less the run's overhead, and less the float pool the fixed
      // cost already holds. Only where uint8 pools were measured.
      const int64_t reads = std::llround(static_cast<double>(site.pool_reads) * kept);
      const dp::OpPrediction pool = in.cost_model->PredictOp(dp::OpKind::kMaxPool, reads, reads + elements);
      auto in_fixed = other_ops.find(site.pool);
      if (pool.basis == dp::Basis::kSamples) {
        c.pool_latency = std::max(0.0, pool.seconds - in.device->op_overhead_us * 1e-6 -
                                           kept * (in_fixed != other_ops.end() ? in_fixed->second : 0.0));
      }
    }
    return c;
  };
  const std::vector<model::ActivationSite> sites = model::ActivationSites(*in.model);
  // The structure of the QuantizeLinear/DequantizeLinear pairs a layer's integer activations add:
  // a tensor's pair is shared by the layers that read it, and a layer's output pair is its own
  // where no layer reads that tensor. A whole-graph flavour quantizes the tensors between the
  // layers too: their pairs are shared out evenly (their constants' DequantizeLinear nodes are in
  // the table's region savings, below).
  std::vector<double> activation_pairs(n, 0);
  if (model::QuantizesWholeGraph(realization.flavour)) {
    const model::QuantizedRegion region = model::QuantizedRegionOf(
        *in.model, std::vector<model::LayerPlan>(n, model::LayerPlan{8, 8}), realization.flavour);
    double total = 0;
    for (const model::QuantizedTensor& t : region.tensors) {
      total +=
          static_cast<double>(model::QdqStructureBytes(t.name, model::ActivationSchemeOf(realization.flavour, t.bits)));
    }
    const auto count = static_cast<double>(std::count(quantizable.begin(), quantizable.end(), true));
    for (size_t i = 0; i < n; ++i) activation_pairs[i] = quantizable[i] && count > 0 ? total / count : 0;
  } else {
    const model::ActivationScheme scheme = model::ActivationSchemeOf(realization.flavour, 8);
    for (const model::ActivationSite& site : sites) {
      const auto pair = static_cast<double>(model::QdqStructureBytes(site.tensor, scheme));
      for (int r : site.readers) activation_pairs[r] += pair / static_cast<double>(site.readers.size());
      if (site.readers.empty() && site.producer >= 0) activation_pairs[site.producer] += pair;
    }
  }
  for (const model::ActivationSite& site : sites) {
    // The site is its producer's output and its readers' input.
    const int32_t index = static_cast<int32_t>(problem.table.boundaries.size());
    if (site.producer >= 0) problem.table.layers[site.producer].output_boundary = index;
    for (int r : site.readers) problem.table.layers[r].input_boundary = index;
    ActivationBoundary b;
    b.producer = site.producer;
    b.readers.assign(site.readers.begin(), site.readers.end());
    b.float_readers = site.float_readers;
    if (site.producer >= 0 && static_cast<size_t>(site.producer) < reach.size() && reach[site.producer].removable) {
      b.narrowed_by.emplace_back(site.producer, 1.0);
    } else if (auto by = narrowing.find(site.writer); !site.writer.empty() && by != narrowing.end()) {
      b.narrowed_by = by->second;
    }
    b.layout_producer = site.layout_producer;
    b.layout_readers.assign(site.layout_readers.begin(), site.layout_readers.end());
    b.float_layout_reader = site.float_layout_reader;
    const ConversionCosts c = conversion_costs(site, 1.0);
    b.quantize_latency = c.quantize_latency;
    b.dequantize_latency = c.dequantize_latency;
    b.transpose_latency = c.transpose_latency;
    b.pool_latency = c.pool_latency;
    problem.table.boundaries.push_back(std::move(b));
  }
  const std::vector<double> boundary_bound = BoundaryBounds(problem.table);
  problem.details.resize(n);
  if (in.distortion_cache != nullptr) in.distortion_cache->layers.resize(n);
  problem.sensitivity.assign(n, 1.0);
  std::vector<std::string> layer_warnings(n);
  std::vector<double> bytes_shift(n, 0);
  std::vector<absl::Status> layer_status(n);
  std::atomic<size_t> done{0};
  std::mutex progress_mutex;

  auto build_layer = [&](size_t i) {
    if (in.cancelled != nullptr && in.cancelled->load()) return;
    const model::Layer& layer = analysis.layers[i];
    const model::ChannelMatrix& w = (*weights)[i];
    const runtime::LayerSensitivity* sens = in.sensitivity ? &in.sensitivity->layers[i] : nullptr;
    const double s_i = sens != nullptr ? sens->weight : 1.0;
    problem.sensitivity[i] = s_i;
    if (sens != nullptr && !sens->measured) {
      layer_warnings[i] = absl::StrCat("layer '", layer.name, "': sensitivity not measured, taken as 1");
    }
    if (layer.macs == 0) {
      layer_warnings[i] = absl::StrCat(layer_warnings[i].empty() ? "" : layer_warnings[i] + "; ", "layer '", layer.name,
                                       "': shapes unknown, its latency counts only per-op overhead");
    }
    const dp::LayerShape shape = ShapeOf(layer);
    std::vector<dp::CompressionOption> options = LayerOptions(in.grid, layer, realization);
    if (i < reach.size() && !reach[i].removable) {
      options.erase(
          std::remove_if(options.begin(), options.end(),
                         [](const dp::CompressionOption& o) { return o.pattern == dp::Sparsity::kOutputChannel; }),
          options.end());
    }
    // A layer the calibration inputs never ran has no measured sensitivity to trade: only the
    // options whose error is small whatever it is (8-bit weights or more, nothing pruned).
    if (sens != nullptr && !sens->exercised) {
      options.erase(std::remove_if(options.begin(), options.end(),
                                   [](const dp::CompressionOption& o) {
                                     return o.weight_bits < 8 || o.pattern != dp::Sparsity::kDense;
                                   }),
                    options.end());
    }
    // D_i depends on (weight bits, pattern, ratio, block) only: each pruning mask is found once,
    // with the distortion it alone leaves, and each (bits, block) quantized once (LayerDistortions).
    struct Mask {
      std::vector<uint8_t> keep;
      std::vector<int64_t> kept_channels;  // the output channels it keeps (model::KeptChannels)
      double distortion = 0;
    };
    std::map<std::pair<int, double>, Mask> masks;
    std::map<std::tuple<int, int, double, int>, double> own;
    std::map<std::tuple<int, int, double, int>, double>& distortion =
        in.distortion_cache != nullptr ? in.distortion_cache->layers[i] : own;
    LayerDistortions distortions(w, InputsOf(in, layer.name));
    Layer& out = problem.table.layers[i];
    out.name = layer.name;
    std::vector<OptionDetail>& details = problem.details[i];
    for (const dp::CompressionOption& option : options) {
      dp::LatencyPrediction latency = in.cost_model->Predict(shape, option);
      if (latency.support == dp::Support::kUnsupported) continue;
      const auto key =
          std::make_tuple(option.weight_bits, static_cast<int>(option.pattern), option.prune_ratio, option.block_size);
      const auto mask_key = std::make_pair(static_cast<int>(option.pattern), option.prune_ratio);
      auto mask = masks.find(mask_key);
      if (mask == masks.end()) {
        Mask m;
        m.keep = model::PruneMask(w, option.pattern, option.prune_ratio);
        m.distortion = model::RelativeDistortion(w.values, model::QuantizeMasked(w, m.keep, 32).values);
        if (option.pattern == dp::Sparsity::kOutputChannel) m.kept_channels = model::KeptChannels(w, m.keep);
        mask = masks.emplace(mask_key, std::move(m)).first;
      }
      auto d = distortion.find(key);
      if (d == distortion.end()) {
        d = distortion.emplace(key, distortions.Of(mask->second.keep, mask->second.distortion, option)).first;
      }
      double act = 0;
      if (option.activation_bits < 32) {
        const model::ActivationScheme scheme = model::ActivationSchemeOf(realization.flavour, option.activation_bits);
        act = MeasuredActivationError(sens, option.activation_bits, scheme)
                  .value_or(AssumedActivationError(option.activation_bits, scheme));
      }
      const double keep_out =
          option.pattern == dp::Sparsity::kOutputChannel && layer.out_channels > 0
              ? static_cast<double>(layer.out_channels - std::llround(layer.out_channels * option.prune_ratio)) /
                    layer.out_channels
              : 1.0;
      // Integer weights: the affine followers run on their own; uint8 activations: so do the
      // activations a QLinearConv cannot take, and the input is quantized on the way in and the
      // output dequantized on the way out (the float ops around keep float). A runtime that fuses
      // them into its integer kernels (model::FusesQdq) runs nothing apart.
      double unfused = 0;
      if (option.weight_bits <= 8 && !model::FusesQdq(realization.flavour)) {
        if (auto it = unfused_affine.find(layer.name); it != unfused_affine.end()) unfused += it->second;
        if (option.activation_bits == 8) {
          if (auto it = unfused_activation.find(layer.name); it != unfused_activation.end()) unfused += it->second;
        }
      }
      if (unfused > 0) {
        latency.seconds += unfused;
        absl::StrAppend(&latency.explanation,
                        absl::StrFormat("; + %.1f us of ops no longer fused into it", unfused * 1e6));
      }
      LayerOption o;
      o.removed_channels = 1.0 - keep_out;
      if (model::QuantizesActivations(realization.flavour, option.weight_bits, option.activation_bits) &&
          quantizable[i]) {
        o.integer_activations = true;
        o.boundary_latency = boundary_bound[i];
        absl::StrAppend(&latency.explanation,
                        absl::StrFormat("; + up to %.1f us quantizing its input and dequantizing its output where "
                                        "the neighbouring layers run float",
                                        boundary_bound[i] * 1e6));
      }
      o.label = OptionLabel(option);
      o.latency = latency.seconds;
      // What the file holds for the layer (model::LayerFileBytes: pruned weights are stored zeros
      // in an ONNX file, 5..8-bit weights int8), and the nodes and tensors its export adds.
      const int64_t kept_channels = std::llround(static_cast<double>(layer.out_channels) * keep_out);
      const model::LayerPlan plan = LayerPlanOf(option);
      o.bytes =
          static_cast<double>(model::LayerFileBytes(layer, plan, realization.flavour, kept_channels, folds[i].folds)) +
          StructureBytesOf(layer, i, option, realization.flavour, quantizable[i] ? activation_pairs[i] : 0, folds[i]);
      // What of it the layers before it take away where they prune the channels it reads.
      o.narrowable_bytes = static_cast<double>(
          model::NarrowableFileBytes(layer, plan, realization.flavour, kept_channels, folds[i].folds));
      // The channels it removes take the constants of the ops they pass through along (a
      // BatchNormalization's vectors, a per-channel Mul or Add operand: the exporter slices them),
      // whatever the other layers do. Not a BatchNormalization a layer folds: its own leaves the
      // file whole with its integer options (LayerFileBytes), and a depthwise reader's narrows with
      // that layer's options (NarrowableFileBytes). A whole-graph flavour stores the constants of
      // its quantized region in uint8, a quarter of what this counts for them: per-channel vectors,
      // small next to the weights the same channels take. (What the exporter slices it renames,
      // "_pruned": a dozen bytes of names each, not counted.)
      const bool folds_here = folds[i].folds && option.weight_bits <= 8;
      if (o.removed_channels > 0 && i < reach.size()) {
        for (const model::ReachedNode& node : reach[i].nodes) {
          auto folder = folded_into.find(node.name);
          if (folder != folded_into.end() && (folder->second != i || folds_here)) continue;
          o.bytes -= o.removed_channels * node.share * static_cast<double>(node.channel_constant_bytes);
        }
      }
      // What pruning removes and the error quantization adds to the weights left lie on disjoint
      // weights: their energies add, each with the sensitivity to its shape.
      const double pruned = std::min(mask->second.distortion, d->second);
      const std::optional<double> removed_energy = option.pattern == dp::Sparsity::kOutputChannel && sens != nullptr
                                                       ? runtime::RemovedEnergyShare(*sens, mask->second.kept_channels)
                                                       : std::nullopt;
      const double pruning_error =
          runtime::PredictedPruningError(sens, option.pattern, option.prune_ratio, pruned, removed_energy);
      o.error = runtime::PredictedQuantizationError(sens, option.weight_bits, d->second - pruned) + pruning_error + act;
      o.activation_bytes = static_cast<double>(live_other[i]) +
                           (shape.input_elements + shape.output_elements * keep_out) * option.activation_bits / 8.0;
      out.options.push_back(std::move(o));
      details.push_back(
          OptionDetail{option, std::move(latency), d->second, static_cast<double>(layer.params), act, pruning_error});
    }
    // A layer's bytes are what its file holds beyond the model's other constants, which may be
    // less than nothing (a folded BatchNormalization's vectors leave with it), or less than its
    // narrowable bytes (a depthwise Conv's bias is among the other constants, and narrows with
    // it): shifted here to neither, and the shift taken from the fixed bytes below, so the total is
    // the file's.
    for (const LayerOption& o : out.options) {
      bytes_shift[i] = std::max({bytes_shift[i], -o.bytes, o.narrowable_bytes - o.bytes});
    }
    for (LayerOption& o : out.options) {
      o.bytes += bytes_shift[i];
      o.narrowable_bytes = std::min(o.narrowable_bytes, o.bytes);  // only rounding can leave it above
    }
    if (out.options.empty()) {
      layer_status[i] = absl::FailedPreconditionError(
          absl::StrCat(in.device->id, " can run none of the options of layer '", layer.name, "' (", layer.op_type,
                       "): widen the option space (e.g. allow int8 or fp16)"));
    }
    const size_t finished = ++done;
    if (in.on_progress) {
      std::lock_guard<std::mutex> lock(progress_mutex);
      in.on_progress(static_cast<double>(finished) / n);
    }
  };

  tbb::task_arena arena(in.threads > 0 ? in.threads : tbb::task_arena::automatic);
  arena.execute([&] {
    tbb::parallel_for(tbb::blocked_range<size_t>(0, n, 1), [&](const tbb::blocked_range<size_t>& r) {
      for (size_t i = r.begin(); i != r.end(); ++i) build_layer(i);
    });
  });
  if (in.cancelled != nullptr && in.cancelled->load())
    return absl::CancelledError("the option table build was cancelled");
  for (size_t i = 0; i < n; ++i) {
    if (!layer_status[i].ok()) return layer_status[i];
    if (!layer_warnings[i].empty()) problem.warnings.push_back(layer_warnings[i]);
    problem.table.fixed.bytes -= bytes_shift[i];
  }
  // A whole-graph flavour stores the float constants of a region in uint8 where a layer bordering
  // it runs integer; the fixed bytes count them float. A region whose few values save less than
  // their scale, zero point and DequantizeLinear cost (a scalar's) is counted as always quantized:
  // on such a flavour every option but the fp16 ones quantizes its regions, and the saving may not
  // be negative.
  for (const model::QuantizableRegion& r : model::QuantizableRegionsOf(*in.model, realization.flavour)) {
    if (r.saved_bytes < 0) {
      problem.table.fixed.bytes -= static_cast<double>(r.saved_bytes);
      continue;
    }
    problem.table.region_savings.push_back(
        {std::vector<int32_t>(r.layers.begin(), r.layers.end()), static_cast<double>(r.saved_bytes)});
  }
  // Each narrowed boundary's costs at the widths its narrowing layers' options leave it.
  for (size_t k = 0; k < problem.table.boundaries.size(); ++k) {
    ActivationBoundary& b = problem.table.boundaries[k];
    std::set<double> widths;
    for (const auto& [j, share] : b.narrowed_by) {
      for (const LayerOption& o : problem.table.layers[j].options) {
        if (o.removed_channels > 0) widths.insert(1.0 - share * o.removed_channels);
      }
    }
    for (double kept : widths) {
      if (kept <= 0 || kept >= 1) continue;
      ConversionCosts c = conversion_costs(sites[k], kept);
      // Never above the whole tensor's: the options' boundary bounds stay bounds.
      c.quantize_latency = std::min(c.quantize_latency, b.quantize_latency);
      c.dequantize_latency = std::min(c.dequantize_latency, b.dequantize_latency);
      c.transpose_latency = std::min(c.transpose_latency, b.transpose_latency);
      c.pool_latency = std::min(c.pool_latency, b.pool_latency);
      b.narrower.push_back(c);
    }
  }
  const double fixed_before_calibration = problem.table.fixed.latency;
  // Kept only where a uniform export may ask for a second calibration.
  std::optional<Problem> uncalibrated;
  if (std::any_of(in.model_latencies.begin(), in.model_latencies.end(), [&](const dp::ModelLatency& m) {
        return !in.model_sha256.empty() && m.model_sha256 == in.model_sha256 && !m.variant.empty();
      })) {
    uncalibrated = problem;
  }
  CalibrateToMeasurement(in, /*other_ops_known=*/false, &problem);
  if (const double shrink = CalibrateToVariants(in, &problem); shrink < 1 && uncalibrated) {
    // A uniform export ran faster than its other ops predict: those are over-predicted. Scaled by
    // the ratio that export's whole plan missed by, then both calibrations again from the start.
    problem = *std::move(uncalibrated);
    problem.table.fixed.latency *= shrink;
    CalibrateToMeasurement(in, /*other_ops_known=*/true, &problem);
    CalibrateToVariants(in, &problem);
    problem.latency_calibration =
        absl::StrFormat("the other ops scaled by %.3f first (a uniform export measured less than they predict); %s",
                        shrink, problem.latency_calibration);
  }
  const double fixed_scale =
      fixed_before_calibration > 0 ? problem.table.fixed.latency / fixed_before_calibration : 1.0;
  CreditNarrowedReaders(reach, other_ops, fixed_scale, &problem);
  CalibrateToPrunedVariant(in, reach, realization.channel_alignment, &problem);
  PriceFusedWeightOnly(boundary_bound, &problem);
  return problem;
}

}  // namespace squeeze::search
