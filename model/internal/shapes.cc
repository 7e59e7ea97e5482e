#include "model/internal/shapes.h"

#include <onnx/defs/schema.h>
#include <onnx/defs/shape_inference.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/internal/graph.h"
#include "model/internal/tensor_data.h"
#include "model/internal/validation.h"

namespace squeeze::model::internal {
namespace {

// Tensors up to this many elements keep their data in inference copies: shape computations
// (Reshape targets, Resize scales, Slice bounds) read such small constants, never weights.
constexpr int64_t kInferenceDataLimit = 1024;

// Moves the data of large constant tensors out of a model and back when destroyed, so that copies
// made meanwhile for shape inference, which needs only their types and dims, stay small.
class TensorDataStash {
 public:
  explicit TensorDataStash(onnx::ModelProto* model) {
    ForEachGraph(*model->mutable_graph(), "", "",
                 [this](onnx::GraphProto& graph, const std::string&, const std::string&) {
                   for (onnx::TensorProto& t : *graph.mutable_initializer()) MoveOut(&t);
                   for (onnx::NodeProto& node : *graph.mutable_node()) {
                     if (!ConstantNodeValue(node)) continue;
                     for (onnx::AttributeProto& attr : *node.mutable_attribute()) {
                       if (attr.name() == "value" && attr.has_t()) MoveOut(attr.mutable_t());
                     }
                   }
                 });
  }
  ~TensorDataStash() {
    for (auto& [tensor, payload] : moved_) SwapData(tensor, &payload);
  }
  TensorDataStash(const TensorDataStash&) = delete;
  TensorDataStash& operator=(const TensorDataStash&) = delete;

 private:
  void MoveOut(onnx::TensorProto* tensor) {
    if (ElementCount(*tensor) <= kInferenceDataLimit) return;
    moved_.emplace_back(tensor, onnx::TensorProto());
    SwapData(tensor, &moved_.back().second);
  }

  // Swaps the value fields only; a raw_data field is touched only where present, so that a
  // tensor without one does not gain an empty one.
  static void SwapData(onnx::TensorProto* a, onnx::TensorProto* b) {
    if (a->has_raw_data() || b->has_raw_data()) a->mutable_raw_data()->swap(*b->mutable_raw_data());
    a->mutable_float_data()->Swap(b->mutable_float_data());
    a->mutable_int32_data()->Swap(b->mutable_int32_data());
    a->mutable_int64_data()->Swap(b->mutable_int64_data());
    a->mutable_double_data()->Swap(b->mutable_double_data());
    a->mutable_uint64_data()->Swap(b->mutable_uint64_data());
    a->mutable_string_data()->Swap(b->mutable_string_data());
  }

