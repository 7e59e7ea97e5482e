#include "search/engine/internal/grid_dp.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "oneapi/tbb/blocked_range.h"
#include "oneapi/tbb/blocked_range2d.h"
#include "oneapi/tbb/parallel_for.h"
#include "search/engine/internal/grid_dp_kernel.h"

namespace squeeze::search::internal {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int32_t kColumnGrain = 4096;

}  // namespace

GridDp::GridDp(GridProblem problem)
    : p_(std::move(problem)), cap_a_(p_.cap_a), cap_b_(p_.cap_b), stride_(p_.cap_b + 1) {
  size_t max_options = 0;
  for (const auto& layer : p_.layers) max_options = std::max(max_options, layer.size());
  bp_size_ = max_options <= 256 ? 1 : 2;
  const size_t cells = static_cast<size_t>(cap_a_ + 1) * static_cast<size_t>(stride_);
  cur_.assign(cells, kInf);
  next_.assign(cells, kInf);
  tag_.assign(cells, 0);
  cur_extents_.assign(cap_a_ + 1, Extent{});
  next_extents_.assign(cap_a_ + 1, Extent{});
  windows_.assign(p_.layers.size(), Window{});
}

size_t GridDp::BackpointerBytes(size_t layer) const {
  return static_cast<size_t>(windows_[layer].rows) * windows_[layer].cols * bp_size_;
}

uint16_t GridDp::ReadBackpointer(const uint8_t* layer_bp, size_t index) const {
  if (bp_size_ == 1) return layer_bp[index];
  uint16_t value;
  std::memcpy(&value, layer_bp + 2 * index, 2);
  return value;
}

void GridDp::Step(size_t layer, uint8_t* backpointers) {
  const std::vector<GridOption>& options = p_.layers[layer];
  int32_t max_wa = 0, max_wb = 0;
  for (const GridOption& o : options) {
    max_wa = std::max(max_wa, o.wa);
    max_wb = std::max(max_wb, o.wb);
  }
  Window window;
  if (last_row_ >= 0) {
    window.rows = std::min(cap_a_, last_row_ + max_wa) + 1;
    window.cols = std::min(cap_b_, last_col_ + max_wb) + 1;
  }
  windows_[layer] = window;
  const int32_t rows = window.rows, cols = window.cols;

  // Relax every new cell from the old cells one option-step away.
  tbb::parallel_for(
      tbb::blocked_range2d<int32_t>(0, rows, 1, 0, cols, kColumnGrain), [&](const tbb::blocked_range2d<int32_t>& r) {
        const int32_t b0 = r.cols().begin(), b1 = r.cols().end();
        for (int32_t a = r.rows().begin(); a < r.rows().end(); ++a) {
          float* value = next_.data() + static_cast<size_t>(a) * stride_;
          float* tag = tag_.data() + static_cast<size_t>(a) * stride_;
          std::fill(value + b0, value + b1, kInf);
          std::fill(tag + b0, tag + b1, 0.0f);
          for (size_t j = 0; j < options.size(); ++j) {
            const GridOption& o = options[j];
            const int32_t source_row = a - o.wa;
            if (source_row < 0 || source_row > last_row_) continue;
            const Extent& e = cur_extents_[source_row];
            const int32_t lo = std::max(b0, e.first + o.wb);
            const int32_t hi = std::min(b1 - 1, e.last + o.wb);
            if (lo > hi) continue;
            const float* source = cur_.data() + static_cast<size_t>(source_row) * stride_;
            RelaxRow(source + (lo - o.wb), value + lo, tag + lo, hi - lo + 1, o.value, static_cast<float>(j));
          }
          if (backpointers != nullptr) {
            const size_t base = static_cast<size_t>(a) * cols;
            for (int32_t b = b0; b < b1; ++b) {
              const uint16_t j = static_cast<uint16_t>(tag[b]);
              if (bp_size_ == 1) {
                backpointers[base + b] = static_cast<uint8_t>(j);
              } else {
                std::memcpy(backpointers + 2 * (base + b), &j, 2);
              }
            }
          }
        }
      });

  // Clear cells over the value cap and cells matched or beaten by a cell at or below them in both
  // axes. tag_ now holds each row's running minimum (R); a column sweep carries the minimum over
  // the rows above (M).
  tbb::parallel_for(tbb::blocked_range<int32_t>(0, rows, 1), [&](const auto& r) {
    for (int32_t a = r.begin(); a < r.end(); ++a) {
      const float* value = next_.data() + static_cast<size_t>(a) * stride_;
      float* running = tag_.data() + static_cast<size_t>(a) * stride_;
      float m = kInf;
      for (int32_t b = 0; b < cols; ++b) {
        m = std::min(m, value[b]);
        running[b] = m;
      }
    }
  });
  const float cap = p_.value_cap;
  tbb::parallel_for(tbb::blocked_range<int32_t>(0, cols, kColumnGrain), [&](const auto& r) {
    const int32_t b0 = r.begin(), b1 = r.end();
    std::vector<float> above(b1 - b0, kInf);
    for (int32_t a = 0; a < rows; ++a) {
      float* value = next_.data() + static_cast<size_t>(a) * stride_;
      const float* running = tag_.data() + static_cast<size_t>(a) * stride_;
      for (int32_t b = b0; b < b1; ++b) {
        const float left = b > 0 ? running[b - 1] : kInf;
        const float better = std::min(above[b - b0], left);
        if (value[b] >= better || value[b] > cap) value[b] = kInf;
        above[b - b0] = std::min(above[b - b0], running[b]);
      }
    }
  });
  tbb::parallel_for(tbb::blocked_range<int32_t>(0, rows, 16), [&](const auto& r) {
    for (int32_t a = r.begin(); a < r.end(); ++a) {
      const float* value = next_.data() + static_cast<size_t>(a) * stride_;
      Extent e;
      e.first = 0;
      e.last = -1;
      int32_t b = 0;
      while (b < cols && value[b] == kInf) ++b;
      if (b < cols) {
        e.first = b;
        int32_t last = cols - 1;
        while (value[last] == kInf) --last;
        e.last = last;
      }
      next_extents_[a] = e;
    }
  });
  int32_t last_row = -1, last_col = -1;
  for (int32_t a = 0; a < rows; ++a) {
    if (next_extents_[a].first <= next_extents_[a].last) {
      last_row = a;
      last_col = std::max(last_col, next_extents_[a].last);
    }
  }
  std::swap(cur_, next_);
  std::swap(cur_extents_, next_extents_);
  last_row_ = last_row;
  last_col_ = last_col;
}

