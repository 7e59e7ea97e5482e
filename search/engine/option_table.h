// The search's input: for every compressible layer, the ways it may be compressed and what each
// costs. search/problem builds it from a model, a device profile and measured sensitivities; the
// engine only reads it.
//
// Model-level values of a configuration (one option per layer):
//   latency     = fixed.latency + Σ latency
//   size        = fixed.bytes + Σ bytes
//   error       = Σ error
//   peak memory = size + max(fixed.activation_bytes, max over layers of activation_bytes)
// i.e. weights stay resident and the activations live while a layer runs are costed at that
// layer's chosen precision. The problem builder folds execution-order liveness into each
// option's activation_bytes.
#ifndef SQUEEZE_SEARCH_ENGINE_OPTION_TABLE_H_
#define SQUEEZE_SEARCH_ENGINE_OPTION_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "search/engine/objective.h"

namespace squeeze::search {

// One way to compress one layer. All values finite and ≥ 0.
struct LayerOption {
  std::string label;            // for people and for export, e.g. "w4a8 p0.5 2:4"; may be empty
  double latency = 0;           // this layer's latency with this option
  double bytes = 0;             // stored weight bytes
  double error = 0;             // predicted error contribution (s_i · D_i)
  double activation_bytes = 0;  // live activation bytes while this layer runs with this option
};

struct Layer {
  std::string name;
  std::vector<LayerOption> options;
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
};

// A configuration: the index of the chosen option in each layer, in layer order.
using Choice = std::vector<uint16_t>;
inline constexpr size_t kMaxOptionsPerLayer = 65535;

// OK, or InvalidArgument naming the first problem: no layers, a layer without options or with
// more than kMaxOptionsPerLayer, a negative or non-finite value.
absl::Status ValidateOptionTable(const OptionTable& table);

// The values of `choice` on `table`. InvalidArgument when the choice has the wrong length or an
// index out of range. The table is assumed valid.
absl::StatusOr<ObjectiveValues> Evaluate(const OptionTable& table, const Choice& choice);

}  // namespace squeeze::search

#endif  // SQUEEZE_SEARCH_ENGINE_OPTION_TABLE_H_