  std::vector<std::pair<onnx::TensorProto*, onnx::TensorProto>> moved_;
};

ValueShape FromValueInfo(const onnx::ValueInfoProto& info) {
  ValueShape shape;
  if (!info.type().has_tensor_type()) return shape;
  const onnx::TypeProto_Tensor& tensor = info.type().tensor_type();
  shape.elem_type = tensor.elem_type();
  if (!tensor.has_shape()) return shape;
  shape.known = true;
  for (const onnx::TensorShapeProto_Dimension& d : tensor.shape().dim()) {
    const bool fixed = d.has_dim_value() && d.dim_value() >= 0;
    shape.dims.push_back(fixed ? d.dim_value() : -1);
    shape.known = shape.known && fixed;
  }
  return shape;
}

std::string DeclaredString(const onnx::TypeProto_Tensor& tensor) {
  std::vector<std::string> dims;
  for (const onnx::TensorShapeProto_Dimension& d : tensor.shape().dim()) {
    if (d.has_dim_value() && d.dim_value() > 0) {
      dims.push_back(absl::StrCat(d.dim_value()));
    } else {
      dims.push_back(d.dim_param().empty() ? "?" : d.dim_param());
    }
  }
  return absl::StrCat("[", absl::StrJoin(dims, ","), "]");
}

// "d0,d1,d2" for rank 3: the form of an --input-shape value the user fills in.
std::string DimsToFill(size_t rank) {
  std::vector<std::string> dims;
  for (size_t i = 0; i < rank; ++i) dims.push_back(absl::StrCat("d", i));
  return absl::StrJoin(dims, ",");
}

std::string InputsString(const ShapeMap& inputs) {
  std::vector<std::string> parts;
  for (const auto& [name, dims] : inputs) parts.push_back(absl::StrCat(name, "=", DimsString(dims)));
  return absl::StrJoin(parts, " ");
}

void SetDims(onnx::TypeProto_Tensor* tensor, const Dims& dims) {
  onnx::TensorShapeProto* shape = tensor->mutable_shape();
  shape->clear_dim();
  for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
}

// The analysis' inputs at their concrete shapes, and values already measured (`seeds`) stated as
// value_info, for inference to start from.
void SetKnownShapes(onnx::ModelProto* model, const ShapeMap& inputs, const std::map<std::string, ValueShape>& seeds) {
  onnx::GraphProto* graph = model->mutable_graph();
  for (onnx::ValueInfoProto& input : *graph->mutable_input()) {
    auto it = inputs.find(input.name());
    if (it != inputs.end()) SetDims(input.mutable_type()->mutable_tensor_type(), it->second);
  }
  std::set<std::string> done;
  for (auto* list : {graph->mutable_output(), graph->mutable_value_info()}) {
    for (onnx::ValueInfoProto& info : *list) {
      auto it = seeds.find(info.name());
      if (it == seeds.end()) continue;
      onnx::TypeProto_Tensor* tensor = info.mutable_type()->mutable_tensor_type();
      if (tensor->elem_type() == 0) tensor->set_elem_type(it->second.elem_type);
      SetDims(tensor, it->second.dims);
      done.insert(info.name());
    }
  }
  for (const auto& [name, seed] : seeds) {
    if (done.count(name)) continue;
    onnx::ValueInfoProto* info = graph->add_value_info();
    info->set_name(name);
    info->mutable_type()->mutable_tensor_type()->set_elem_type(seed.elem_type);
    SetDims(info->mutable_type()->mutable_tensor_type(), seed.dims);
  }
}

// Runs libonnx's inference; an exception's message on failure, "" on success.
std::string RunInference(onnx::ModelProto* model, int error_mode) {
  try {
    onnx::ShapeInferenceOptions options(/*check_type_val=*/false, error_mode, /*data_prop_val=*/true);
    onnx::shape_inference::InferShapes(*model, onnx::OpSchemaRegistry::Instance(), options);
    return "";
  } catch (const std::exception& e) {
    std::string message = OneLine(e.what());
    return message.empty() ? "unknown error" : message;
  }
}

// Replaces every Conv and ConvTranspose of `graph` and its subgraphs by ConstantOfShape(Shape(W)):
// an output of the weight's rank, as a valid Conv's is. Appends (graph path, node, X, W) of each.
struct ConvSite {
  std::string node, x, w;
};
void StandInConvs(onnx::GraphProto* graph, std::vector<ConvSite>* sites) {
  google::protobuf::RepeatedPtrField<onnx::NodeProto> nodes;
  for (onnx::NodeProto& n : *graph->mutable_node()) {
    for (onnx::AttributeProto& a : *n.mutable_attribute()) {
      if (a.has_g()) StandInConvs(a.mutable_g(), sites);
      for (onnx::GraphProto& g : *a.mutable_graphs()) StandInConvs(&g, sites);
    }
    const bool conv = (n.op_type() == "Conv" || n.op_type() == "ConvTranspose") &&
                      (n.domain().empty() || n.domain() == "ai.onnx") && n.input_size() >= 2 && n.output_size() >= 1;
    if (!conv) {
      *nodes.Add() = std::move(n);
      continue;
    }
    sites->push_back({n.name().empty() ? n.output(0) : n.name(), n.input(0), n.input(1)});
    const std::string shape = absl::StrCat("__squeeze_weight_shape_", sites->size());
    onnx::NodeProto* of_w = nodes.Add();
    of_w->set_op_type("Shape");
    of_w->add_input(n.input(1));
    of_w->add_output(shape);
    onnx::NodeProto* fill = nodes.Add();
    fill->set_op_type("ConstantOfShape");
    fill->add_input(shape);
    fill->add_output(n.output(0));
  }
  graph->mutable_node()->Swap(&nodes);
}

// The ranks libonnx knows of `graph`'s values (inputs, initializers, value_info, outputs), over
// its subgraphs too (a name's first rank wins).
void CollectRanks(const onnx::GraphProto& graph, std::map<std::string, int>* ranks) {
  for (const onnx::TensorProto& t : graph.initializer()) ranks->emplace(t.name(), t.dims_size());
  for (const auto* list : {&graph.input(), &graph.value_info(), &graph.output()}) {
    for (const onnx::ValueInfoProto& info : *list) {
      if (info.type().has_tensor_type() && info.type().tensor_type().has_shape()) {
        ranks->emplace(info.name(), info.type().tensor_type().shape().dim_size());
      }
    }
  }
  for (const onnx::NodeProto& n : graph.node()) {
    if (n.op_type() == "Constant") {
      for (const onnx::AttributeProto& a : n.attribute()) {
        if (a.name() == "value" && a.has_t() && n.output_size() > 0) ranks->emplace(n.output(0), a.t().dims_size());
      }
    }
    for (const onnx::AttributeProto& a : n.attribute()) {
      if (a.has_g()) CollectRanks(a.g(), ranks);
      for (const onnx::GraphProto& g : a.graphs()) CollectRanks(g, ranks);
    }
  }
}

// InvalidArgument naming the node when a Conv's or ConvTranspose's input does not have its
// weight's rank, or has fewer than 3 dims, as one libonnx pass over a copy whose Convs stand in
// for themselves (StandInConvs) shows. Ranks libonnx cannot tell are not checked.
absl::Status CheckConvRanks(onnx::ModelProto copy, const ShapeMap& inputs,
                            const std::map<std::string, ValueShape>& seeds) {
  std::vector<ConvSite> sites;
  StandInConvs(copy.mutable_graph(), &sites);
  if (sites.empty()) return absl::OkStatus();
  SetKnownShapes(&copy, inputs, seeds);
  (void)RunInference(&copy, /*error_mode=*/0);  // what fails here, the real pass reports
  std::map<std::string, int> ranks;
  CollectRanks(copy.graph(), &ranks);
  for (const ConvSite& site : sites) {
    auto x = ranks.find(site.x), w = ranks.find(site.w);
    if (x == ranks.end() || w == ranks.end()) continue;
    if (x->second != w->second || x->second < 3) {
      return absl::InvalidArgumentError(absl::StrCat(
          "node '", site.node, "': its input '", site.x, "' has rank ", x->second, " and its weight '", site.w,
          "' rank ", w->second, "; a Conv's input and weight have the same rank, at least 3 (N, C, spatial...)"));
    }
  }
  return absl::OkStatus();
}

// The graph's inputs that are not initializers; InvalidArgument when `given` names any other value.
absl::StatusOr<std::vector<const onnx::ValueInfoProto*>> NonConstantInputs(const onnx::GraphProto& graph,
                                                                           const ShapeMap& given) {
  std::set<std::string> initializers;
  for (const onnx::TensorProto& t : graph.initializer()) initializers.insert(t.name());
  std::vector<const onnx::ValueInfoProto*> inputs;
  std::vector<std::string> names;
  for (const onnx::ValueInfoProto& input : graph.input()) {
    if (initializers.count(input.name())) continue;
    inputs.push_back(&input);
    names.push_back(input.name());
  }
  for (const auto& [name, dims] : given) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--input-shape names '", name, "', but the model's inputs are: ", absl::StrJoin(names, ", ")));
    }
  }
  return inputs;
}

