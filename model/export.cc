#include "model/export.h"

#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <exception>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "model/activation_sites.h"
#include "model/batch_norm_folding.h"
#include "model/conformance.h"
#include "model/internal/channel_flow.h"
#include "model/internal/export_activations.h"
#include "model/internal/export_opset.h"
#include "model/internal/export_weights.h"
#include "model/internal/graph.h"
#include "model/internal/graph_editor.h"
#include "model/internal/tensor_data.h"
#include "model/internal/validation.h"
#include "model/quantized_region.h"

namespace squeeze::model {
namespace {

// The calibration input rows GPTQ rounds `layer`'s weights on; null when it rounds to nearest.
const LayerInputRows* InputsOf(const ExportOptions& options, const std::string& layer) {
  if (options.rounding != WeightRounding::kErrorCompensating) return nullptr;
  const auto it = options.layer_inputs.find(layer);
  return it != options.layer_inputs.end() ? it->second.get() : nullptr;
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out;
}

const char* PatternName(Sparsity p) {
  switch (p) {
    case Sparsity::kDense:
      return "dense";
    case Sparsity::kUnstructured:
      return "unstructured";
    case Sparsity::kTwoFour:
      return "2:4";
    case Sparsity::kOutputChannel:
      return "output_channel";
  }
  return "dense";
}

// What the file holds for a MatMulNBits layer (PlanEntryJson's "file").
std::string MatMulNBitsNote(const LayerPlan& p) {
  return absl::StrCat(p.weight_bits, "-bit weights in ", MatMulNBitsStorageBits(p.weight_bits),
                      "-bit codes, a scale per ", p.block_size,
                      " along K (com.microsoft.MatMulNBits); float activations: computes in fp32");
}

// Why a flavour writes no file for some precision, in a few words.
const char* UnrealizedWhy(ExportFlavour flavour) {
  switch (flavour) {
    case ExportFlavour::kOrtCpu:
      return "ONNX Runtime's CPU provider computes float layers in fp32";
    case ExportFlavour::kRuntimePrecision:
      return "ONNX Runtime's CoreML provider converts no quantized op: fp32 or fp16 only";
    case ExportFlavour::kQnn:
      return "the HTP computes integer layers on integer activations, float ones in fp16";
    case ExportFlavour::kTensorRt:
      break;
  }
  return "no such file";
}

absl::Status ValidatePlan(const Analysis& analysis, const std::vector<LayerPlan>& plan, ExportFlavour flavour) {
  if (plan.size() != analysis.layers.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the plan has ", plan.size(), " layers; the model has ", analysis.layers.size()));
  }
  for (size_t i = 0; i < plan.size(); ++i) {
    const LayerPlan& p = plan[i];
    const std::string& name = analysis.layers[i].name;
    const bool int_bits = p.weight_bits >= 2 && p.weight_bits <= 8;
    if (!int_bits && p.weight_bits != 16 && p.weight_bits != 32) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer '", name, "': weight bits ", p.weight_bits, " (2..8, 16 or 32)"));
    }
    if (p.activation_bits != 8 && p.activation_bits != 16 && p.activation_bits != 32) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer '", name, "': activation bits ", p.activation_bits, " (8, 16 or 32)"));
    }
    if (p.activation_bits == 8 && !int_bits) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer '", name, "': 8-bit activations need integer weights, not ", p.weight_bits, " bits"));
    }
    if (!Realizes(flavour, p.weight_bits, p.activation_bits)) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer '", name, "': w", p.weight_bits, "a", p.activation_bits, " is not written by the ",
                       FlavourName(flavour), " export (", UnrealizedWhy(flavour),
                       "): search again for this device, whose options are what its export writes"));
    }
    if (!(p.prune_ratio >= 0 && p.prune_ratio < 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer '", name, "': prune ratio ", p.prune_ratio, " not in [0, 1)"));
    }
    if (p.block_size != 0) {
      if (!WritesMatMulNBits(analysis.layers[i], flavour, p.weight_bits, p.activation_bits)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "layer '", name, "': a block size is for 2..4-bit weights of a MatMul with float activations in the ",
            "ort-cpu export (MatMulNBits), not w", p.weight_bits, "a", p.activation_bits, " of a ",
            analysis.layers[i].op_type, " in ", FlavourName(flavour)));
      }
      if (!IsMatMulNBitsBlockSize(p.block_size)) {
        return absl::InvalidArgumentError(
            absl::StrCat("layer '", name, "': block size ", p.block_size, " (a power of two from 16 to 256)"));
      }
    }
  }
  return absl::OkStatus();
}

