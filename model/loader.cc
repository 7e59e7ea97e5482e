#include "model/loader.h"

#include <onnx/checker.h>
#include <onnx/defs/shape_inference.h>

#include <algorithm>
#include <climits>
#include <new>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "model/internal/activations.h"
#include "model/internal/graph.h"
#include "model/internal/layers.h"
#include "model/internal/model_bytes.h"
#include "model/internal/shapes.h"
#include "model/internal/tensor_data.h"
#include "model/internal/validation.h"
#include "model/internal/weight_stats.h"

namespace squeeze::model {
namespace {

using internal::LayerSite;
using internal::ValueShape;

std::string Histogram(const std::map<std::string, int64_t>& counts) {
  std::vector<std::string> parts;
  for (const auto& [op, n] : counts) parts.push_back(absl::StrCat(op, " ", n));
  return parts.empty() ? "none" : absl::StrJoin(parts, ", ");
}

// Rejects NaN in any float constant, and ±Inf in a layer's weight or bias; Inf elsewhere is a
// legitimate constant (attention masks, clip bounds). The first offender in graph order is named.
absl::Status CheckFinite(const std::vector<internal::NamedTensor>& constants, const std::vector<LayerSite>& layers,
                         int threads) {
  std::map<const onnx::TensorProto*, std::string> layer_tensors;
  for (const LayerSite& site : layers) {
    layer_tensors.emplace(site.weight, absl::StrCat("the weight of ", site.layer.op_type, " '", site.layer.name, "'"));
    if (site.bias) {
      layer_tensors.emplace(site.bias, absl::StrCat("the bias of ", site.layer.op_type, " '", site.layer.name, "'"));
    }
  }
  std::vector<const internal::NamedTensor*> named;
  std::vector<const onnx::TensorProto*> tensors;
  for (const internal::NamedTensor& c : constants) {
    if (!internal::IsDecodableFloat(c.tensor->data_type())) continue;
    named.push_back(&c);
    tensors.push_back(c.tensor);
  }
  const std::vector<internal::NonFiniteCount> counts = internal::CountNonFiniteAll(tensors, threads);
  for (size_t i = 0; i < counts.size(); ++i) {
    auto role = layer_tensors.find(tensors[i]);
    const bool in_layer = role != layer_tensors.end();
    if (counts[i].nan == 0 && (counts[i].inf == 0 || !in_layer)) continue;
    std::vector<std::string> what;
    if (counts[i].nan > 0) what.push_back(absl::StrCat(counts[i].nan, " NaN"));
    if (counts[i].inf > 0 && in_layer) what.push_back(absl::StrCat(counts[i].inf, " infinite"));
    return absl::InvalidArgumentError(absl::StrCat("tensor '", named[i]->name, "'",
                                                   in_layer ? absl::StrCat(" (", role->second, ")") : "",
                                                   " holds non-finite values: ", absl::StrJoin(what, ", ")));
  }
  return absl::OkStatus();
}

std::string ShapesText(const std::map<std::string, std::vector<int64_t>>& shapes) {
  std::vector<std::string> parts;
  for (const auto& [name, dims] : shapes) parts.push_back(absl::StrCat(name, "=", absl::StrJoin(dims, ",")));
  return absl::StrJoin(parts, " ");
}

// ResourceExhausted when the activations alive at once (as far as `nodes`' shapes are known) pass the
// budget, naming the peak and the node that writes the most.
absl::Status CheckActivationBudget(const std::vector<NodeActivations>& nodes,
                                   const std::map<std::string, std::vector<int64_t>>& input_shapes, int64_t budget) {
  if (budget <= 0) return absl::OkStatus();
  const NodeActivations* peak = nullptr;
  const NodeActivations* largest = nullptr;
  for (const NodeActivations& node : nodes) {
    if (!peak || node.live_bytes > peak->live_bytes) peak = &node;
    if (!largest || node.output_bytes > largest->output_bytes) largest = &node;
  }
  if (!peak || peak->live_bytes <= budget) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("at input shape ", ShapesText(input_shapes), " this model holds ", Gibibytes(peak->live_bytes),
                   " of activations at once (at ", peak->op_type, " '", peak->name, "'; the largest output is ",
                   largest->op_type, " '", largest->name, "''s ", Gibibytes(largest->output_bytes),
                   "), over this server's budget of ", Gibibytes(budget),
                   " per model (squeezed --max-activation-bytes): give a smaller --input-shape, or ask the operator to "
                   "raise the budget"));
}

// Whether the shape of `name`, as `site`'s graph sees it, is fully known in `shapes`.
bool ShapeKnown(const internal::ShapeTable& shapes, const LayerSite& site, const std::string& name) {
  const ValueShape* shape = shapes.Find(site.graph_path, name);
  return shape && shape->known;
}

// The values the main graph's nodes write: ONNX Runtime can expose these only, which subgraph layers may read too.
std::set<std::string> MainGraphValues(const onnx::GraphProto& graph) {
  std::set<std::string> values;
  for (const onnx::NodeProto& node : graph.node()) values.insert(node.output().begin(), node.output().end());
  return values;
}

// The main-graph values a layer reads or writes whose shapes inference left open, in the order the
// layers first use them, with the element type of each (its layer's weight's).
struct MissingShapes {
  std::vector<std::string> names;
  std::map<std::string, int32_t> elem_types;
};
MissingShapes FindMissingShapes(const internal::ShapeTable& shapes, const std::set<std::string>& main_values,
                                const std::vector<LayerSite>& sites) {
  MissingShapes missing;
  for (const LayerSite& site : sites) {
    for (const std::string* name : {&site.input_name, &site.output_name}) {
      if (ShapeKnown(shapes, site, *name) || !main_values.count(*name)) continue;
      if (missing.elem_types.emplace(*name, site.layer.weight_elem_type).second) missing.names.push_back(*name);
    }
  }
  return missing;
}

// The shapes the probe measures for `missing`, as seeds of their element types; the probe's error
// when it fails.
absl::StatusOr<std::map<std::string, ValueShape>> ProbeShapes(const ShapeProbe& probe, const onnx::ModelProto& proto,
                                                              const internal::ShapeMap& input_shapes,
                                                              const MissingShapes& missing) {
  absl::StatusOr<std::map<std::string, std::vector<int64_t>>> probed = probe(proto, input_shapes, missing.names);
  if (!probed.ok()) return probed.status();
  std::map<std::string, ValueShape> seeds;
  for (const auto& [name, dims] : *probed) {
    auto type = missing.elem_types.find(name);
    if (type != missing.elem_types.end()) seeds[name] = ValueShape{type->second, dims, true, ShapeSource::kOnnxRuntime};
  }
  return seeds;
}

// Inference again from the measured shapes (`seeds`), so that what depends on them (subgraphs) is
// known; when libonnx's inference rejects them, a warning, and the shapes are used as measured.
void InferFromProbedShapes(const internal::ValidationResult& validation, const internal::ShapeMap& input_shapes,
                           const std::map<std::string, ValueShape>& seeds, onnx::ModelProto* proto,
                           absl::StatusOr<internal::InferenceResult>* inference, std::vector<std::string>* warnings) {
  absl::StatusOr<internal::InferenceResult> again =
      internal::InferShapes(proto, validation.opaque_nodes, input_shapes, validation.newer_than_libonnx, seeds);
  if (again.ok()) {
    *inference = std::move(again);
  } else {
    warnings->push_back(absl::StrCat("ONNX Runtime's shapes do not fit libonnx's inference (", again.status().message(),
                                     "); they are used as measured"));
    for (const auto& [name, seed] : seeds) (*inference)->shapes.Set("", name, seed);
  }
}

// The warning for a layer whose input or output shape `shapes` does not know: which, and why
// neither libonnx nor the shape probe gave it.
std::string UnknownShapeWarning(const LayerSite& site, const internal::ShapeTable& shapes,
                                const std::set<std::string>& main_values, const AnalyzeOptions& options,
                                const std::string& probe_failure) {
  const ValueShape* in = shapes.Find(site.graph_path, site.input_name);
  const ValueShape* out = shapes.Find(site.graph_path, site.output_name);
  std::vector<std::string> open;
  if (!in || !in->known) open.push_back(absl::StrCat("input '", site.input_name, "'"));
  if (!out || !out->known) open.push_back(absl::StrCat("output '", site.output_name, "'"));
  const bool probeable = (ShapeKnown(shapes, site, site.input_name) || main_values.count(site.input_name)) &&
                         (ShapeKnown(shapes, site, site.output_name) || main_values.count(site.output_name));
  const std::string why = !probeable               ? "values inside subgraphs cannot be probed"
                          : !options.shape_probe   ? "no shape probe was given"
                          : !probe_failure.empty() ? "the shape probe failed"
                                                   : "the shape probe did not report them";
  return absl::StrCat(site.layer.op_type, " '", site.layer.name, "': the shape of its ", absl::StrJoin(open, " and "),
                      " is unknown (libonnx cannot infer it; ", why, "); its MACs are not counted");
}

// The index in `sites` of each main-graph layer, by its node's name.
std::map<std::string, int> MainGraphLayerOfNode(const std::vector<LayerSite>& sites) {
  std::map<std::string, int> layer_of_node;
  for (size_t i = 0; i < sites.size(); ++i) {
    if (sites[i].graph_path.empty()) layer_of_node[sites[i].layer.name] = static_cast<int>(i);
  }
  return layer_of_node;
}

// Shapes, bytes and MACs of every layer: the analysis' input shapes, libonnx's inference from
// them, and the shape probe (then inference again) for main-graph values inference left open.
// Records the inferred value_info into `proto`.
absl::Status AnalyseShapes(const internal::ValidationResult& validation, const AnalyzeOptions& options,
                           onnx::ModelProto* proto, std::vector<LayerSite>* sites, Analysis* analysis) {
  absl::StatusOr<internal::ResolvedInputs> inputs = internal::ResolveInputShapes(proto->graph(), options.input_shapes);
  if (!inputs.ok()) return inputs.status();
  analysis->input_shapes = inputs->shapes;
  analysis->defaulted_dims = inputs->defaulted;
  absl::StatusOr<internal::InferenceResult> inference =
      internal::InferShapes(proto, validation.opaque_nodes, inputs->shapes, validation.newer_than_libonnx);
  if (!inference.ok()) return inference.status();
  // What the shapes already say must fit before ONNX Runtime allocates anything.
  if (options.max_activation_bytes > 0) {
    if (absl::Status s = CheckActivationBudget(internal::ProfileActivations(proto->graph(), inference->shapes, {}),
                                               inputs->shapes, options.max_activation_bytes);
        !s.ok()) {
      return s;
    }
  }
  std::vector<std::string> inference_warnings = inference->warnings;
  google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> value_info;
  const bool value_info_inferred = inference->value_info_inferred;
  value_info.Swap(&inference->value_info);

  const std::set<std::string> main_values = MainGraphValues(proto->graph());
  const MissingShapes missing = FindMissingShapes(inference->shapes, main_values, *sites);
  std::string probe_failure;
  if (!missing.names.empty() && options.shape_probe) {
    absl::StatusOr<std::map<std::string, ValueShape>> seeds =
        ProbeShapes(options.shape_probe, *proto, inputs->shapes, missing);
    if (seeds.ok()) {
      InferFromProbedShapes(validation, inputs->shapes, *seeds, proto, &inference, &inference_warnings);
    } else if (absl::IsResourceExhausted(seeds.status())) {
      return seeds.status();  // past a budget: the model cannot be run here at these shapes
    } else {
      probe_failure = seeds.status().ToString();
      inference_warnings.push_back(absl::StrCat("the shape probe failed: ", probe_failure));
    }
  }
  analysis->warnings.insert(analysis->warnings.end(), inference_warnings.begin(), inference_warnings.end());
  const internal::ShapeTable& shapes = inference->shapes;
  for (LayerSite& site : *sites) {
    const ValueShape* in = shapes.Find(site.graph_path, site.input_name);
    const ValueShape* out = shapes.Find(site.graph_path, site.output_name);
    if (in && in->known && out && out->known) {
      if (absl::Status s = internal::SetLayerShapes(&site, *in, *out); !s.ok()) return s;
      continue;
    }
    analysis->warnings.push_back(UnknownShapeWarning(site, shapes, main_values, options, probe_failure));
  }
  analysis->nodes = internal::ProfileActivations(proto->graph(), shapes, MainGraphLayerOfNode(*sites));
  for (const NodeActivations& node : analysis->nodes) {
    analysis->peak_activation_bytes = std::max(analysis->peak_activation_bytes, node.live_bytes);
  }
  if (absl::Status s = CheckActivationBudget(analysis->nodes, inputs->shapes, options.max_activation_bytes); !s.ok()) {
    return s;
  }
  if (value_info_inferred) proto->mutable_graph()->mutable_value_info()->Swap(&value_info);
  return absl::OkStatus();
}

// The model parsed from `bytes` into `proto`: InvalidArgument for bytes that are no ModelProto or
// for an IR version past `max_ir_version` (when positive), ResourceExhausted past protobuf's limit.
absl::Status ParseModel(absl::string_view bytes, int64_t max_ir_version, onnx::ModelProto* proto) {
  if (absl::Status s = internal::CheckModelBytes(bytes); !s.ok()) return s;
  if (bytes.size() > static_cast<size_t>(INT_MAX)) {
    return absl::ResourceExhaustedError("the model is larger than protobuf's 2 GiB limit");
  }
  if (!proto->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError("not an ONNX model: protobuf cannot parse the bytes as a ModelProto");
  }
  if (max_ir_version > 0 && proto->ir_version() > max_ir_version) {
    return absl::InvalidArgumentError(absl::StrCat("the model's ir_version ", proto->ir_version(),
                                                   " is newer than ONNX Runtime here loads (at most ", max_ir_version,
                                                   "): export it with IR version ", max_ir_version, " or older"));
  }
  return absl::OkStatus();
}

// The model's IR version, opsets and producer, into `analysis`.
void RecordProvenance(const onnx::ModelProto& proto, Analysis* analysis) {
  analysis->ir_version = proto.ir_version();
  for (const onnx::OperatorSetIdProto& opset : proto.opset_import()) {
    analysis->opsets[internal::NormalizedDomain(opset.domain())] = opset.version();
  }
  analysis->producer = proto.producer_name();
  if (!proto.producer_version().empty()) {
    absl::StrAppend(&analysis->producer, analysis->producer.empty() ? "" : " ", proto.producer_version());
  }
}

// Analysis::index_input_bounds: the main graph's integer inputs whose every reader, subgraphs
// included, is a main-graph Gather taking them as indices (input 1) into a constant table.
std::map<std::string, int64_t> IndexInputBounds(const onnx::GraphProto& graph) {
  const internal::ConstantScope scope(graph, nullptr);
  std::map<std::string, int64_t> bounds;
  std::set<std::string> other_use;
  for (const onnx::ValueInfoProto& input : graph.input()) {
    const int type = input.type().tensor_type().elem_type();
    if (type != onnx::TensorProto::INT64 && type != onnx::TensorProto::INT32) continue;
    if (scope.Find(input.name()) != nullptr) continue;  // an initializer with a default
    bounds[input.name()] = 0;
  }
  for (const onnx::NodeProto& node : graph.node()) {
    for (int i = 0; i < node.input_size(); ++i) {
      auto bound = bounds.find(node.input(i));
      if (bound == bounds.end()) continue;
      const internal::ConstantRef* table =
          node.op_type() == "Gather" && internal::NormalizedDomain(node.domain()).empty() && i == 1
              ? scope.Find(node.input(0))
              : nullptr;
      if (table == nullptr) {
        other_use.insert(bound->first);
        continue;
      }
      int64_t axis = 0;
      for (const onnx::AttributeProto& a : node.attribute()) {
        if (a.name() == "axis") axis = a.i();
      }
      const int rank = table->tensor->dims_size();
      if (axis < 0) axis += rank;
      if (axis < 0 || axis >= rank || table->tensor->dims(static_cast<int>(axis)) < 1) {
        other_use.insert(bound->first);
        continue;
      }
      const int64_t rows = table->tensor->dims(static_cast<int>(axis));
      bound->second = bound->second == 0 ? rows : std::min(bound->second, rows);
    }
  }
  // A subgraph (If, Loop, Scan) reading one by its outer name uses it otherwise too.
  internal::ForEachGraph(graph, "", "", [&](const onnx::GraphProto& g, const std::string& path, const std::string&) {
    if (path.empty()) return;  // the main graph's readers are above
    for (const onnx::NodeProto& node : g.node()) {
      for (const std::string& in : node.input()) {
        if (bounds.count(in) > 0) other_use.insert(in);
      }
    }
  });
  for (auto it = bounds.begin(); it != bounds.end();) {
    it = it->second == 0 || other_use.count(it->first) > 0 ? bounds.erase(it) : std::next(it);
  }
  return bounds;
}

// Sorts the nodes of every graph topologically, with a warning per graph that was out of order;
// InvalidArgument for a cycle.
absl::Status SortNodes(onnx::ModelProto* proto, std::vector<std::string>* warnings) {
  absl::StatusOr<std::vector<std::string>> sorted = internal::SortNodesTopologically(proto);
  if (!sorted.ok()) return sorted.status();
  for (const std::string& path : *sorted) {
    warnings->push_back(absl::StrCat("the nodes of ", path.empty() ? "the main graph" : absl::StrCat("subgraph ", path),
                                     " were not in topological order; they were sorted, as ONNX Runtime sorts them"));
  }
  return absl::OkStatus();
}

// The first tensor, constants first, whose data does not fit its type and shape (CheckTensorData).
absl::Status CheckTensors(const std::vector<internal::NamedTensor>& constants,
                          const std::vector<internal::NamedTensor>& attribute_tensors) {
  for (const auto* list : {&constants, &attribute_tensors}) {
    for (const internal::NamedTensor& t : *list) {
      if (absl::Status s = internal::CheckTensorData(*t.tensor, t.name); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

// The layers' parameter, MAC and weight byte totals and the other constants' bytes, into
// `analysis`, whose layers the sites' are moved to.
void AddLayers(const std::vector<internal::NamedTensor>& constants, std::vector<LayerSite>* sites, Analysis* analysis) {
  std::set<const onnx::TensorProto*> weights;
  for (LayerSite& site : *sites) {
    analysis->total_params += site.layer.params;
    analysis->total_macs += site.layer.macs;
    if (weights.insert(site.weight).second) analysis->compressible_weight_bytes += internal::StoredBytes(*site.weight);
    analysis->layers.push_back(std::move(site.layer));
  }
  for (const internal::NamedTensor& c : constants) {
    if (!weights.count(c.tensor)) analysis->other_initializer_bytes += internal::StoredBytes(*c.tensor);
  }
}

absl::StatusOr<LoadedModel> Load(absl::string_view bytes, const AnalyzeOptions& options) {
  if (options.threads < 0) return absl::InvalidArgumentError("threads must be 0 (default) or more");
  LoadedModel loaded;
  onnx::ModelProto& proto = loaded.proto;
  if (absl::Status s = ParseModel(bytes, options.max_ir_version, &proto); !s.ok()) return s;
  Analysis& analysis = loaded.analysis;
  RecordProvenance(proto, &analysis);

  // Structure: unique names, sound tensors, libonnx's checks, the layers.
  internal::CanonicalizeNodeNames(&proto);
  if (absl::Status s = internal::CheckDeclaredDimensions(proto); !s.ok()) return s;
  if (absl::Status s = SortNodes(&proto, &analysis.warnings); !s.ok()) return s;
  const std::vector<internal::NamedTensor> constants = internal::AllConstants(proto);
  const std::vector<internal::NamedTensor> attribute_tensors = internal::AttributeTensors(proto);
  if (absl::Status s = CheckTensors(constants, attribute_tensors); !s.ok()) return s;
  absl::StatusOr<internal::ValidationResult> validation = internal::ValidateModel(&proto);
  if (!validation.ok()) return validation.status();
  analysis.fully_validated = !validation->newer_than_libonnx;
  analysis.warnings.insert(analysis.warnings.end(), validation->warnings.begin(), validation->warnings.end());
  if (proto.graph().sparse_initializer_size() > 0) {
    analysis.warnings.push_back("sparse initializers are not analysed");
  }
  absl::StatusOr<internal::GraphSurvey> survey = internal::SurveyGraph(proto);
  if (!survey.ok()) return survey.status();
  std::vector<LayerSite>& sites = survey->layers;
  analysis.op_histogram = survey->op_histogram;
  analysis.uncompressed_ops = survey->uncompressed_ops;
  analysis.warnings.insert(analysis.warnings.end(), survey->warnings.begin(), survey->warnings.end());
  if (absl::Status s = CheckFinite(constants, sites, options.threads); !s.ok()) return s;
  if (sites.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the model has no compressible layer (Conv, ConvTranspose, Gemm or MatMul with a constant ",
                     "float weight); its ops: ", Histogram(analysis.op_histogram)));
  }

  if (absl::Status s = AnalyseShapes(*validation, options, &proto, &sites, &analysis); !s.ok()) return s;
  internal::ComputeWeightStats(&sites, options.threads);
  AddLayers(constants, &sites, &analysis);
  analysis.index_input_bounds = IndexInputBounds(proto.graph());
  return loaded;
}

}  // namespace

absl::StatusOr<LoadedModel> LoadModel(absl::string_view bytes, const AnalyzeOptions& options) {
  // libonnx reports through exceptions; none may leave this library.
  try {
    return Load(bytes, options);
  } catch (const onnx::checker::ValidationError& e) {
    return absl::InvalidArgumentError(absl::StrCat("the model fails ONNX validation: ", internal::OneLine(e.what())));
  } catch (const onnx::InferenceError& e) {
    return absl::InvalidArgumentError(absl::StrCat("shape inference fails: ", internal::OneLine(e.what())));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory while loading the model");
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("libonnx rejects the model: ", internal::OneLine(e.what())));
  }
}

absl::StatusOr<std::pair<std::string, std::vector<int64_t>>> ParseInputShape(absl::string_view text) {
  const auto bad = [text](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("input shape '", text, "' ", why, "; the form is NAME=d0,d1,... (e.g. x=1,3,224,224)"));
  };
  const size_t eq = text.rfind('=');
  if (eq == absl::string_view::npos) return bad("has no '='");
  if (eq == 0) return bad("names no input");
  const absl::string_view dims_text = text.substr(eq + 1);
  if (dims_text.empty()) return bad("has no dimensions");
  std::vector<int64_t> dims;
  for (absl::string_view part : absl::StrSplit(dims_text, ',')) {
    int64_t d;
    if (!absl::SimpleAtoi(part, &d) || d < 1) return bad(absl::StrCat("has '", part, "', not a positive integer"));
    dims.push_back(d);
  }
  return std::make_pair(std::string(text.substr(0, eq)), std::move(dims));
}

std::string Gibibytes(int64_t bytes) {
  // Sizes past a pebibyte come from shapes no device holds (and saturate in the count): say so.
  if (bytes >= (int64_t{1} << 50)) return "over 1 PiB";
  return absl::StrFormat("%.2f GiB", static_cast<double>(bytes) / (1 << 30));
}

}  // namespace squeeze::model
