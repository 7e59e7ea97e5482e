// The latency/memory cost model the search calls for every (layer, option) pair (DESIGN.md §4).
//
// CostModel is the interface; DeviceCostModel predicts from a device profile: from measured
// latency samples when the device has them for the layer's kind and executed precision, otherwise
// from the spec roofline max(ops / (peak x efficiency), bytes / bandwidth) + per-op overhead.
// From samples: a least-squares fit per (kind, executed precision, sparsity) of
//   t = overhead + a·MACs + b·activation elements + c·weights   (coefficients ≥ 0, relative error)
// corrected by the measured/fitted ratio of the samples nearest in shape (kernel, stride,
// channels, resolution, groups; log scale, distance-weighted), so a sampled shape is predicted
// as measured and the fit carries the trend between and beyond them.
// Samples of an option's own realization come first; a group of fewer than four samples rides on
// the kind's fp32 fit. An option the device does not run natively costs what the device would
// really do: 2..7-bit weights as the int8 file the exporter writes, a precision without a kernel
// at the cheapest native one that holds it, a sparsity pattern with no sparse kernel dense. Every
// prediction says which of these happened. Thread safe: Predict is const and pure.
#ifndef SQUEEZE_DEVICE_PROFILES_COST_MODEL_H_
#define SQUEEZE_DEVICE_PROFILES_COST_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "device_profiles/device.h"

namespace squeeze::device_profiles {

// What the cost model needs to know of a compressible layer (model/ fills it from the graph).
struct LayerShape {
  OpKind kind = OpKind::kConv;
  int64_t macs = 0;             // multiply-accumulates of one inference, dense
  int64_t weight_params = 0;    // weight elements (bias excluded)
  int64_t out_channels = 0;     // output channels (rows of a gemm weight); scales are per channel
  int64_t input_elements = 0;   // activation elements read
  int64_t output_elements = 0;  // activation elements written
  // Optional detail for matching measured samples by shape.
  int64_t in_channels = 0, height = 0, width = 0, kernel = 0, stride = 1, groups = 1;
};

// One compression option for a layer (DESIGN.md §3): what the exporter's model::LayerPlan is.
using CompressionOption = ::squeeze::LayerCompression;

// Stored weight bytes of a layer under an option: kept values at the bit-width, plus fp32 scales
// for integer weights (per channel, or per block), plus the sparse index (a 1-bit mask per weight for
// unstructured sparsity, a 2-bit position per kept weight for 2:4). Channel pruning stores a
// smaller dense tensor.
int64_t WeightStorageBytes(const LayerShape& layer, const CompressionOption& option);

enum class Support { kNative, kEmulated, kUnsupported };
enum class Basis { kSamples, kSpecRoofline, kReported };

absl::string_view SupportName(Support support);
absl::string_view BasisName(Basis basis);

struct LatencyPrediction {
  double seconds = 0;
  Support support = Support::kUnsupported;
  Basis basis = Basis::kSpecRoofline;
  // What the device actually executes (differs from the option when emulated).
  int executed_weight_bits = 32;
  int executed_activation_bits = 32;
  Sparsity executed_sparsity = Sparsity::kDense;
  std::string explanation;  // one line a person can read
};

// The latency of an op that is not a layer (kind kQuantizeLinear, kDequantizeLinear, kElementwise
// or kTranspose) over `elements` values moving `bytes` bytes.
struct OpPrediction {
  double seconds = 0;
  Basis basis = Basis::kSpecRoofline;
};

class CostModel {
 public:
  virtual ~CostModel() = default;
  virtual LatencyPrediction Predict(const LayerShape& layer, const CompressionOption& option) const = 0;
  // Default: memory-bound work at `bandwidth` is unknown here, so nothing; DeviceCostModel
  // overrides it.
  virtual OpPrediction PredictOp(OpKind kind, int64_t elements, double bytes) const {
    (void)kind, (void)elements, (void)bytes;
    return {};
  }
};

// The trivial model for tests: every option native, seconds = MACs x seconds_per_mac x bits/32.
class ProportionalCostModel final : public CostModel {
 public:
  explicit ProportionalCostModel(double seconds_per_mac) : seconds_per_mac_(seconds_per_mac) {}
  LatencyPrediction Predict(const LayerShape& layer, const CompressionOption& option) const override;

 private:
  double seconds_per_mac_;
};

class DeviceCostModel final : public CostModel {
 public:
  // InvalidArgument when the device fails ValidateDevice.
  static absl::StatusOr<std::unique_ptr<DeviceCostModel>> Create(Device device, std::vector<LatencySample> samples);

  LatencyPrediction Predict(const LayerShape& layer, const CompressionOption& option) const override;
  // From the kind's samples (a fit in elements, corrected by the nearest sizes) when the device
  // has them, else the roofline bytes / bandwidth + per-op overhead.
  OpPrediction PredictOp(OpKind kind, int64_t elements, double bytes) const override;

  const Device& device() const { return device_; }

  // The samples of one (kind, precision, sparsity) and the least-squares fit over them.
  struct SampleGroup {
    OpKind kind = OpKind::kConv;
    int weight_bits = 32, activation_bits = 32;
    Sparsity sparsity = Sparsity::kDense;
    std::vector<const LatencySample*> samples;
    // What each sample says the op itself takes: its median, less the two uint8 transposes an
    // integer-activation conv's single-op model runs around the kernel when the device has
    // transpose samples (ONNX Runtime's integer convs run NHWC; inside a network a run of them
    // keeps NHWC, and the boundaries where they meet float layers pay the transposes).
    std::vector<double> seconds;
    bool transposes_removed = false;
    // seconds = coefficients · Features(shape); see the header comment.
    std::vector<double> coefficients;
  };

 private:
  DeviceCostModel(Device device, std::vector<LatencySample> samples);

  // The group of exactly this kind, precision and sparsity; nullptr when none. (Options of 2..7-bit
  // weights are costed as the 8-bit realization the exporter writes before groups are looked up.)
  const SampleGroup* FindGroup(OpKind kind, int weight_bits, int activation_bits, Sparsity sparsity) const;
  // Seconds predicted from `group` for a layer (or op) with these features and shape key.
  double FromSamples(const SampleGroup& group, const std::vector<double>& features,
                     const std::vector<double>& shape_key, std::string* nearest) const;

  // The roofline seconds of `layer` executed at `capability`, with `option`'s storage.
  double Roofline(const LayerShape& layer, const CompressionOption& option, const Capability& capability,
                  bool sparse_kernel) const;

  Device device_;
  std::vector<LatencySample> samples_;
  std::vector<SampleGroup> groups_;
};

}  // namespace squeeze::device_profiles

#endif  // SQUEEZE_DEVICE_PROFILES_COST_MODEL_H_