// Sets (or adds) metadata_props[key].
void SetMetadata(onnx::ModelProto* proto, const std::string& key, const std::string& value) {
  for (auto& prop : *proto->mutable_metadata_props()) {
    if (prop.key() == key) {
      prop.set_value(value);
      return;
    }
  }
  auto* prop = proto->add_metadata_props();
  prop->set_key(key);
  prop->set_value(value);
}

// libonnx's checker, then its type and shape inference in strict mode.
absl::Status CheckExported(onnx::ModelProto* proto) {
  absl::StatusOr<internal::ValidationResult> valid = internal::ValidateModel(proto);
  if (!valid.ok()) return absl::InvalidArgumentError(absl::StrCat("the exported model: ", valid.status().message()));
  try {
    onnx::ModelProto copy = *proto;
    onnx::ShapeInferenceOptions strict{true, 1, false};
    onnx::shape_inference::InferShapes(copy, onnx::OpSchemaRegistry::Instance(), strict);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("the exported model fails ONNX type checking: ", internal::OneLine(e.what())));
  }
  return absl::OkStatus();
}

// The layers given integer weights, whose BatchNormalizations are folded.
std::set<size_t> IntegerWeightLayers(const std::vector<LayerPlan>& plan) {
  std::set<size_t> layers;
  for (size_t i = 0; i < plan.size(); ++i) {
    if (plan[i].weight_bits <= 8) layers.insert(i);
  }
  return layers;
}

}  // namespace

std::string LayerPlanLabel(const LayerPlan& p) {
  std::string precision = p.weight_bits == 32 && p.activation_bits == 32 ? "fp32"
                          : p.weight_bits == 16 && p.activation_bits == 16
                              ? "fp16"
                              : absl::StrCat("w", p.weight_bits, "a", p.activation_bits);
  if (p.block_size > 0) absl::StrAppend(&precision, " block ", p.block_size);
  switch (p.pattern) {
    case Sparsity::kDense:
      return precision;
    case Sparsity::kTwoFour:
      return absl::StrCat(precision, " 2:4");
    case Sparsity::kUnstructured:
      return absl::StrFormat("%s unstructured %.0f%%", precision, p.prune_ratio * 100);
    case Sparsity::kOutputChannel:
      return absl::StrFormat("%s channel %.0f%%", precision, p.prune_ratio * 100);
  }
  return precision;
}

std::string PlanEntryJson(const Layer& layer, const LayerPlan& p, ExportFlavour flavour) {
  return absl::StrFormat(
      "{\"layer\":\"%s\",\"option\":\"%s\",\"weight_bits\":%d,\"activation_bits\":%d,\"pattern\":\"%s\","
      "\"prune_ratio\":%g,%s\"file\":\"%s\"}",
      JsonEscape(layer.name), LayerPlanLabel(p), p.weight_bits, p.activation_bits, PatternName(p.pattern),
      p.prune_ratio, p.block_size > 0 ? absl::StrCat("\"block_size\":", p.block_size, ",") : "",
      JsonEscape(p.block_size > 0 ? MatMulNBitsNote(p) : RealizationNote(flavour, p.weight_bits, p.activation_bits)));
}

std::string PlanJson(const Analysis& analysis, const std::vector<LayerPlan>& plan, ExportFlavour flavour) {
  std::vector<std::string> items;
  for (size_t i = 0; i < plan.size() && i < analysis.layers.size(); ++i) {
    items.push_back(PlanEntryJson(analysis.layers[i], plan[i], flavour));
  }
  return absl::StrCat("[", absl::StrJoin(items, ","), "]");
}

absl::StatusOr<std::vector<std::string>> ActivationsToCalibrate(const LoadedModel& model,
                                                                const std::vector<LayerPlan>& plan,
                                                                ExportFlavour flavour) {
  if (absl::Status s = ValidatePlan(model.analysis, plan, flavour); !s.ok()) return s;
  std::vector<std::string> names;
  for (const QuantizedTensor& t : QuantizedRegionOf(model, plan, flavour).tensors) names.push_back(t.name);
  return names;
}