// InvalidArgument unless the shape given for input `name` has dims from 1 to kMaxDimension and,
// where the input declares a shape (`tensor`), its rank and its fixed dims.
absl::Status CheckGivenShape(const std::string& name, const onnx::TypeProto_Tensor& tensor, const Dims& dims) {
  for (int64_t d : dims) {
    if (d <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("the shape given for input '", name, "', ", DimsString(dims), ", has a dimension below 1"));
    }
    if (d > kMaxDimension) {
      return absl::InvalidArgumentError(absl::StrCat("the shape given for input '", name, "', ", DimsString(dims),
                                                     ", has a dimension of ", d,
                                                     ", larger than any tensor a "
                                                     "device holds (at most ",
                                                     kMaxDimension, ")"));
    }
  }
  if (!tensor.has_shape()) return absl::OkStatus();
  const int rank = tensor.shape().dim_size();
  if (static_cast<int>(dims.size()) != rank) {
    return absl::InvalidArgumentError(absl::StrCat("input '", name, "' has rank ", rank, " (", DeclaredString(tensor),
                                                   "), but the shape given, ", DimsString(dims), ", has rank ",
                                                   dims.size()));
  }
  for (int i = 0; i < rank; ++i) {
    const onnx::TensorShapeProto_Dimension& d = tensor.shape().dim(i);
    if (d.has_dim_value() && d.dim_value() > 0 && d.dim_value() != dims[i]) {
      return absl::InvalidArgumentError(absl::StrCat("input '", name, "' dimension ", i, " is fixed at ", d.dim_value(),
                                                     " (", DeclaredString(tensor), "), but the shape given, ",
                                                     DimsString(dims), ", has ", dims[i]));
    }
  }
  return absl::OkStatus();
}

