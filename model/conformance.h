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
// - ort-cpu and runtime-precision (ONNX Runtime's CPU provider's u8s8 kernels, and the Core ML
//   provider, which takes the same file): activations uint8 with a constant zero point, weights
//   int8 (or int4, model::StoresInt4) with zero point 0, positive and finite scales. The file is also run in ONNX
//   Runtime on every export (runtime/verify.h), which is the stronger check for these.
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
  int checked_nodes = 0;                // QuantizeLinear and DequantizeLinear nodes, every graph
  std::vector<std::string> violations;  // "rule: node 'name' ..." ; empty when it conforms

  bool ok() const { return violations.empty(); }
  // "tensorrt: 5 rules held on 126 Q/DQ nodes" or the first violations.
  std::string Summary() const;
};

ConformanceReport CheckConformance(const onnx::ModelProto& model, ExportFlavour flavour);

}  // namespace squeeze::model

#endif  // SQUEEZE_MODEL_CONFORMANCE_H_