void GridDp::SaveCheckpoint(Checkpoint& checkpoint) const {
  checkpoint.last_row = last_row_;
  checkpoint.last_col = last_col_;
  checkpoint.extents.assign(cur_extents_.begin(), cur_extents_.begin() + (last_row_ + 1));
  const size_t cols = static_cast<size_t>(last_col_ + 1);
  checkpoint.values.resize(static_cast<size_t>(last_row_ + 1) * cols);
  for (int32_t a = 0; a <= last_row_; ++a) {
    std::copy_n(cur_.data() + static_cast<size_t>(a) * stride_, cols, checkpoint.values.data() + a * cols);
  }
}

void GridDp::RestoreCheckpoint(const Checkpoint& checkpoint) {
  last_row_ = checkpoint.last_row;
  last_col_ = checkpoint.last_col;
  std::copy(checkpoint.extents.begin(), checkpoint.extents.end(), cur_extents_.begin());
  const size_t cols = static_cast<size_t>(last_col_ + 1);
  for (int32_t a = 0; a <= last_row_; ++a) {
    std::copy_n(checkpoint.values.data() + a * cols, cols, cur_.data() + static_cast<size_t>(a) * stride_);
  }
}

absl::Status GridDp::Run(const std::function<absl::Status(size_t done)>& after_layer) {
  const size_t layers = p_.layers.size();
  // Bound the back-pointer memory from the reachable region of each layer.
  int64_t bound = 0, reach_a = 0, reach_b = 0;
  for (const auto& options : p_.layers) {
    int32_t max_wa = 0, max_wb = 0;
    for (const GridOption& o : options) {
      max_wa = std::max(max_wa, o.wa);
      max_wb = std::max(max_wb, o.wb);
    }
    reach_a = std::min<int64_t>(cap_a_, reach_a + max_wa);
    reach_b = std::min<int64_t>(cap_b_, reach_b + max_wb);
    bound += (reach_a + 1) * (reach_b + 1) * bp_size_;
  }
  if (bound <= p_.max_backpointer_bytes) {
    segment_length_ = layers;
  } else {
    segment_length_ = static_cast<size_t>(
        std::max<int64_t>(1, p_.max_backpointer_bytes / std::max<int64_t>(1, grid_cells() * bp_size_)));
  }
  segments_ = static_cast<int>((layers + segment_length_ - 1) / segment_length_);
  checkpoints_.assign(segments_, Checkpoint{});
  const size_t last_start = (segments_ - 1) * segment_length_;
  last_segment_.assign(layers - last_start, {});

  cur_[0] = 0;
  cur_extents_[0] = Extent{0, 0};
  last_row_ = 0;
  last_col_ = 0;
  for (size_t k = 0; k < layers; ++k) {
    if (segments_ > 1 && k % segment_length_ == 0) {
      SaveCheckpoint(checkpoints_[k / segment_length_]);
    }
    uint8_t* bp = nullptr;
    if (k >= last_start) {
      // The window is known only inside Step; size the buffer for the largest it can be.
      auto& buffer = last_segment_[k - last_start];
      buffer.resize(static_cast<size_t>(grid_cells()) * bp_size_);
      bp = buffer.data();
    }
    Step(k, bp);
    if (k >= last_start) {
      auto& buffer = last_segment_[k - last_start];
      buffer.resize(BackpointerBytes(k));
      buffer.shrink_to_fit();
    }
    absl::Status status = after_layer(k + 1);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

std::vector<GridCell> GridDp::FrontCells() const {
  std::vector<GridCell> cells;
  for (int32_t a = 0; a <= last_row_; ++a) {
    const Extent& e = cur_extents_[a];
    for (int32_t b = e.first; b <= e.last; ++b) {
      if (cur_[static_cast<size_t>(a) * stride_ + b] != kInf) cells.push_back({a, b});
    }
  }
  return cells;
}

float GridDp::Value(GridCell cell) const { return cur_[static_cast<size_t>(cell.a) * stride_ + cell.b]; }

absl::Status GridDp::Trace(const std::vector<GridCell>& cells,
                           const std::function<void(size_t target, size_t layer, uint16_t kept)>& visit,
                           const std::function<absl::Status()>& check) {
  const size_t layers = p_.layers.size();
  std::vector<GridCell> at = cells;
  std::vector<std::vector<uint8_t>> recomputed;
  for (int s = segments_ - 1; s >= 0; --s) {
    const size_t k0 = s * segment_length_;
    const size_t k1 = std::min(layers, k0 + segment_length_);
    const bool last = s == segments_ - 1;
    if (!last) {
      RestoreCheckpoint(checkpoints_[s]);
      recomputed.assign(k1 - k0, {});
      for (size_t k = k0; k < k1; ++k) {
        auto& buffer = recomputed[k - k0];
        buffer.resize(static_cast<size_t>(grid_cells()) * bp_size_);
        Step(k, buffer.data());
        buffer.resize(BackpointerBytes(k));
        absl::Status status = check();
        if (!status.ok()) return status;
      }
    }
    for (size_t k = k1; k-- > k0;) {
      const uint8_t* bp = last ? last_segment_[k - k0].data() : recomputed[k - k0].data();
      const std::vector<GridOption>& options = p_.layers[k];
      const Window w = windows_[k];
      for (size_t t = 0; t < at.size(); ++t) {
        GridCell& c = at[t];
        if (c.a < 0 || c.b < 0 || c.a >= w.rows || c.b >= w.cols) {
          return absl::InternalError(absl::StrCat("grid DP: trace left the window at layer ", k));
        }
        const GridOption& o = options[ReadBackpointer(bp, static_cast<size_t>(c.a) * w.cols + c.b)];
        visit(t, k, o.kept);
        c.a -= o.wa;
        c.b -= o.wb;
      }
    }
    recomputed.clear();
  }
  for (const GridCell& c : at) {
    if (c.a != 0 || c.b != 0) return absl::InternalError("grid DP: trace did not reach origin");
  }
  return absl::OkStatus();
}

}  // namespace squeeze::search::internal
