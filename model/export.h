// Compressed-model export (DESIGN.md §6): a loaded model and a per-layer plan in, the ONNX file a
// mobile team ships out, in the QDQ format every ONNX runtime loads.
//
// - Integer weights (2..8 bits): per-output-channel symmetric int8 initializers, values limited
//   to the chosen bit-width (|q| ≤ 2^(bits-1) − 1) with the MSE-chosen clip of QuantizeRow, and a
//   DequantizeLinear with `axis` on the output-channel axis (zero points 0).
// - fp16 weights: an fp16 initializer and a Cast back to the graph's float type; fp32 untouched.
// - 8-bit activations: QuantizeLinear/DequantizeLinear pairs (asymmetric uint8) on the layer's
//   input and output (after a Relu that alone reads it), one pair per tensor, with scales from
//   calibrated ranges (model/activation_sites.h); a Conv's bias becomes int32 with scale
//   s_input · s_weight[c], so ONNX Runtime fuses DQ → Conv → (Relu →) Q into QLinearConv.
// - Pruning: unstructured and 2:4 as zeroed weights (magnitude masks, as the predictor's).
//   Output-channel pruning of a main-graph Conv removes the channels physically and fixes every
//   consumer they reach: the next Conv's (or ConvTranspose's) input channels, depthwise Convs
//   (their group count), BatchNormalization, per-channel constants of Add/Mul/..., and Add/Mul
//   partners and Concat inputs, which share the channel. A channel is removed only when every
//   layer producing it prunes it and it reaches no graph output or op whose channels cannot be
//   followed (Reshape, Softmax, ...); otherwise its weights are zeroed instead and the layer's
//   report says why. A removed channel is absent (what its consumers see is 0, not the bias).
// - Weights stored in Constant nodes or subgraphs (If/Loop bodies) are handled in their graph.
// - Models below ai.onnx opset 13 (per-axis DequantizeLinear) are converted with libonnx's version
//   converter first; a model it cannot convert is refused with its reason.
// The output keeps the original inputs and outputs, passes libonnx's checker, and records the
// plan in metadata_props ("squeeze.plan", JSON).
//
// Pure functions of their arguments; thread safe.
#ifndef SQUEEZE_MODEL_EXPORT_H_
#define SQUEEZE_MODEL_EXPORT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/export_flavour.h"
#include "model/loader.h"
#include "model/rounding.h"
#include "model/weight_math.h"