// Input `name`'s declared shape (`tensor`), a symbolic dim 0 defaulting to 1 (batch), into
// `resolved`; InvalidArgument when it declares no shape or another dim is symbolic.
absl::Status ResolveDeclaredShape(const std::string& name, const onnx::TypeProto_Tensor& tensor,
                                  ResolvedInputs* resolved) {
  if (!tensor.has_shape()) {
    return absl::InvalidArgumentError(
        absl::StrCat("input '", name, "' has no declared shape; give it with ", "--input-shape ", name, "=d0,d1,..."));
  }
  Dims dims;
  std::vector<std::string> defaulted;
  std::vector<std::string> unknown;
  for (int i = 0; i < tensor.shape().dim_size(); ++i) {
    const onnx::TensorShapeProto_Dimension& d = tensor.shape().dim(i);
    const std::string label = d.dim_param().empty() ? "" : absl::StrCat(" '", d.dim_param(), "'");
    if (d.has_dim_value() && d.dim_value() > 0) {
      dims.push_back(d.dim_value());
    } else if (i == 0) {
      dims.push_back(1);
      defaulted.push_back(absl::StrCat(name, "[0] = 1 (batch", label, ")"));
    } else {
      dims.push_back(-1);
      unknown.push_back(absl::StrCat(i, label));
    }
  }
  if (!unknown.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input '", name, "' ", DeclaredString(tensor), " has symbolic dimensions that cannot be guessed: ",
        absl::StrJoin(unknown, ", "), "; give its shape with --input-shape ", name, "=", DimsToFill(dims.size())));
  }
  resolved->shapes[name] = dims;
  resolved->defaulted.insert(resolved->defaulted.end(), defaulted.begin(), defaulted.end());
  return absl::OkStatus();
}

