// Which activation tensors an export quantizes, and at how many bits (DESIGN.md §6).
//
// Every flavour quantizes the input and output of each layer whose plan takes integer activations
// (model::QuantizesActivations; where, activation_sites.h). A flavour that quantizes the whole
// graph (model::QuantizesWholeGraph: the QNN HTP, which runs only quantized node units and hands
// anything float to another processor) also quantizes the float tensors joined to those through
// the ops the HTP runs quantized — elementwise arithmetic, activations, batch normalization,
// pooling, concatenation, resizing and the reshaping ops — so no float op sits between two
// quantized layers. Joined means
// read or written by the same such op; a layer ends a region (its input and output belong to it
// alone), so a region is the ops between neighbouring layers. A region takes the widest bits of
// the layers around it (uint16 where one of them is a16). The float constants those ops read as
// data (an Add's bias, a Mul's scale) are quantized with them, in uint8.
//
// What is not joined stays float: a float (fp16) layer's output, the tensors inside a layer's
// folded chain (its BatchNormalization and the Relu ONNX Runtime fuses), anything an op the list
// does not name reads or writes only. Where a float layer meets a region, the region's op or the
// layer reads the other's value as it is (a dequantized value, or a float one): the one
// conversion between the two domains.
#ifndef SQUEEZE_MODEL_QUANTIZED_REGION_H_
#define SQUEEZE_MODEL_QUANTIZED_REGION_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/export.h"
#include "model/export_flavour.h"
#include "model/loader.h"

namespace squeeze::model {

struct QuantizedTensor {
  std::string name;
  int bits = 8;  // 8 or 16
};

struct QuantizedRegion {
  std::vector<QuantizedTensor> tensors;  // main-graph values, in graph order (inputs, then node outputs)
  // Float constants read as data by the region's ops: (node name, input index).
  std::vector<std::pair<std::string, int>> constants;
};

// The plan must have one entry per layer of `model` (ExportModel checks it first).
QuantizedRegion QuantizedRegionOf(const LoadedModel& model, const std::vector<LayerPlan>& plan, ExportFlavour flavour);

// A group of region ops whose float constants the export quantizes together: in any plan, exactly
// when a layer in `layers` takes integer activations (a plan's region is a union of such groups,
// joined through the tensors of the layers it quantizes).
struct QuantizableRegion {
  std::vector<int> layers;  // the layers whose input or output its ops read or write, ascending
  // The float constants its ops read as data: (node name, input index), as QuantizedRegion's.
  std::vector<std::pair<std::string, int>> constants;
  // What the file stores less when they are quantized: their float values and framing, less the
  // uint8 values, scale and zero point, and the DequantizeLinear the exporter adds for each, built
  // as the exporter builds them.
  int64_t saved_bytes = 0;
};

// A whole-graph flavour's quantizable regions of `model` that hold float constants and touch a
// layer, in graph order; none for other flavours. A constant read by several regions is listed
// and counted with the first only (the exporter stores it once, when any of them is quantized).
// Channel pruning may slice a per-channel constant before it is quantized: `saved_bytes` is the
// whole constant's.
std::vector<QuantizableRegion> QuantizableRegionsOf(const LoadedModel& model, ExportFlavour flavour);

// Whether the HTP runs `op_type` as a quantized op (it joins a region).
bool RunsQuantizedOnHtp(const std::string& op_type);

// The inputs of a node of `op_type` that carry data (the others are shapes, axes, scales or
// bounds): every input of the n-ary elementwise ops and Concat, inputs 1 and 2 of Where, else
// input 0.
bool IsDataInput(const std::string& op_type, int input);

}  // namespace squeeze::model

#endif  // SQUEEZE_MODEL_QUANTIZED_REGION_H_
