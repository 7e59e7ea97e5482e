// The search's input: for every compressible layer, the ways it may be compressed and what each
// costs. search/problem builds it from a model, a device profile and measured sensitivities; the
// engine only reads it.
//
// Model-level values of a configuration (one option per layer):
//   latency     = fixed.latency + Σ latency + Σ boundary conversions − Σ narrowed input (below)
//   size        = fixed.bytes + Σ bytes − Σ narrowed input bytes − Σ quantized region savings (below)
//   error       = Σ error
//   peak memory = size + max(fixed.activation_bytes, max over layers of activation_bytes)
// i.e. weights stay resident and the activations live while a layer runs are costed at that
// layer's chosen precision. The problem builder folds execution-order liveness into each
// option's activation_bytes.
//
// Latency is not purely additive: a tensor between layers is converted (quantized or dequantized)
// only where the layers on its two sides run in different activation domains (integer or float),
// so two integer layers in a row pay nothing between them; and where a device runs integer layers
// in another memory layout than float ones (ONNX Runtime's integer convs run channels-last), the
// tensor is transposed where the layouts meet. Those conversions are the table's `boundaries`.
// Nor are a layer's latency and bytes its own alone where another layer's output-channel pruning
// removes channels it reads (the table's `narrowings`): it runs on a narrower input, and takes that
// much less time, and the file stores that much less of what it holds per input channel. Strategies
// that need additive values plan with each option's `boundary_latency`, the most its conversions
// can cost, less its `narrowing_credit`, and with its `bytes` less its `bytes_credit`: estimates of
// what it saves the layers it narrows. Nor is the size of the constants between layers fixed where
// the exporter quantizes the ops between them (the QNN flavour's whole-graph regions): `fixed.bytes`
// counts those constants as float, and a plan stores each region's `saving` less when any layer
// bordering it runs on integer activations (the table's `region_savings`; an OR over the layers, not
// a sum). Additive strategies credit each region's saving in equal parts to its layers' integer
// options (added to their bytes_credit). Every answer is reported with its exact values, and only
// those are held against the limits.
#ifndef SQUEEZE_SEARCH_ENGINE_OPTION_TABLE_H_
#define SQUEEZE_SEARCH_ENGINE_OPTION_TABLE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "search/engine/objective.h"