// What the model states itself (initializers; inputs, outputs and value_info with concrete dims),
// the main graph's inputs at the analysis' shapes (`inputs`), into `table`.
void AddDeclaredShapes(const onnx::GraphProto& main_graph, const ShapeMap& inputs, ShapeTable* table) {
  ForEachGraph(
      main_graph, "", "", [&](const onnx::GraphProto& graph, const std::string& path, const std::string& parent) {
        table->AddGraph(path, parent);
        for (const onnx::TensorProto& t : graph.initializer()) {
          ValueShape shape{t.data_type(), Dims(t.dims().begin(), t.dims().end()), true, ShapeSource::kDeclared};
          table->Set(path, t.name(), shape);
        }
        for (const auto* list : {&graph.input(), &graph.output(), &graph.value_info()}) {
          for (const onnx::ValueInfoProto& info : *list) {
            ValueShape shape = FromValueInfo(info);
            auto given = inputs.find(info.name());
            if (path.empty() && given != inputs.end()) {
              shape.dims = given->second;
              shape.known = true;
            }
            if (shape.known) shape.source = ShapeSource::kDeclared;
            table->Set(path, info.name(), shape);
          }
        }
      });
}

// The shapes libonnx's inference left in `main_graph` and its subgraphs (inputs, outputs and
// value_info), into `table`.
void AddInferredShapes(const onnx::GraphProto& main_graph, ShapeTable* table) {
  ForEachGraph(main_graph, "", "",
               [&](const onnx::GraphProto& graph, const std::string& path, const std::string& parent) {
                 table->AddGraph(path, parent);
                 for (const auto* list : {&graph.input(), &graph.output(), &graph.value_info()}) {
                   for (const onnx::ValueInfoProto& info : *list) {
                     ValueShape shape = FromValueInfo(info);
                     if (shape.known) shape.source = ShapeSource::kInferred;
                     table->Set(path, info.name(), shape);
                   }
                 }
               });
}

// A copy of `model` made compatible with libonnx (MakeLibOnnxCompatible), for an inference pass.
onnx::ModelProto LibOnnxCopy(const onnx::ModelProto& model, const std::vector<int>& opaque_nodes) {
  onnx::ModelProto copy = model;
  MakeLibOnnxCompatible(&copy, opaque_nodes);
  return copy;
}

// LibOnnxCopy with the analysis' inputs at their concrete shapes and `seeds` stated (SetKnownShapes).
onnx::ModelProto ConcreteCopy(const onnx::ModelProto& model, const std::vector<int>& opaque_nodes,
                              const ShapeMap& inputs, const std::map<std::string, ValueShape>& seeds) {
  onnx::ModelProto copy = LibOnnxCopy(model, opaque_nodes);
  SetKnownShapes(&copy, inputs, seeds);
  return copy;
}

// libonnx's inference on `symbolic` (a LibOnnxCopy with the declared inputs), whose value_info it
// moves into `result`; when libonnx fails, a warning there instead.
void InferSymbolicValueInfo(onnx::ModelProto symbolic, InferenceResult* result) {
  const std::string error = RunInference(&symbolic, /*error_mode=*/0);
  if (error.empty()) {
    result->value_info.Swap(symbolic.mutable_graph()->mutable_value_info());
    result->value_info_inferred = true;
  } else {
    result->warnings.push_back(absl::StrCat("no inferred shapes recorded in the model: libonnx: ", error));
  }
}

}  // namespace

std::string DimsString(const Dims& dims) { return absl::StrCat("[", absl::StrJoin(dims, ","), "]"); }

