#include "server/recommend.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>

#include "server/search_spec.h"

namespace squeeze::server {
namespace {

std::string Figures(const v1::Candidate& c) {
  const std::string sqnr =
      std::isinf(c.predicted_sqnr_db()) ? "lossless" : fmt::format("{:.1f} dB SQNR", c.predicted_sqnr_db());
  const std::string measured =
      c.has_measured() && c.measured().latency_measured()
          ? fmt::format("; measured here {:.2f} ms, {}", c.measured().latency_ms(),
                        std::isfinite(c.measured().sqnr_db()) ? fmt::format("{:.1f} dB SQNR", c.measured().sqnr_db())
                                                              : std::string("lossless"))
          : "";
  return fmt::format("{:.2f} ms, {:.2f} MB, {} (predicted){}; {}", c.predicted_latency_ms(),
                     c.predicted_size_bytes() / 1e6, sqnr, measured, c.plan_summary());
}

}  // namespace

bool MeetsConstraints(const v1::Candidate& c, const v1::Constraints& k, int64_t app_budget_bytes) {
  if (k.max_latency_ms() > 0 && c.predicted_latency_ms() > k.max_latency_ms()) return false;
  if (k.max_model_bytes() > 0 && c.predicted_size_bytes() > k.max_model_bytes()) return false;
  if (k.min_sqnr_db() > 0 && c.predicted_sqnr_db() < k.min_sqnr_db()) return false;
  // What was measured outranks what was predicted: an export measured below the floor is out.
  if (k.min_sqnr_db() > 0 && c.has_measured() && c.measured().sqnr_db() < k.min_sqnr_db()) return false;
  // So do the task floors, which only exports measure: an output that counts (or every output,
  // where the figures predate weights) below one is out.
  if (c.has_measured()) {
    const std::vector<search::TaskFloor> floors = TaskFloorsOf(k);
    bool weighed = false;
    for (const v1::OutputFidelity& o : c.measured().outputs()) weighed = weighed || o.weight() > 0;
    for (const v1::OutputFidelity& o : c.measured().outputs()) {
      if (weighed && o.weight() <= 0) continue;
      if (k.min_output_sqnr_db() > 0 && o.sqnr_db() < k.min_output_sqnr_db()) return false;
      for (const v1::TaskMetric& m : o.metrics()) {
        for (const search::TaskFloor& f : floors) {
          if (m.name() == f.metric && m.value() < f.min) return false;
        }
      }
    }
  }
  int64_t peak = k.max_peak_memory_bytes();
  if (peak == 0 && k.peak_memory_within_app_budget()) peak = app_budget_bytes;
  if (peak > 0 && c.predicted_peak_memory_bytes() > peak) return false;
  return true;
}

namespace {

using Candidates = std::vector<const v1::Candidate*>;

const v1::Candidate* Best(const Candidates& ok, const std::function<double(const v1::Candidate&)>& key) {
  return *std::min_element(ok.begin(), ok.end(), [&](const auto* a, const auto* b) { return key(*a) < key(*b); });
}

bool LatencyMeasured(const v1::Candidate& c) { return c.has_measured() && c.measured().latency_measured(); }

// The fastest: where candidates were measured on the device (measure_picks.h), the measured
// fastest among them; else the predicted fastest.
const v1::Candidate* Fastest(const Candidates& ok, const v1::Candidate* predicted_fastest) {
  const v1::Candidate* fastest = predicted_fastest;
  for (const v1::Candidate* c : ok) {
    if (!LatencyMeasured(*c)) continue;
    if (!LatencyMeasured(*fastest) || c->measured().latency_ms() < fastest->measured().latency_ms()) fastest = c;
  }
  return fastest;
}

// The knee: nearest the ideal point with every objective scaled to [0, 1] over the candidates
// (the error on a log scale).
const v1::Candidate* Knee(const Candidates& ok) {
  auto values = [](const v1::Candidate& c) {
    return std::array<double, 3>{c.predicted_latency_ms(), static_cast<double>(c.predicted_size_bytes()),
                                 std::log10(std::max(c.predicted_error(), 1e-12))};
  };
  std::array<double, 3> lo, hi;
  lo.fill(std::numeric_limits<double>::infinity());
  hi.fill(-std::numeric_limits<double>::infinity());
  for (const auto* c : ok) {
    const auto v = values(*c);
    for (int i = 0; i < 3; ++i) {
      lo[i] = std::min(lo[i], v[i]);
      hi[i] = std::max(hi[i], v[i]);
    }
  }
  return Best(ok, [&](const v1::Candidate& c) {
    const auto v = values(c);
    double d = 0;
    for (int i = 0; i < 3; ++i) {
      const double x = hi[i] > lo[i] ? (v[i] - lo[i]) / (hi[i] - lo[i]) : 0;
      d += x * x;
    }
    return d;
  });
}

// Why the fastest is named, saying so where a measurement overruled the prediction.
std::string FastestWhy(const v1::Candidate& fastest, const v1::Candidate& predicted_fastest,
                       const std::string& within) {
  std::string why = (LatencyMeasured(fastest) ? "lowest measured latency" : "lowest latency") + within;
  if (&fastest == &predicted_fastest) return why;
  return why + fmt::format(" (the predicted fastest, #{} at {:.2f} ms, {})", predicted_fastest.index(),
                           predicted_fastest.predicted_latency_ms(),
                           LatencyMeasured(predicted_fastest)
                               ? fmt::format("measured {:.2f} ms", predicted_fastest.measured().latency_ms())
                               : std::string("was not measured"));
}

// Names `c` `name` in `out`: a new recommendation, or one more name of the candidate's.
void AddPick(const v1::Candidate& c, const std::string& name, const std::string& why,
             std::vector<v1::Recommendation>* out) {
  for (v1::Recommendation& r : *out) {
    if (r.candidate().index() != c.index()) continue;
    r.set_name(r.name() + ", " + name);
    r.add_names(name);
    return;
  }
  v1::Recommendation r;
  r.set_name(name);
  r.add_names(name);
  r.set_why(why + ": " + Figures(c));
  *r.mutable_candidate() = c;
  out->push_back(std::move(r));
}

}  // namespace

std::vector<v1::Recommendation> Recommend(const v1::DeviceFront& front, const v1::Constraints& constraints,
                                          int64_t app_budget_bytes) {
  Candidates ok;
  for (const v1::Candidate& c : front.candidates()) {
    if (MeetsConstraints(c, constraints, app_budget_bytes)) ok.push_back(&c);
  }
  std::vector<v1::Recommendation> out;
  if (ok.empty()) return out;
  const v1::Candidate* predicted_fastest = Best(ok, [](const v1::Candidate& c) { return c.predicted_latency_ms(); });
  const v1::Candidate* fastest = Fastest(ok, predicted_fastest);
  const bool limited = constraints.max_latency_ms() > 0 || constraints.max_model_bytes() > 0 ||
                       constraints.min_sqnr_db() > 0 || constraints.max_peak_memory_bytes() > 0 ||
                       constraints.peak_memory_within_app_budget();
  const std::string within = limited ? " within the limits" : "";
  AddPick(*fastest, "fastest", FastestWhy(*fastest, *predicted_fastest, within), &out);
  AddPick(*Best(ok, [](const v1::Candidate& c) { return static_cast<double>(c.predicted_size_bytes()); }), "smallest",
          "fewest stored bytes" + within, &out);
  AddPick(*Best(ok, [](const v1::Candidate& c) { return c.predicted_error(); }), "most accurate",
          "highest output SQNR" + within, &out);
  AddPick(*Knee(ok), "balanced knee", "nearest the ideal of latency, size and error together", &out);
  return out;
}

}  // namespace squeeze::server