bool WritesMatMulNBits(const Layer& layer, ExportFlavour flavour, int weight_bits, int activation_bits) {
  return WritesBlockWiseMatMuls(flavour) && weight_bits >= 2 && weight_bits <= 4 && activation_bits == 32 &&
         layer.op_type == "MatMul" && layer.weight_elem_type == onnx::TensorProto::FLOAT &&
         layer.weight_shape.size() == 2 && layer.weight_layout.groups == 1 && layer.weight_layout.inner == 1;
}

int MatMulNBitsStorageBits(int weight_bits) { return weight_bits <= 2 ? 2 : 4; }

bool IsMatMulNBitsBlockSize(int64_t block_size) {
  return block_size >= 16 && block_size <= 256 && (block_size & (block_size - 1)) == 0;
}

bool StoresInt32Bias(const Layer& layer, const LayerPlan& plan, ExportFlavour flavour) {
  return plan.weight_bits <= 8 && QuantizesActivations(flavour, plan.weight_bits, plan.activation_bits) &&
         layer.subgraph.empty() && layer.op_type == "Conv" && layer.weight_elem_type == onnx::TensorProto::FLOAT &&
         ActivationSchemeOf(flavour, plan.activation_bits) != ActivationScheme::kSymmetricInt8;
}

int64_t LayerFileBytes(const Layer& layer, const LayerPlan& plan, ExportFlavour flavour, int64_t kept_out_channels,
                       bool folds_batch_norm) {
  const int64_t channels = std::max<int64_t>(kept_out_channels, 0);
  const int64_t per_channel = layer.out_channels > 0 ? layer.params / layer.out_channels : layer.params;
  const int64_t elements = channels * per_channel;
  const int64_t float_bytes = layer.weight_elem_type == onnx::TensorProto::FLOAT16 ? 2 : 4;
  int64_t bytes = 0;
  const bool integer = plan.weight_bits >= 2 && plan.weight_bits <= 8;
  if (integer && plan.block_size > 0) {
    // MatMulNBits: per output column, ceil(K / block) blocks of block x bits / 8 bytes and a scale
    // each (no zero points: the default, 2^(bits-1), is the symmetric one). A MatMul has no bias.
    const int64_t blocks = channels * ((per_channel + plan.block_size - 1) / plan.block_size);
    return blocks * (plan.block_size * MatMulNBitsStorageBits(plan.weight_bits) / 8 + 4);
  }
  if (integer && StoresInt4(flavour, plan.weight_bits, plan.activation_bits)) {
    bytes = (elements + 1) / 2 + 4 * channels + (channels + 1) / 2;  // values, scales, zero points
  } else if (integer) {
    bytes = elements + 4 * channels + channels;
  } else {
    bytes = elements * (plan.weight_bits == 16 ? 2 : float_bytes);
  }
  const int64_t original_bias = float_bytes * layer.bias_params;
  const bool int32_bias = StoresInt32Bias(layer, plan, flavour);
  // Integer weights take the BatchNormalization after them into their weights and a new bias
  // (its four vectors, and the old bias, leave the file).
  if (integer && folds_batch_norm) {
    return bytes + (int32_bias ? 12 : 4) * channels - original_bias - 4 * 4 * layer.out_channels;
  }
  if (layer.bias_params <= 0) return bytes;
  // The bias, where the export rewrites it: int32 with per-channel scales and zero points, else
  // sliced as it was when channels go.
  if (int32_bias) return bytes + 12 * channels - original_bias;
  if (channels < layer.out_channels) return bytes + float_bytes * channels - original_bias;
  return bytes;
}

