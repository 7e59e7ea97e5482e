// The one ONNX graph editor: every change the exporter, the sensitivity probes (model/surgery.h)
// and their tests make to a model goes through it, so a QuantizeLinear the search measures and
// one the exported file holds are built by the same code.
//
// A GraphEditor indexes a model once (its graphs by path, its nodes by qualified name, every name
// in use) and then edits it in place: fresh names, new constants, nodes inserted before or after
// a node or at a graph's front, constants a rewrite left unread. Nodes are inserted last
// (Finish), so pointers to nodes stay valid while a phase works; a phase that removes nodes must
// use its own editor and finish before the next one indexes the model.
#ifndef SQUEEZE_MODEL_INTERNAL_GRAPH_EDITOR_H_
#define SQUEEZE_MODEL_INTERNAL_GRAPH_EDITOR_H_

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "model/analysis.h"
#include "model/weight_math.h"

namespace squeeze::model::internal {

// Where a layer's node sits: its graph and the graphs enclosing it.
struct Site {
  onnx::NodeProto* node = nullptr;
  std::vector<onnx::GraphProto*> scopes;  // the node's graph first, the main graph last
  onnx::GraphProto* graph() const { return scopes.front(); }
};

class GraphEditor {
 public:
  explicit GraphEditor(onnx::ModelProto* model);
  GraphEditor(const GraphEditor&) = delete;
  GraphEditor& operator=(const GraphEditor&) = delete;

  onnx::ModelProto& model() { return *model_; }
  onnx::GraphProto* main_graph() { return model_->mutable_graph(); }

  // The site of `layer`'s node, found by its qualified name. FailedPrecondition when the model
  // holds no such node (it is not the analysed model).
  absl::StatusOr<Site> Find(const Layer& layer) const;
  // The sites of `layers` (indices into analysis.layers); InvalidArgument for an index past them.
  absl::StatusOr<std::vector<Site>> FindAll(const Analysis& analysis, const std::vector<size_t>& layers) const;

  // `base`, or `base_<n>` when that is taken; taken from then on.
  std::string Fresh(const std::string& base);

  // Adds `tensor` as an initializer of `graph`; returns its name.
  std::string AddInitializer(onnx::GraphProto* graph, onnx::TensorProto tensor);

  // Nodes inserted at Finish: right before `node`, right after it (in call order), or at the
  // front of `graph`.
  void InsertBefore(onnx::GraphProto* graph, const onnx::NodeProto* node, onnx::NodeProto inserted);
  void InsertAfter(onnx::GraphProto* graph, const onnx::NodeProto* node, onnx::NodeProto inserted);
  void InsertAtFront(onnx::GraphProto* graph, onnx::NodeProto inserted);

  // A constant a rewrite may have left unread: removed at Finish if nothing reads it then.
  void Orphan(const std::string& name) { orphaned_.insert(name); }

  // Inserts the pending nodes and removes the orphaned constants nothing reads.
  void Finish();

 private:
  onnx::ModelProto* model_;
  std::map<std::string, std::pair<onnx::GraphProto*, std::string>> graphs_;  // path -> graph, parent path
  std::map<std::string, std::pair<onnx::NodeProto*, std::string>> nodes_;    // qualified name -> node, path
  std::set<std::string> names_;
  std::map<onnx::GraphProto*, std::map<const onnx::NodeProto*, std::vector<onnx::NodeProto>>> before_, after_;
  std::map<onnx::GraphProto*, std::vector<onnx::NodeProto>> front_;
  std::set<std::string> orphaned_;
};

// The model's ai.onnx opset (0 when it imports none).
int64_t OpsetOf(const onnx::ModelProto& model);

// Imports, at version 1, every domain a node of the model uses and its opset_import lacks (the
// com.microsoft operators an edit added).
void ImportDomainsUsed(onnx::ModelProto* model);

// A node of the default domain.
onnx::NodeProto MakeNode(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                         std::vector<std::string> outputs);
// Sets (or adds) the INT attribute `name` of `node`.
void SetIntAttribute(onnx::NodeProto* node, const std::string& name, int64_t value);
// Cast `input` to `to` (a TensorProto data type) as `output`.
onnx::NodeProto CastNode(const std::string& name, const std::string& input, const std::string& output, int32_t to);
// A Constant node whose `value` is `value`.
onnx::NodeProto ConstantNode(const std::string& name, const std::string& output, onnx::TensorProto value);

// A graph input or value description: a tensor of `elem_type` with fixed `dims`.
onnx::ValueInfoProto TensorValueInfo(const std::string& name, int32_t elem_type, const std::vector<int64_t>& dims);

// A tensor of `values` stored as fp16 (elem_type FLOAT16) or fp32 (any other), in raw_data.
onnx::TensorProto FloatTensorOf(const std::string& name, int32_t elem_type, const std::vector<int64_t>& dims,
                                const std::vector<float>& values);
// Rewrites `tensor`'s data (any encoding it had) as FloatTensorOf stores it, keeping its name and dims.
void WriteFloats(onnx::TensorProto* tensor, int32_t elem_type, const std::vector<float>& values);

// A tensor of `values` in raw_data, which must be of `elem_type`'s C type (int8_t for INT8, ...).
template <typename T>
onnx::TensorProto RawTensorOf(const std::string& name, int32_t elem_type, const std::vector<int64_t>& dims,
                              const std::vector<T>& values) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(elem_type);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)));
  return t;
}

// The constant `name` as `site`'s node sees it, mutable: an initializer or a Constant node's value
// of its graph or an enclosing one; nullptr when a graph in between computes it or takes it as an
// input, or nothing names it.
onnx::TensorProto* MutableConstant(const Site& site, const std::string& name);

// Where a QDQ pair's scale and zero point live: initializers of the pair's graph (the exported
// file), or Constant nodes beside the pair (the sensitivity probes, whose models may be of an IR
// version that lists initializers among the graph's inputs).
enum class QdqParams { kInitializers, kConstantNodes };

// A QuantizeLinear → DequantizeLinear pair on `input` with the per-tensor parameters `q`
// (ActivationQuantizerOf; a uint8 or int8 zero point as its scheme says): the nodes to insert, in order (Constant nodes
// first when asked for), all named from `base`. Sets `*dequantized` to the pair's output. What the exported file holds
// and what the sensitivities measure are built here alike.
std::vector<onnx::NodeProto> QdqNodes(GraphEditor& editor, onnx::GraphProto* graph, const std::string& input,
                                      const std::string& base, const ActivationQuantizer& q, QdqParams params,
                                      std::string* dequantized);

}  // namespace squeeze::model::internal

#endif  // SQUEEZE_MODEL_INTERNAL_GRAPH_EDITOR_H_