namespace squeeze::model {

// What one layer becomes: what the search's device_profiles::CompressionOption is.
using LayerPlan = ::squeeze::LayerCompression;

// A calibrated activation range (the min and max the quantizer must represent; widened to hold 0).
struct TensorRange {
  float min = 0;
  float max = 0;
};

struct ExportOptions {
  // Extra metadata_props, e.g. the job and device an export was made for.
  std::map<std::string, std::string> metadata;
  // For the opset conversion: shapes of values libonnx's inference cannot follow (the version
  // converter needs some, e.g. Softmax's input from 12 to 13), found by a run of the model
  // (runtime/shape_probe.h). Without one such a model is refused with the converter's reason.
  ShapeProbe shape_probe;
  // The device runtime's flavour: what its file holds for each precision (export_flavour.h). A
  // plan layer the flavour does not realize is refused.
  ExportFlavour flavour = ExportFlavour::kOrtCpu;
  // How block-wise low-bit (MatMulNBits) weights are rounded (model/rounding.h): by GPTQ on the
  // rows each layer reads on the calibration inputs (`layer_inputs`, runtime::CollectLayerInputs),
  // where a layer has them, else to the nearest level. The predictor rounds as the exporter does.
  WeightRounding rounding = WeightRounding::kErrorCompensating;
  LayerInputs layer_inputs;
};

struct LayerExport {
  std::string layer;
  std::string op_type;
  LayerPlan plan;
  std::string option;               // "w8a8", "fp16", "w4a8 channel 30%", ...
  int64_t params = 0;               // weights before
  int64_t kept_params = 0;          // non-zero-by-plan weights stored after (removals and masks applied)
  int64_t out_channels = 0;         // before
  int64_t kept_out_channels = 0;    // physically present after
  int64_t zeroed_out_channels = 0;  // pruned by the plan but kept as zero rows (see note)
  int64_t removed_in_channels = 0;  // input channels removed because a producer's channels went
  int64_t packed_bytes = 0;         // values at the bit-width + scales + sparse index
  // What the file holds for the layer: its weight as stored, scales and zero points, and what a
  // rewritten bias adds over the original (LayerFileBytes predicts it).
  int64_t file_bytes = 0;
  double weight_distortion = 0;  // ||W - Ŵ||² / ||W||² over the original weight (removals = 0)
  bool activation_quantized = false;
  bool compensated = false;  // its weights rounded by GPTQ (ExportOptions::rounding), not to nearest
  std::string note;          // why the plan could not be followed exactly, when it could not
};

struct ExportReport {
  std::vector<LayerExport> layers;   // Analysis::layers order
  int64_t packed_weight_bytes = 0;   // Σ LayerExport::packed_bytes
  int64_t other_constant_bytes = 0;  // every other constant of the exported file
  // The two and the file's StructureBytes: the file's size were every weight at its bit-width.
  int64_t packed_model_bytes = 0;
  int64_t file_bytes = 0;  // the ONNX file (int8 storage for 2..8 bits)
  int64_t original_opset = 0;
  int64_t opset = 0;
  int quantized_activations = 0;  // tensors given a QuantizeLinear/DequantizeLinear pair
  int quantized_constants = 0;    // float constants stored uint8 for a whole-graph flavour's ops
  // Ops that read a dequantized activation and write a float value nothing quantizes
  // (ConformanceReport).
  int float_ops_between_quantized = 0;
  int removed_channels = 0;  // output channels physically removed, all layers
  // The flavour's runtime rules checked on the file (model/conformance.h): what held, or what broke.
  std::string conformance;
  std::vector<std::string> warnings;
};

struct ExportedModel {
  std::string bytes;  // serialized ModelProto
  ExportReport report;
};

// The main-graph tensors whose ranges ExportModel needs for `plan` in `flavour`: the input and
// quantized output (ActivationTensorsOf) of every layer at integer activations, and for a flavour
// that quantizes the whole graph the tensors joined to them (QuantizedRegionOf). InvalidArgument
// as ExportModel for a malformed plan.
absl::StatusOr<std::vector<std::string>> ActivationsToCalibrate(const LoadedModel& model,
                                                                const std::vector<LayerPlan>& plan,
                                                                ExportFlavour flavour);

// Applies `plan` (one entry per Analysis::layers entry) to `model`. `ranges` must hold every
// tensor ActivationsToCalibrate names. InvalidArgument for a plan of the wrong length, bits or
// ratios out of range, float weights with 8-bit activations, a precision options.flavour does not
// write (16-bit activations for ONNX Runtime's CPU provider), a missing or non-finite range, or an
// output that fails libonnx's checker (with its reason); FailedPrecondition for a model below
// opset 13 that libonnx cannot convert, one that no longer holds a layer the analysis names, or a
// file that breaks its flavour runtime's rules (CheckConformance; a broken ort-cpu rule is a
// warning, as the file is run in ONNX Runtime anyway).
absl::StatusOr<ExportedModel> ExportModel(const LoadedModel& model, const std::vector<LayerPlan>& plan,
                                          const std::map<std::string, TensorRange>& ranges,
                                          const ExportOptions& options = {});

// The bytes of the constants an export writes for `layer` at `plan` in `flavour` (ExportReport's
// LayerExport::file_bytes), so a predicted size is the file's: the weight as the file stores it —
// dense, pruned weights as zeros, only removed output channels gone (`kept_out_channels`); fp32 in
// the model's float type, fp16, int8, or INT4 where StoresInt4 — its per-channel scales and zero
// points, and what a bias the export rewrites adds over the original one, which the model's other
// constants count (int32 with per-channel scales and zero points for an integer-activation Conv
// of a flavour with asymmetric activations; less the removed channels).
// With `folds_batch_norm` (BatchNormFolds), integer weights take the BatchNormalization after
// them: a new bias, less the normalization's four vectors (float) and the old bias.
int64_t LayerFileBytes(const Layer& layer, const LayerPlan& plan, ExportFlavour flavour, int64_t kept_out_channels,
                       bool folds_batch_norm);

// Whether the export writes `layer` at (weight_bits, activation_bits) in `flavour` as ONNX Runtime's
// com.microsoft MatMulNBits, with its weight quantized block-wise along K (LayerPlan::block_size),
// packed two (or four, at 2 bits) to a byte, and computed by its 4-bit (2-bit) kernels: ort-cpu,
// 2..4-bit weights with float activations, a MatMul whose weight is a 2-D fp32 constant.
// 2-bit weights are stored in 2 bits, 3- and 4-bit ones in 4.
bool WritesMatMulNBits(const Layer& layer, ExportFlavour flavour, int weight_bits, int activation_bits);

// The `bits` attribute of the MatMulNBits that holds `weight_bits`-bit weights: 2 or 4.
int MatMulNBitsStorageBits(int weight_bits);

// Whether `block_size` is one MatMulNBits takes: a power of two from 16 to 256 (ONNX Runtime's
// kernels' blocks).
bool IsMatMulNBitsBlockSize(int64_t block_size);

// How many bytes an export of `layer` at `plan` stores in proportion to the channels it reads,
// which it loses where other layers' output-channel pruning removes them (the exporter cuts its
// input channels): removing a share s of them takes s × this out of the file. Arguments as
// LayerFileBytes, whose bytes these are, but for a depthwise Conv's BatchNormalization below.
// - An ungrouped main-graph Conv or ConvTranspose loses that share of its weight values as stored
//   (INT4 two to a byte, int8, fp16 or the model's float type); its scales, zero points and bias
//   run along its output channels and stay.
// - A main-graph depthwise Conv (a group per channel) loses whole channels, its input's being its
//   output's: its weight values, scales and zero points, its bias (int32 or float, sliced), a
//   folded BatchNormalization's new bias; and where its weights are float, the BatchNormalization
//   it would fold (`folds_batch_norm`) stays after it, its four vectors sliced alike though the
//   model's other constants hold them.
// - Other layers (Gemm, MatMul, grouped Convs, subgraph layers) are never narrowed: 0.
int64_t NarrowableFileBytes(const Layer& layer, const LayerPlan& plan, ExportFlavour flavour, int64_t kept_out_channels,
                            bool folds_batch_norm);

// Whether the export stores `layer`'s bias, where it has one (its own or a folded
// BatchNormalization's), in int32 (scale input × weight, behind a DequantizeLinear) at `plan`: a
// main-graph Conv with float weights whose input the flavour quantizes asymmetrically, so ONNX
// Runtime (or the HTP) fuses it into its integer kernel.
// (TensorRT takes the bias float.) The exporter also needs the input quantized, which it is
// wherever the search offers integer activations (ActivationsQuantizable).
bool StoresInt32Bias(const Layer& layer, const LayerPlan& plan, ExportFlavour flavour);

// The structure (nodes, tensor names and headers, without the values) the export adds for one
// QuantizeLinear/DequantizeLinear pair on activation `tensor` in `scheme`: built as the exporter
// builds it, so its length is the file's.
int64_t QdqStructureBytes(const std::string& tensor, ActivationScheme scheme);

// The structure (node, tensor names and headers) the export's MatMulNBits of `layer` at `plan` holds
// beyond the MatMul and weight it replaces, its constants named from `base` as the exporter names
// them ("squeeze_w<layer index>"): built as the exporter builds it, so its length is the file's.
int64_t MatMulNBitsStructureBytes(const Layer& layer, const LayerPlan& plan, const std::string& base);

// What a file of `model` holds besides its constants' values — node, tensor and graph names,
// attributes, shapes, metadata: the bytes every export of it carries whatever its bit-widths, and
// which the predicted size counts beside the weights.
int64_t StructureBytes(const onnx::ModelProto& model);

// "w8a8", "w4a8 2:4", "fp16", "fp32 channel 30%": the label search/problem's OptionLabel gives.
std::string LayerPlanLabel(const LayerPlan& plan);

// The plan as JSON (what metadata_props["squeeze.plan"] holds): [{"layer":..,"option":..,...,
// "file":..}], "file" saying what the flavour's file holds for the layer and what it computes in.
std::string PlanJson(const Analysis& analysis, const std::vector<LayerPlan>& plan,
                     ExportFlavour flavour = ExportFlavour::kOrtCpu);
// One layer's entry of it: {"layer":..,"option":..,...,"file":..}.
std::string PlanEntryJson(const Layer& layer, const LayerPlan& plan, ExportFlavour flavour);

}  // namespace squeeze::model

#endif  // SQUEEZE_MODEL_EXPORT_H_
