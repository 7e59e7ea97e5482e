// The option table as the strategies search it: per layer only the options that can appear in an
// answer, stored contiguously. An option is dropped when another option of the same layer is at
// least as good in every quantity the search looks at (objectives and limits; peak memory looks
// at both bytes and activation bytes), or when it breaks a limit even with every other layer at
// its cheapest. Only options of the same activation domain dominate each other: which is faster
// in a plan depends on the neighbours' domains (OptionTable::boundaries); and only options that
// remove at least as many channels, which shrink those conversions. Where other layers' pruning
// narrows a layer (OptionTable::narrowings), an option dominates in bytes only if it stores no more
// both whole and narrowed as far as any plan narrows it.
#ifndef SQUEEZE_SEARCH_ENGINE_INTERNAL_PRUNED_TABLE_H_
#define SQUEEZE_SEARCH_ENGINE_INTERNAL_PRUNED_TABLE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "search/engine/objective.h"
#include "search/engine/option_table.h"
#include "search/engine/search_spec.h"

namespace squeeze::search::internal {

struct KeptOption {
  double latency = 0, bytes = 0, error = 0, activation = 0;
  double boundary = 0;      // LayerOption::boundary_latency
  bool integer = false;     // LayerOption::integer_activations
  double fused = -1;        // LayerOption::fused_latency
  double removed = 0;       // LayerOption::removed_channels
  double credit = 0;        // LayerOption::narrowing_credit
  double narrowable = 0;    // LayerOption::narrowable_bytes
  double bytes_credit = 0;  // LayerOption::bytes_credit, plus its share of the regions it borders
  uint16_t original = 0;    // index in the source table's layer
  // The latency additive strategies plan with: its own and the most its boundaries can cost, less
  // what it is expected to save the layers it narrows (may be below 0).
  double planned_latency() const { return latency + boundary - credit; }
  // The bytes additive strategies plan with: its own less what it is expected to save the layers
  // it narrows and, for an integer option, its share of the quantized regions it borders (may be
  // below 0).
  double planned_bytes() const { return bytes - bytes_credit; }
};

class PrunedTable {
 public:
  // Kept options per layer are ordered by (error, latency, bytes, activation, original index).
  static PrunedTable Build(const OptionTable& table, const SearchSpec& spec);

  size_t layers() const { return offsets_.size() - 1; }
  size_t count(size_t layer) const { return offsets_[layer + 1] - offsets_[layer]; }
  const KeptOption& option(size_t layer, size_t k) const { return options_[offsets_[layer] + k]; }
  const FixedCost& fixed() const { return fixed_; }
  // False when some layer has no option left: nothing is feasible.
  bool feasible() const { return feasible_; }
  int64_t options_total() const { return options_total_; }
  int64_t options_kept() const { return static_cast<int64_t>(options_.size()); }
  size_t max_count() const { return max_count_; }

  // Genes are kept indices per layer. Exact values, boundary conversions included.
  ObjectiveValues Evaluate(const uint16_t* genes) const;
  Choice ToChoice(const uint16_t* genes) const;
  // The kept option closest to an original option (itself when kept), by relative distance over
  // the quantities the search looks at. For seeding from configurations of the full table.
  uint16_t Nearest(size_t layer, uint16_t original) const { return nearest_[layer][original]; }

 private:
  std::vector<size_t> offsets_;
  std::vector<KeptOption> options_;
  std::vector<std::vector<uint16_t>> nearest_;
  FixedCost fixed_;
  std::vector<ActivationBoundary> boundaries_;
  std::vector<Narrowing> narrowings_;
  std::vector<RegionSaving> region_savings_;
  std::vector<std::array<int32_t, 2>> io_;  // Layer::input_boundary, output_boundary
  bool feasible_ = true;
  int64_t options_total_ = 0;
  size_t max_count_ = 0;
};

}  // namespace squeeze::search::internal

#endif  // SQUEEZE_SEARCH_ENGINE_INTERNAL_PRUNED_TABLE_H_
