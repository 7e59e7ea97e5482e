#include "search/engine/option_table.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "search/engine/internal/evaluation.h"

namespace squeeze::search {
namespace {

bool Valid(double value) { return std::isfinite(value) && value >= 0; }

}  // namespace

absl::Status ValidateOptionTable(const OptionTable& table) {
  if (table.layers.empty()) return absl::InvalidArgumentError("option table: no layers");
  const FixedCost& f = table.fixed;
  if (!Valid(f.latency) || !Valid(f.bytes) || !Valid(f.activation_bytes)) {
    return absl::InvalidArgumentError("option table: fixed cost must be finite and >= 0");
  }
  for (size_t i = 0; i < table.layers.size(); ++i) {
    const Layer& layer = table.layers[i];
    if (layer.options.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("option table: layer ", i, " (", layer.name, ") has no options"));
    }
    if (layer.options.size() > kMaxOptionsPerLayer) {
      return absl::InvalidArgumentError(absl::StrCat("option table: layer ", i, " (", layer.name,
                                                     ") has more than ", kMaxOptionsPerLayer,
                                                     " options"));
    }
    for (size_t j = 0; j < layer.options.size(); ++j) {
      const LayerOption& o = layer.options[j];
      if (!Valid(o.latency) || !Valid(o.bytes) || !Valid(o.error) || !Valid(o.activation_bytes)) {
        return absl::InvalidArgumentError(absl::StrCat("option table: layer ", i, " (", layer.name,
                                                       ") option ", j,
                                                       " has a negative or non-finite value"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ObjectiveValues> Evaluate(const OptionTable& table, const Choice& choice) {
  if (choice.size() != table.layers.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "choice has ", choice.size(), " entries; the table has ", table.layers.size(), " layers"));
  }
  for (size_t i = 0; i < choice.size(); ++i) {
    if (choice[i] >= table.layers[i].options.size()) {
      return absl::InvalidArgumentError(absl::StrCat("choice for layer ", i, " is ", choice[i],
                                                     "; the layer has ",
                                                     table.layers[i].options.size(), " options"));
    }
  }
  return internal::EvaluateUnchecked(table, choice.data());
}

}  // namespace squeeze::search
