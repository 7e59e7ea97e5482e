// Conformance: the rules a flavour's runtime documents for the quantized ONNX it takes, checked on
// an exported file, so a file that its runtime would refuse (or silently run another way) is caught
// here, naming the rule and the node, instead of on the device. ExportModel checks every export.
//
// - tensorrt (TensorRT's "explicit quantization" rules): every QuantizeLinear and DequantizeLinear
//   has a constant int8 zero point of 0 (TensorRT quantizes symmetrically) and positive, finite
//   scales; activations are quantized per tensor; int8 weights lie in [-127, 127] and are
//   quantized per tensor or per output channel (the axis of the consuming Conv's, ConvTranspose's,
//   Gemm's or MatMul's output channels); no DequantizeLinear reads int32 (TensorRT takes biases
//   float); every QuantizeLinear is read by DequantizeLinear only (Q/DQ pairs).
// - qnn (ONNX Runtime's QNN provider on the HTP, per its documentation and quantization tools):
//   activations uint8 or uint16 with a constant zero point, per tensor; layer weights int8 with
//   zero point 0, per tensor or per output channel; other constants uint8 per tensor; biases
//   int32 with zero point 0; positive, finite, constant scales; every QuantizeLinear read by
//   DequantizeLinear only; and whole-graph QDQ: no op reads a dequantized activation and writes a
//   float value (each such op is named: the HTP would run it outside a quantized node unit, in
//   fp16 where the chip has it, else on the CPU).
// - runtime-precision (ONNX Runtime's CoreML provider): no QuantizeLinear or DequantizeLinear at
//   all (it converts neither; they would run on the CPU).
// - ort-cpu (ONNX Runtime's CPU provider's u8s8 kernels): activations uint8 with a constant zero
//   point, weights int8 (or int4, model::StoresInt4) with zero point 0, positive and finite
//   scales; MatMulNBits (model::WritesMatMulNBits) as its kernel checks it: 2, 4 or 8 bits, a
//   power-of-two block of at least 16, constant codes and scales of the shapes it reads. Only an
//   ort-cpu file may hold a MatMulNBits. The file is also run in ONNX Runtime on every export (runtime/verify.h), which
//   is the stronger check for it.
//
// Every flavour's report counts the ops that read a dequantized activation and write a float value
// nothing quantizes (a Relu or Clip a layer's output quantization folds counts with the layer; a
// layer of float weights, where the float domain begins, does not count): for ort-cpu the float
// elementwise ops between its integer layers, for qnn the ops left out of quantized node units.
#ifndef SQUEEZE_MODEL_CONFORMANCE_H_
#define SQUEEZE_MODEL_CONFORMANCE_H_

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "model/export_flavour.h"

namespace squeeze::model {

struct ConformanceReport {
  ExportFlavour flavour = ExportFlavour::kOrtCpu;
  std::vector<std::string> rules;       // what was checked, one phrase each
  int checked_nodes = 0;                // QuantizeLinear, DequantizeLinear and MatMulNBits nodes, every graph
  std::vector<std::string> violations;  // "rule: node 'name' ..." ; empty when it conforms
  int float_ops_between_quantized = 0;  // main graph, see above
  std::vector<std::string> float_ops;   // the first few: "Add 'name'"

  bool ok() const { return violations.empty(); }
  // "tensorrt: 5 rules held on 126 Q/DQ nodes" or the first violations.
  std::string Summary() const;
};

ConformanceReport CheckConformance(const onnx::ModelProto& model, ExportFlavour flavour);

}  // namespace squeeze::model

#endif  // SQUEEZE_MODEL_CONFORMANCE_H_