absl::StatusOr<ResolvedInputs> ResolveInputShapes(const onnx::GraphProto& graph, const ShapeMap& given) {
  absl::StatusOr<std::vector<const onnx::ValueInfoProto*>> inputs = NonConstantInputs(graph, given);
  if (!inputs.ok()) return inputs.status();
  ResolvedInputs resolved;
  for (const onnx::ValueInfoProto* input : *inputs) {
    const std::string& name = input->name();
    if (!input->type().has_tensor_type()) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", name, "' is not a tensor; Squeeze analyses models with tensor inputs"));
    }
    const onnx::TypeProto_Tensor& tensor = input->type().tensor_type();
    auto it = given.find(name);
    if (it != given.end()) {
      if (absl::Status s = CheckGivenShape(name, tensor, it->second); !s.ok()) return s;
      resolved.shapes[name] = it->second;
      continue;
    }
    if (absl::Status s = ResolveDeclaredShape(name, tensor, &resolved); !s.ok()) return s;
  }
  return resolved;
}

void ShapeTable::AddGraph(const std::string& path, const std::string& parent_path) {
  graphs_[path].parent = parent_path;
}

void ShapeTable::Set(const std::string& path, const std::string& name, const ValueShape& shape) {
  ValueShape& slot = graphs_[path].values[name];
  if (slot.known) return;
  if (shape.known) {
    slot = shape;
  } else if (slot.elem_type == 0) {
    slot.elem_type = shape.elem_type;
  }
}

const ValueShape* ShapeTable::Find(const std::string& path, const std::string& name) const {
  // The innermost known shape wins; an unknown entry is returned only when no graph knows more.
  const ValueShape* unknown = nullptr;
  for (std::string p = path;;) {
    auto graph = graphs_.find(p);
    if (graph == graphs_.end()) break;
    auto value = graph->second.values.find(name);
    if (value != graph->second.values.end()) {
      if (value->second.known) return &value->second;
      if (!unknown) unknown = &value->second;
    }
    if (p.empty()) break;
    p = graph->second.parent;
  }
  return unknown;
}

absl::StatusOr<InferenceResult> InferShapes(onnx::ModelProto* model, const std::vector<int>& opaque_nodes,
                                            const ShapeMap& inputs, bool newer_than_libonnx,
                                            const std::map<std::string, ValueShape>& seeds) {
  InferenceResult result;
  ShapeTable& table = result.shapes;
  table.AddGraph("", "");
  for (const auto& [name, seed] : seeds) table.Set("", name, seed);
  AddDeclaredShapes(model->graph(), inputs, &table);

  TensorDataStash stash(model);
  // With the declared inputs, for the canonical model's value_info: symbolic dims stay symbolic,
  // so the record holds whatever input shapes the model later runs with. Not for a model newer
  // than libonnx, whose outdated definitions could record shapes a runtime would contradict.
  // libonnx 1.12's Conv shape inference reads past the input's dims when the input's rank is not
  // the weight's (a crafted upload crashed the analysis): the ranks are checked before it runs.
  if (absl::Status s = CheckConvRanks(LibOnnxCopy(*model, opaque_nodes), inputs, seeds); !s.ok()) return s;
  if (!newer_than_libonnx && seeds.empty()) InferSymbolicValueInfo(LibOnnxCopy(*model, opaque_nodes), &result);

  // With the concrete inputs, strictly first: a node-level error means the model, or the input
  // shapes given, do not add up — unless libonnx's definitions are older than the model's.
  onnx::ModelProto concrete = ConcreteCopy(*model, opaque_nodes, inputs, seeds);
  std::string error = RunInference(&concrete, /*error_mode=*/1);
  if (!error.empty()) {
    if (!newer_than_libonnx) {
      return absl::InvalidArgumentError(
          absl::StrCat("shape inference fails with inputs ", InputsString(inputs), ": ", error));
    }
    result.warnings.push_back(
        absl::StrCat("libonnx shape inference, whose definitions are older than the ", "model's, reports: ", error));
    concrete = ConcreteCopy(*model, opaque_nodes, inputs, seeds);
    error = RunInference(&concrete, /*error_mode=*/0);
    if (!error.empty()) {
      result.warnings.push_back(absl::StrCat("libonnx shape inference gave up: ", error));
      return result;
    }
  }
  AddInferredShapes(concrete.graph(), &table);
  return result;
}

}  // namespace squeeze::model::internal