int64_t NarrowableFileBytes(const Layer& layer, const LayerPlan& plan, ExportFlavour flavour, int64_t kept_out_channels,
                            bool folds_batch_norm) {
  if (!layer.subgraph.empty() || (layer.op_type != "Conv" && layer.op_type != "ConvTranspose")) return 0;
  const bool integer = plan.weight_bits >= 2 && plan.weight_bits <= 8;
  if (layer.op_type == "Conv" && layer.groups > 1 && layer.groups == layer.out_channels && layer.depthwise) {
    // Every per-channel byte LayerFileBytes counts: what it stores at these channels over none.
    const int64_t per_channel = LayerFileBytes(layer, plan, flavour, kept_out_channels, folds_batch_norm) -
                                LayerFileBytes(layer, plan, flavour, 0, folds_batch_norm);
    const int64_t batch_norm = folds_batch_norm && !integer ? 4 * 4 * std::max<int64_t>(kept_out_channels, 0) : 0;
    return per_channel + batch_norm;
  }
  if (layer.grouped) return 0;
  // The weight values alone, as LayerFileBytes stores them.
  const int64_t per_channel = layer.out_channels > 0 ? layer.params / layer.out_channels : layer.params;
  const int64_t elements = std::max<int64_t>(kept_out_channels, 0) * per_channel;
  if (integer) return StoresInt4(flavour, plan.weight_bits, plan.activation_bits) ? (elements + 1) / 2 : elements;
  const int64_t float_bytes = layer.weight_elem_type == onnx::TensorProto::FLOAT16 ? 2 : 4;
  return elements * (plan.weight_bits == 16 ? 2 : float_bytes);
}

int64_t QdqStructureBytes(const std::string& tensor, ActivationScheme scheme) {
  onnx::ModelProto scratch;
  internal::GraphEditor editor(&scratch);
  onnx::GraphProto* g = editor.main_graph();
  ActivationQuantizer q;
  q.scheme = scheme;
  std::string dequantized;
  for (onnx::NodeProto& n : internal::QdqNodes(editor, g, tensor, absl::StrCat(tensor, "_squeeze"), q,
                                               internal::QdqParams::kInitializers, &dequantized)) {
    *g->add_node() = std::move(n);
  }
  return StructureBytes(scratch);
}

int64_t MatMulNBitsStructureBytes(const Layer& layer, const LayerPlan& plan, const std::string& base) {
  const int64_t n = layer.out_channels, k = n > 0 ? layer.params / n : 0;
  const int64_t bits = MatMulNBitsStorageBits(plan.weight_bits);
  const int64_t blocks = plan.block_size > 0 ? (k + plan.block_size - 1) / plan.block_size : 0;
  // A constant's values as the file frames them: a tag and a varint length (what StructureBytes
  // counts besides its values).
  auto framed = [](int64_t bytes) -> int64_t {
    int64_t length_bytes = 1;
    for (int64_t v = bytes; v >= 0x80; v >>= 7) ++length_bytes;
    return bytes > 0 ? 1 + length_bytes : 0;
  };
  auto tensor = [](onnx::GraphProto* g, const std::string& name, int32_t type, std::vector<int64_t> dims) {
    onnx::TensorProto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    for (int64_t d : dims) t->add_dims(d);
    return t;
  };
  onnx::ModelProto before, after;
  onnx::GraphProto* g = before.mutable_graph();
  *g->add_node() = internal::MakeNode("MatMul", layer.name, {"x", layer.weight_name}, {"y"});
  tensor(g, layer.weight_name, layer.weight_elem_type, layer.weight_shape);
  int64_t frames = -framed(4 * layer.params);
  g = after.mutable_graph();
  onnx::NodeProto node = internal::MakeNode("MatMulNBits", layer.name, {"x", base + "_q", base + "_scale"}, {"y"});
  node.set_domain(std::string(kMicrosoftDomain));
  internal::SetIntAttribute(&node, "K", k);
  internal::SetIntAttribute(&node, "N", n);
  internal::SetIntAttribute(&node, "bits", bits);
  internal::SetIntAttribute(&node, "block_size", plan.block_size);
  *g->add_node() = std::move(node);
  tensor(g, base + "_q", onnx::TensorProto::UINT8, {n, blocks, plan.block_size * bits / 8});
  tensor(g, base + "_scale", onnx::TensorProto::FLOAT, {n, blocks});
  frames += framed(n * blocks * plan.block_size * bits / 8) + framed(4 * n * blocks);
  return StructureBytes(after) - StructureBytes(before) + frames;
}

int64_t StructureBytes(const onnx::ModelProto& model) {
  int64_t constants = 0;
  for (const internal::NamedTensor& t : internal::AllConstants(model)) constants += internal::StoredBytes(*t.tensor);
  return std::max<int64_t>(0, static_cast<int64_t>(model.ByteSizeLong()) - constants);
}

