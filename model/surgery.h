// Graph surgery for measuring and emulating compression in ONNX Runtime, on a loaded model's
// proto: layers' weights made graph inputs (so one session runs any number of weight
// perturbations), Add(x, delta) before layers' activation inputs (activation perturbations, the
// same way), intermediate values exposed as outputs, layers' weights replaced by compressed values,
// and activations fake-quantized in the graph (the emulation of a compressed model).
//
// Layers are named by their index in the Analysis the model was loaded with
// (LoadedModel::analysis) and found by their qualified node names, so the proto must be that
// analysis' canonical one (LoadedModel::proto) or a copy edited only by these functions. Weights
// are float values in the tensor's storage order (FromChannelMajor of a ChannelMatrix).
//
// No exception leaves these functions. They share no state: thread safe for distinct models.
#ifndef SQUEEZE_MODEL_SURGERY_H_
#define SQUEEZE_MODEL_SURGERY_H_

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/analysis.h"

namespace squeeze::model {

// A layer's weight as an input of the main graph.
struct WeightInput {
  size_t layer = 0;                              // index into Analysis::layers
  absl::Status status;                           // why the weight stayed a constant; the fields below are empty then
  std::string name;                              // the graph input
  int32_t elem_type = onnx::TensorProto::FLOAT;  // FLOAT or FLOAT16: as the weight was stored
  std::vector<int64_t> dims;
  std::vector<float> values;  // the original weight, decoded to float, in storage order
};

// Makes each of `layers`' weights an input of the main graph of its own (a layer inside an If or
// Loop reads it from the outer scope), and removes the constants no node reads any more. One entry
// per requested layer, in order; a weight stored as neither fp32 nor fp16 stays a constant with
// status Unimplemented. InvalidArgument for an index past the analysis' layers; FailedPrecondition
// when the model does not hold a layer the analysis names (the model is then unchanged).
absl::StatusOr<std::vector<WeightInput>> WeightsToInputs(onnx::ModelProto* model, const Analysis& analysis,
                                                         absl::Span<const size_t> layers);

// A perturbation point on a main-graph value: everything that read the value (nodes, subgraphs,
// graph outputs) reads Add(value, delta) instead, as everything reads the dequantized value an
// export's QuantizeLinear/DequantizeLinear pair puts in its place.
struct ValueDelta {
  absl::Status status;  // why no Add was inserted; name is empty then
  std::string value;    // the value perturbed (its unperturbed form is read from the original model)
  std::string name;     // the delta graph input: any shape that broadcasts to the value's
  int32_t elem_type = onnx::TensorProto::FLOAT;  // the delta's, as asked for (the value's)
};

// Inserts Add(v, delta_v) for each of `values` (name, element type), with delta_v a new input of
// the main graph declared without a shape, so any delta that broadcasts to v may be fed: a
// one-element zero leaves v unperturbed at the cost of one cheap Add. A value a node of the main
// graph computes is renamed at that node and the Add writes it under its own name; a graph input
// is read through the Add by every node of the main graph (a subgraph's reads of it are left
// unperturbed). Per value, status FailedPrecondition when the main graph neither computes it nor
// takes it as an input (a constant, or a value inside a subgraph). The same value twice is
// perturbed once: both entries name the one delta.
std::vector<ValueDelta> InsertValueDeltas(onnx::ModelProto* model,
                                          const std::vector<std::pair<std::string, int32_t>>& values);

// Makes the named values of the main graph extra graph outputs (with their element type where the
// graph's value_info states it), so a run can fetch them. Values that are outputs already stay as
// they are. InvalidArgument naming the value when no node of the main graph computes it (graph
// inputs included: read those from the feeds).
absl::Status ExposeValues(onnx::ModelProto* model, const std::vector<std::string>& names);

// The values fidelity is measured on: the main graph's outputs, except that an output a Softmax
// or LogSoftmax computes is replaced by that node's input (the logits). A softmax saturates: a
// small change of the logits moves confident probabilities by almost nothing and a flipped
// decision by almost everything, so errors measured after it neither add up over layers nor
// scale with the perturbation. Values that are not graph outputs need ExposeValues to be fetched.
std::vector<std::string> FidelityOutputs(const onnx::ModelProto& model);

// Replaces layers' weights by `values` (layer index -> values in storage order): stored as fp16
// where the weight was fp16, as fp32 otherwise. A weight that another node also reads is copied
// for the layer first, so only the named layers change. InvalidArgument for an index past the
// analysis' layers or values that do not fill the weight; FailedPrecondition as WeightsToInputs.
// On error the model may be partly changed.
absl::Status ReplaceWeights(onnx::ModelProto* model, const Analysis& analysis,
                            const std::map<size_t, std::vector<float>>& values);

// How a layer's activation input is fake-quantized.
struct ActivationFakeQuant {
  int bits = 32;  // 8: asymmetric uint8; 16: fp16 rounding; 32: unchanged
  // 8 bits: x -> (clamp(round(x / scale) + zero_point, 0, 255) - zero_point) · scale, as ONNX's
  // QuantizeLinear and DequantizeLinear compute it (in float, round half to even).
  float scale = 1;
  uint8_t zero_point = 0;
};

// Fake-quantizes layers' activation inputs in the graph: QuantizeLinear/DequantizeLinear at 8
// bits (below opset 10, the same arithmetic in Div/Add/Floor/Max/Min/Sub/Mul, where exact ties
// round up instead of to even), Cast to fp16 and back at 16 (nothing for an fp16 activation), in
// the layer's own graph (subgraphs included). InvalidArgument for an index past the analysis'
// layers, bits other than 8, 16, 32, or a scale that is not positive and finite;
// FailedPrecondition as WeightsToInputs, and for 8 bits below opset 8 (no broadcasting Min/Max).
// On error the model may be partly changed.
absl::Status InsertActivationFakeQuant(onnx::ModelProto* model, const Analysis& analysis,
                                       const std::map<size_t, ActivationFakeQuant>& layers);

}  // namespace squeeze::model

#endif  // SQUEEZE_MODEL_SURGERY_H_
