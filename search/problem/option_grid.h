// The option space a search explores for every layer (DESIGN.md §3), as a typed grid.
#ifndef SQUEEZE_SEARCH_PROBLEM_OPTION_GRID_H_
#define SQUEEZE_SEARCH_PROBLEM_OPTION_GRID_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "device_profiles/cost_model.h"
#include "model/analysis.h"
#include "model/export_flavour.h"

namespace squeeze::search {

struct OptionGrid {
  std::vector<int> weight_bits = {32, 16, 8, 6, 5, 4, 3, 2};
  std::vector<int> activation_bits = {32, 16, 8};
  std::vector<double> prune_ratios = {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
  std::vector<device_profiles::Sparsity> patterns = {device_profiles::Sparsity::kUnstructured,
                                                     device_profiles::Sparsity::kTwoFour,
                                                     device_profiles::Sparsity::kOutputChannel};
  // The runs of K that share a scale where 2..4-bit MatMul weights are stored block-wise
  // (model::WritesMatMulNBits): smaller blocks follow the weights closer (less error) and store
  // more scales (4 bytes per block).
  std::vector<int> block_sizes = {32, 64, 128};
};

// What the device's runtime does with an option: the export flavour that writes it (an option
// exists only where the flavour realizes it) and the channel alignment its kernels run well.
struct DeviceRealization {
  model::ExportFlavour flavour = model::ExportFlavour::kOrtCpu;
  // Output-channel pruning keeps a multiple of this many channels (vector kernels and blocked
  // layouts run ragged counts slower); 1 = any count.
  int channel_alignment = 8;
};

// InvalidArgument naming the first bad entry: bits outside {2..6, 8, 16, 32} / {8, 16, 32},
// ratios outside [0, 1), a pattern that is dense, a block size that is no power of two from 16
// to 256, or an empty list.
absl::Status ValidateOptionGrid(const OptionGrid& grid);

// The options of `layer` under `grid`, before the device's cost model is asked what it runs:
// - only precisions `device.flavour` realizes (model::Realizes): float weights keep float
//   activations, integer weights take the activation widths the flavour writes;
// - prune ratio 0 is the dense option; unstructured and output-channel pruning take every other
//   ratio; 2:4 is one option (ratio 0.5) for rows of at least 4 weights;
// - output-channel pruning is left out for grouped convolutions, whose channels are tied to
//   their input's; it keeps a positive multiple of `device.channel_alignment` channels, each grid
//   ratio moved to the nearest such count (duplicates dropped), so the ratio of an option is
//   exactly removed / out_channels and the distortion, cost model and exporter remove the same
//   count;
// - where the flavour stores 2..4-bit weights of the layer block-wise (model::WritesMatMulNBits),
//   each such option once per grid block size, and never with a scale per channel.
std::vector<device_profiles::CompressionOption> LayerOptions(const OptionGrid& grid, const model::Layer& layer,
                                                             const DeviceRealization& device = {});

// "w4a8 2:4", "fp16", "w8a8 unstructured 30%", "fp32 channel 20%".
std::string OptionLabel(const device_profiles::CompressionOption& option);

}  // namespace squeeze::search

#endif  // SQUEEZE_SEARCH_PROBLEM_OPTION_GRID_H_
