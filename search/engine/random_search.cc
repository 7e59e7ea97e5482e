#include "search/engine/random_search.h"

#include <algorithm>
#include <vector>

#include "oneapi/tbb/blocked_range.h"
#include "oneapi/tbb/parallel_for.h"
#include "search/engine/internal/archive.h"
#include "search/engine/internal/evaluation.h"
#include "search/engine/internal/front_builder.h"
#include "search/engine/internal/pruned_table.h"
#include "search/engine/internal/rng.h"
#include "search/engine/internal/run_monitor.h"

namespace squeeze::search {
namespace {

constexpr int64_t kBatch = 2048;
constexpr uint64_t kStream = 0x72616e646f6dULL;  // keeps samples apart from nsga2's streams

}  // namespace

absl::StatusOr<Front> SolveRandom(const OptionTable& table, const SearchSpec& spec, const RandomSearchOptions& options,
                                  const RunControl& control) {
  if (absl::Status s = ValidateOptionTable(table); !s.ok()) return s;
  if (absl::Status s = ValidateSearchSpec(spec); !s.ok()) return s;
  if (options.samples < 0 || options.time_budget <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("random: samples must be >= 0, time budget positive");
  }
  internal::RunMonitor monitor(control);
  const internal::PrunedTable pruned = internal::PrunedTable::Build(table, spec);
  const size_t layers = pruned.layers();
  internal::Archive archive(layers, /*limit=*/0);
  int64_t done = 0;
  StopReason reason = StopReason::kCompleted;
  std::vector<uint16_t> genes;
  std::vector<ObjectiveValues> values;
  while (pruned.feasible() && done < options.samples) {
    if (monitor.cancelled()) return absl::CancelledError("random: cancelled");
    if (monitor.past_deadline()) {
      reason = StopReason::kDeadline;
      break;
    }
    if (monitor.elapsed() >= options.time_budget) break;
    const int64_t batch = std::min(kBatch, options.samples - done);
    genes.resize(static_cast<size_t>(batch) * layers);
    values.resize(static_cast<size_t>(batch));
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, batch, 64), [&](const auto& r) {
      for (int64_t s = r.begin(); s < r.end(); ++s) {
        internal::Rng rng(internal::StreamSeed(options.seed, kStream, done + s));
        uint16_t* g = genes.data() + s * layers;
        for (size_t l = 0; l < layers; ++l) {
          g[l] = static_cast<uint16_t>(rng.Uniform(static_cast<uint32_t>(pruned.count(l))));
        }
        values[s] = pruned.Evaluate(g);
      }
    });
    for (int64_t s = 0; s < batch; ++s) {
      if (internal::Feasible(values[s], spec.constraints)) {
        archive.Add(genes.data() + s * layers, internal::ObjectivePoint(values[s], spec), values[s]);
      }
    }
    archive.Compact();
    done += batch;
    monitor.Report("sample", static_cast<double>(done) / std::max<int64_t>(1, options.samples), nullptr);
  }
  archive.Compact();
  Front front = internal::BuildFront(table, spec, Strategy::kRandom, archive.Candidates(pruned));
  front.stop_reason = reason;
  front.stats.seconds = monitor.seconds();
  front.stats.options_total = pruned.options_total();
  front.stats.options_kept = pruned.options_kept();
  front.stats.evaluations = done;
  monitor.Report("done", 1, &front, /*force=*/true);
  return front;
}

}  // namespace squeeze::search
