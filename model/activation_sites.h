// Where an integer-activation (a8) layer's activations are quantized in an export, and who reads
// them: what the exporter inserts and what the latency predictor prices, from one place.
//
// A layer's input is quantized where it is (its first input). Its output is quantized after the
// BatchNormalization the exporter folds into its weights (model/batch_norm_folding.h), and after a
// Relu that is then the output's only reader: ONNX Runtime folds such a Relu into the QuantizeLinear (a
// uint8 zero point of 0 already clamps at zero) and the Q into the layer's integer kernel, so two
// integer layers in a row pass uint8 between them and run no QuantizeLinear or DequantizeLinear.
// Each quantized tensor gets one QuantizeLinear/DequantizeLinear pair whatever reads it; a
// standalone QuantizeLinear runs where a float value enters an integer layer, a standalone
// DequantizeLinear where an integer layer's output reaches anything float.
//
// Layouts: ONNX Runtime runs integer convs channels-last (NHWC) and float ones channels-first, and
// moves the transposes between them through the ops that work in either layout (activations,
// elementwise arithmetic, pooling, concatenation), so they cancel between two integer layers and
// run once where an integer layer meets a float one (or a graph input or output, or an op that
// reshapes). Each site says which layer's layout it carries and which layers it reaches, and
// whether a max pool writes it (which then runs on uint8 where an integer layer reads it).
#ifndef SQUEEZE_MODEL_ACTIVATION_SITES_H_
#define SQUEEZE_MODEL_ACTIVATION_SITES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "model/loader.h"

namespace squeeze::model {

// Whether layer `i` can run with uint8 activations in an export: a main-graph layer with float
// weights (activations inside subgraphs and float16 activations stay float).
bool ActivationsQuantizable(const Analysis& analysis, size_t i);

// The tensors a8 layers would quantize, by name: layer i's are input[i] and output[i] (empty for a
// layer that cannot quantize its activations).
struct ActivationTensors {
  std::vector<std::string> input, output;
};
ActivationTensors ActivationTensorsOf(const LoadedModel& model);

// One tensor some a8 layer may quantize, and what produces and reads it.
struct ActivationSite {
  std::string tensor;
  std::string writer;          // the node that writes it ("" for a graph input)
  int producer = -1;           // the layer whose quantized output it is; -1 when none is
  std::vector<int> readers;    // the layers that read it as their quantized input
  bool float_readers = false;  // anything else reads it (other ops, graph outputs, other inputs)
  int64_t elements = 0;        // values in it; 0 when its shape is unknown
  // The nearest layer upstream through layout-neutral ops (-1: a graph input or a reshaping op).
  int layout_producer = -1;
  std::vector<int> layout_readers;   // the layers it reaches downstream through layout-neutral ops
  bool float_layout_reader = false;  // it also reaches a graph output or a reshaping op
  // A MaxPool that writes the tensor and is the only reader of its input: ONNX Runtime moves the
  // QuantizeLinear an integer reader needs above it, so it runs on uint8, in the float layout
  // unless its layout producer runs integer. Empty when the tensor is written by anything else.
  std::string pool;
  int64_t pool_reads = 0;  // values it reads: output elements x kernel area (0: shape unknown)
};
std::vector<ActivationSite> ActivationSites(const LoadedModel& model);

}  // namespace squeeze::model

#endif  // SQUEEZE_MODEL_ACTIVATION_SITES_H_
