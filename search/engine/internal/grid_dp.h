// Dynamic programming over layers on an integer grid of one or two additive quantities, keeping
// per cell the smallest value of the minimized quantity (a multiple-choice knapsack with one or
// two budgets, solved for every budget at once).
//
// Rows index axis a, columns axis b; with one gridded quantity there is one row. After each layer
// every cell that some cell at or below it in both axes matches or beats is cleared: extending it
// can never beat the same extension of the better cell. What remains after the last layer is
// the grid's Pareto front.
//
// The DP pulls: each new cell takes the best of the old cells an option's step away, so each cell
// is computed independently and the result does not depend on how oneTBB splits the work.
// Back-pointers are one small option index per cell and layer (a step is fixed per option); when
// they would exceed the memory budget, only checkpoints of the cell values are kept in the
// forward pass and each segment's back-pointers are recomputed while tracing back.
#ifndef SQUEEZE_SEARCH_ENGINE_INTERNAL_GRID_DP_H_
#define SQUEEZE_SEARCH_ENGINE_INTERNAL_GRID_DP_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "absl/status/status.h"

namespace squeeze::search::internal {

struct GridOption {
  int32_t wa = 0;     // step along axis a (rows)
  int32_t wb = 0;     // step along axis b (columns)
  float value = 0;    // minimized quantity, as an excess over the layer's smallest
  uint16_t kept = 0;  // the option's index among the layer's kept options
};

struct GridProblem {
  std::vector<std::vector<GridOption>> layers;               // each non-empty
  int32_t cap_a = 0;                                         // largest row index
  int32_t cap_b = 0;                                         // largest column index
  float value_cap = std::numeric_limits<float>::infinity();  // larger values are dropped
  int64_t max_backpointer_bytes = int64_t{256} << 20;
};

struct GridCell {
  int32_t a = 0, b = 0;
};

class GridDp {
 public:
  explicit GridDp(GridProblem problem);

  // The forward pass. `after_layer(done)` runs on the calling thread after each layer; when it
  // returns an error the pass stops and returns it.
  absl::Status Run(const std::function<absl::Status(size_t done)>& after_layer);

  // After Run and before any Trace: the grid front (finite cells, row-major) and cell values.
  std::vector<GridCell> FrontCells() const;
  float Value(GridCell cell) const;

  // Walks each cell's back-pointers down to layer 0, calling visit(target, layer, kept) once per
  // layer for each target (layers in descending order). `check` runs between recomputed layers;
  // an error from it stops the walk. Internal error if a walk does not end at the origin.
  absl::Status Trace(const std::vector<GridCell>& cells,
                     const std::function<void(size_t target, size_t layer, uint16_t kept)>& visit,
                     const std::function<absl::Status()>& check);

  int64_t grid_cells() const { return static_cast<int64_t>(cap_a_ + 1) * stride_; }
  int segments() const { return segments_; }

 private:
  struct Extent {
    int32_t first = 0, last = -1;  // finite columns of a row; empty when first > last
  };
  struct Window {
    int32_t rows = 0, cols = 0;
  };
  struct Checkpoint {
    std::vector<float> values;  // rows [0, last_row] × columns [0, last_col], packed
    std::vector<Extent> extents;
    int32_t last_row = -1, last_col = -1;
  };

  // One layer: cur_ → cur_ (through next_). Writes back-pointers to `backpointers` when given.
  void Step(size_t layer, uint8_t* backpointers);
  void SaveCheckpoint(Checkpoint& checkpoint) const;
  void RestoreCheckpoint(const Checkpoint& checkpoint);
  size_t BackpointerBytes(size_t layer) const;
  uint16_t ReadBackpointer(const uint8_t* layer_bp, size_t index) const;

  GridProblem p_;
  int32_t cap_a_, cap_b_, stride_;
  int bp_size_;  // bytes per back-pointer: 1 or 2
  std::vector<float> cur_, next_, tag_;
  std::vector<Extent> cur_extents_, next_extents_;
  int32_t last_row_ = 0, last_col_ = 0;
  std::vector<Window> windows_;  // per layer, set by Step
  size_t segment_length_ = 0;
  int segments_ = 1;
  std::vector<Checkpoint> checkpoints_;             // state before each segment's first layer
  std::vector<std::vector<uint8_t>> last_segment_;  // back-pointers kept from the forward pass
};

}  // namespace squeeze::search::internal

#endif  // SQUEEZE_SEARCH_ENGINE_INTERNAL_GRID_DP_H_
