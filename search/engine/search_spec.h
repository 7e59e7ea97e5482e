// What a search is asked: which objectives to minimize, which limits every answer must meet, and
// how the answer is measured. Shared by every strategy.
#ifndef SQUEEZE_SEARCH_ENGINE_SEARCH_SPEC_H_
#define SQUEEZE_SEARCH_ENGINE_SEARCH_SPEC_H_

#include <cstddef>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "search/engine/objective.h"
#include "search/engine/option_table.h"

namespace squeeze::search {

// Upper limits on model-level values (an SQNR floor is a max_error). Checked on each candidate's
// exact values with a relative tolerance of 1e-9.
struct Constraints {
  std::optional<double> max_latency;
  std::optional<double> max_size;
  std::optional<double> max_error;
  std::optional<double> max_peak_memory;
};

struct SearchSpec {
  // Distinct, 1 to 4 of them; their order is the order of every objective vector in the result.
  std::vector<Objective> objectives = {Objective::kLatency, Objective::kError};
  Constraints constraints;
  // Hypervolume reference point, one value per objective; empty means DefaultReference.
  std::vector<double> reference;
  // 0 returns the whole front; otherwise it is thinned to at most this many candidates: the
  // per-objective minima plus the first candidate of each box of the finest uniform box grid
  // over the front's range that fits. Each candidate holds 2 bytes per layer, and three-objective
  // exact fronts run to 10^5 candidates, so services should set it.
  size_t max_candidates = 0;
};

// OK, or InvalidArgument for: no objectives, more than 4, a repeated one, a negative or
// non-finite limit, a reference of the wrong length or with a non-finite value.
absl::Status ValidateSearchSpec(const SearchSpec& spec);

// Per objective: its limit when constrained, otherwise the value of the table's worst
// configuration in that objective (every layer at its costliest option). Every feasible
// configuration lies inside it, so it is the same for every strategy; it is generous, so compare
// hypervolumes as ratios.
std::vector<double> DefaultReference(const OptionTable& table, const SearchSpec& spec);

// Per objective: the value of the table's best configuration in that objective alone (a lower
// bound for every configuration; the corner of the box `Front::hypervolume_fraction` uses).
std::vector<double> IdealPoint(const OptionTable& table, const SearchSpec& spec);

}  // namespace squeeze::search

#endif  // SQUEEZE_SEARCH_ENGINE_SEARCH_SPEC_H_