absl::StatusOr<ExportedModel> ExportModel(const LoadedModel& model, const std::vector<LayerPlan>& plan,
                                          const std::map<std::string, TensorRange>& ranges,
                                          const ExportOptions& options) {
  const Analysis& analysis = model.analysis;
  if (absl::Status s = ValidatePlan(analysis, plan, options.flavour); !s.ok()) return s;
  const QuantizedRegion region = QuantizedRegionOf(model, plan, options.flavour);
  absl::StatusOr<std::map<std::string, ActivationQuantizer>> activation_quant =
      internal::ActivationQuantizers(region.tensors, ranges, options.flavour);
  if (!activation_quant.ok()) return activation_quant.status();

  ExportedModel result;
  ExportReport& report = result.report;
  onnx::ModelProto proto = model.proto;
  if (absl::Status s = internal::ConvertForQdq(analysis, plan, options.shape_probe, &proto, &report); !s.ok()) return s;
  absl::StatusOr<FoldedLayers> folded = FoldBatchNorms(&proto, analysis, IntegerWeightLayers(plan));
  if (!folded.ok()) return folded.status();

  internal::GraphEditor editor(&proto);
  absl::StatusOr<std::vector<internal::LayerWeight>> weights =
      internal::LayerWeightsOf(editor, analysis, plan, folded->row_scales);
  if (!weights.ok()) return weights.status();
  // Which pruned channels leave the graph, and what their consumers lose with them.
  const std::map<std::string, size_t> layer_of_node = internal::LayerOfNode(analysis, *weights);
  std::vector<std::vector<uint8_t>> pruned_rows;
  for (const internal::LayerWeight& w : *weights) pruned_rows.push_back(w.pruned_rows);
  internal::ChannelFlow flow(&proto, analysis, layer_of_node, pruned_rows);
  flow.Run();
  if (absl::Status s = internal::SliceChannelConsumers(flow, editor); !s.ok()) return s;

  std::set<std::string> weight_constants;  // what the packed figure covers
  for (size_t i = 0; i < analysis.layers.size(); ++i) {
    if (absl::Status s = internal::ExportLayerWeights(
            analysis.layers[i], i, plan[i], (*weights)[i], flow, *activation_quant, options.flavour,
            InputsOf(options, analysis.layers[i].name), editor, &weight_constants, &report);
        !s.ok()) {
      return s;
    }
  }
  // A layer's file bytes count what its BatchNormalization's fold added and took away.
  for (const auto& [i, bytes] : folded->added_bytes) report.layers[i].file_bytes += bytes;
  for (const auto& [i, bytes] : folded->removed_bytes) report.layers[i].file_bytes -= bytes;
  const bool whole_graph = QuantizesWholeGraph(options.flavour);
  report.quantized_activations = internal::InsertActivationQdq(*activation_quant, whole_graph, editor);
  report.quantized_constants = internal::QuantizeRegionConstants(region.constants, editor);
  editor.Finish();
  internal::ImportDomainsUsed(&proto);
  proto.mutable_graph()->clear_value_info();

  SetMetadata(&proto, "squeeze.plan", PlanJson(analysis, plan, options.flavour));
  SetMetadata(&proto, "squeeze.flavour", std::string(FlavourName(options.flavour)));
  for (const auto& [k, v] : options.metadata) SetMetadata(&proto, k, v);
  if (absl::Status s = CheckExported(&proto); !s.ok()) return s;
  const ConformanceReport conformance = CheckConformance(proto, options.flavour);
  report.conformance = conformance.Summary();
  report.float_ops_between_quantized = conformance.float_ops_between_quantized;
  if (!conformance.ok()) {
    if (options.flavour != ExportFlavour::kOrtCpu) {
      return absl::FailedPreconditionError(absl::StrCat("the file would break the rules of the ",
                                                        FlavourName(options.flavour),
                                                        " flavour's runtime: ", report.conformance));
    }
    report.warnings.push_back(absl::StrCat("conformance: ", report.conformance));
  }

  for (const internal::NamedTensor& t : internal::AllConstants(proto)) {
    if (!weight_constants.count(t.name)) report.other_constant_bytes += internal::StoredBytes(*t.tensor);
  }
  report.packed_model_bytes = report.packed_weight_bytes + report.other_constant_bytes + StructureBytes(proto);
  result.bytes = proto.SerializeAsString();
  report.file_bytes = static_cast<int64_t>(result.bytes.size());
  return result;
}

}  // namespace squeeze::model