namespace squeeze::search {

// One way to compress one layer. All values finite and ≥ 0.
struct LayerOption {
  std::string label;                 // for people and for export, e.g. "w4a8 p0.5 2:4"; may be empty
  double latency = 0;                // this layer's latency with this option
  double bytes = 0;                  // stored weight bytes
  double error = 0;                  // predicted error contribution (s_i · D_i)
  double activation_bytes = 0;       // live activation bytes while this layer runs with this option
  bool integer_activations = false;  // runs on integer activations (its boundaries may convert)
  double boundary_latency = 0;       // the most this option's boundary conversions can cost
  // A weight-only integer option (integer weights, float activations) whose input and output a
  // plan quantizes anyway, for its neighbours: ONNX Runtime fuses the DequantizeLinear → Conv →
  // QuantizeLinear it then sees into an integer kernel, so in such a plan the layer runs on integer
  // activations and takes `fused_latency`. -1: never fused. Its boundary_latency also covers what
  // running fused can cost more than `latency`.
  double fused_latency = -1;
  // The share of the layer's output channels the option removes from the file (output-channel
  // pruning): the tensors that carry them shrink alike, and so do their boundaries' conversions.
  double removed_channels = 0;
  // What additive strategies take off `latency` for the time the option's channel pruning saves
  // the layers that read those channels (OptionTable::narrowings), at latencies the builder
  // expects of them; a plan's exact latency takes off what they save at the options it chose.
  double narrowing_credit = 0;
  // The part of `bytes` the file stores in proportion to the layer's input channels: where other
  // layers' output-channel pruning removes a share of them (OptionTable::narrowings), a plan stores
  // that share of it less. A layer that reads its input channel by channel (a depthwise Conv) loses
  // whole channels: every byte it holds per channel, and the per-channel constants after it that go
  // with them. An ungrouped Conv loses only weight values (its scales and bias run along its output
  // channels). At most `bytes`.
  double narrowable_bytes = 0;
  // What additive strategies take off `bytes` for the bytes the option's channel pruning saves the
  // layers that read those channels, at options the builder expects of them (like
  // narrowing_credit); a plan's exact size takes off what they save at the options it chose.
  double bytes_credit = 0;
  // The least latency the option can take in any plan.
  double least_latency() const { return fused_latency >= 0 ? std::min(latency, fused_latency) : latency; }
};

// What converting one activation tensor costs, where channel pruning keeps a share `kept` of it.
struct ConversionCosts {
  double kept = 1;
  double quantize_latency = 0, dequantize_latency = 0, transpose_latency = 0, pool_latency = 0;
};

// A tensor that integer-activation layers may read or write, and what converting it costs.
struct ActivationBoundary {
  int32_t producer = -1;          // the layer that writes it (index), -1 when no layer does
  std::vector<int32_t> readers;   // the layers that read it
  bool float_readers = false;     // anything else reads it as float (other ops, graph outputs)
  double quantize_latency = 0;    // paid when some reader runs integer and the producer does not
  double dequantize_latency = 0;  // paid when the producer runs integer and something reads float
  // Layouts. The tensor has the layout of `layout_producer`, the nearest layer upstream through
  // ops that work in either layout (-1: none, the float layout), and reaches `layout_readers`
  // downstream through such ops (`float_layout_reader`: also a graph output or an op that needs
  // the float layout). `transpose_latency` is paid once when some reader runs integer and the
  // layout producer does not, and once on the layout producer's own output (producer ==
  // layout_producer) when it runs integer and a layout reader does not (or float_layout_reader).
  int32_t layout_producer = -1;
  std::vector<int32_t> layout_readers;
  bool float_layout_reader = false;
  double transpose_latency = 0;
  // Paid with the first transpose (some reader runs integer, the layout producer does not): what
  // the max pools that write this tensor cost more on uint8 in the float layout than in float.
  // ONNX Runtime moves the QuantizeLinear an integer reader needs above such a pool.
  double pool_latency = 0;
  // The layers whose output-channel pruning narrows the tensor, each with the share of its
  // channels that are theirs: a plan keeps 1 - Σ share x LayerOption::removed_channels of it (its
  // chosen options'). The costs above are the whole tensor's; `narrower` holds them at narrower
  // widths (kept ascending, each in (0, 1), none above the whole tensor's), interpolated in
  // between and scaled down proportionally below the first.
  std::vector<std::pair<int32_t, double>> narrowed_by;
  std::vector<ConversionCosts> narrower;
  // The costs at `kept` (1: the fields above).
  ConversionCosts CostsAt(double kept) const;
};

// Layer `pruner`'s output-channel pruning removes channels layer `reader` reads (the exporter cuts
// its input channels, or a depthwise conv's channels alike): in a plan the reader takes
// share x removed_channels of the pruner's option less than its latency (its fused latency where
// it runs fused), and stores that much less of its option's narrowable_bytes. The shares narrowing
// one reader sum to at most 1.
struct Narrowing {
  int32_t pruner = -1, reader = -1;
  double share = 0;  // the share of the reader's input channels that are the pruner's, in (0, 1]
};

// The float constants the ops of one quantized region read as data (an Add's bias, a Mul's scale):
// the exporter stores them in uint8 when any layer of `layers` (those bordering the region) runs on
// integer activations in the plan (a weight-only option that runs fused counts), and the plan's
// file is `saving` bytes smaller than fixed.bytes counts them.
struct RegionSaving {
  std::vector<int32_t> layers;  // distinct layer indices, at least one
  double saving = 0;            // finite, >= 0
};

struct Layer {
  std::string name;
  std::vector<LayerOption> options;
  // The boundaries of its input and output tensors (indices in OptionTable::boundaries), -1 when
  // none: what decides whether a weight-only integer option runs fused (LayerOption::fused_latency).
  int32_t input_boundary = -1, output_boundary = -1;
};

// What the compressible layers do not cover: the other ops and initializers.
struct FixedCost {
  double latency = 0;
  double bytes = 0;
  double activation_bytes = 0;  // peak live activations while the other ops run
};

struct OptionTable {
  std::vector<Layer> layers;
  FixedCost fixed;
  std::vector<ActivationBoundary> boundaries;
  std::vector<Narrowing> narrowings;
  std::vector<RegionSaving> region_savings;
};

// A configuration: the index of the chosen option in each layer, in layer order.
using Choice = std::vector<uint16_t>;
inline constexpr size_t kMaxOptionsPerLayer = 65535;

// OK, or InvalidArgument naming the first problem: no layers, a layer without options or with
// more than kMaxOptionsPerLayer, a negative or non-finite value, a removed-channel share outside
// [0, 1), narrowable bytes above the option's bytes, a boundary naming no layer or narrowed by a
// share outside (0, 1], a narrowing naming no layer (or one layer twice) or whose shares into one
// reader exceed 1, an option whose boundary_latency is below what its boundaries can cost, or a
// region saving naming no layers, a layer out of range or twice, or a negative or non-finite saving.
absl::Status ValidateOptionTable(const OptionTable& table);

// Per layer, the most its boundaries can cost when it runs integer: the quantization (and
// transpose, and uint8 pools) of what it reads and the dequantization (and transpose) of what it writes (the least
// valid LayerOption::boundary_latency).
// Boundaries naming no layer are skipped (ValidateOptionTable refuses them).
std::vector<double> BoundaryBounds(const OptionTable& table);

// The values of `choice` on `table`. InvalidArgument when the choice has the wrong length or an
// index out of range. The table is assumed valid.
absl::StatusOr<ObjectiveValues> Evaluate(const OptionTable& table, const Choice& choice);

// Where a plan's latency and size go beyond its options' own, for explanations: which layers run
// on integer activations (weight-only ones that run fused included), what each boundary costs
// (parallel to table.boundaries), and how much less each layer takes and stores on the input other
// layers' pruning narrowed (parallel to table.layers). Evaluate's latency is the fixed cost, each
// layer's option (its fused latency where it runs fused) and the boundaries, less the narrowed
// time; its size the fixed bytes and each layer's option's, less the narrowed bytes and the region
// savings the plan earns (parallel to table.region_savings: the saving, or 0).
// Errors as Evaluate.
struct PlanConversions {
  std::vector<bool> runs_integer;
  std::vector<double> boundary_latency;
  std::vector<double> narrowed_latency;
  std::vector<double> narrowed_bytes;
  std::vector<double> region_bytes;
};
absl::StatusOr<PlanConversions> ConversionsOf(const OptionTable& table, const Choice& choice);

}  // namespace squeeze::search

#endif  // SQUEEZE_SEARCH_ENGINE_OPTION_TABLE_H_
