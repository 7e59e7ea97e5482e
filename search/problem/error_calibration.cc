#include "search/problem/error_calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "search/problem/plan.h"

namespace squeeze::search {
namespace {

constexpr double kLeastFactor = 0.1;
constexpr double kMostFactor = 1000;

}  // namespace

std::vector<Candidate> ErrorProbeCandidates(const Front& front, double floor_sqnr_db) {
  std::vector<Candidate> out;
  std::vector<size_t> taken;
  for (double target : {floor_sqnr_db, floor_sqnr_db + 10, floor_sqnr_db + 20}) {
    const Candidate* best = nullptr;
    size_t best_index = 0;
    double best_sqnr = std::numeric_limits<double>::infinity();
    for (size_t k = 0; k < front.candidates.size(); ++k) {
      const Candidate& c = front.candidates[k];
      if (c.values.error <= 0) continue;
      const double sqnr = SqnrDb(c.values.error);
      if (sqnr < target || sqnr >= best_sqnr) continue;
      if (std::find(taken.begin(), taken.end(), k) != taken.end()) continue;
      best = &c;
      best_index = k;
      best_sqnr = sqnr;
    }
    if (best == nullptr) continue;
    taken.push_back(best_index);
    out.push_back(*best);
  }
  return out;
}

double ErrorFactor(const std::vector<ErrorProbe>& probes) {
  double factor = 0;
  bool any = false;
  for (const ErrorProbe& p : probes) {
    if (p.predicted <= 0) continue;
    factor = std::max(factor, p.measured / p.predicted);
    any = true;
  }
  return any ? std::clamp(factor, kLeastFactor, kMostFactor) : 1.0;
}

void ScaleErrors(double factor, Problem* problem) {
  for (Layer& layer : problem->table.layers) {
    for (LayerOption& o : layer.options) o.error *= factor;
  }
}

std::string DescribeErrorCalibration(const std::vector<double>& factors, const std::vector<ErrorProbe>& probes) {
  if (probes.empty()) return "";
  std::vector<std::string> scaled, measured;
  for (size_t r = 0; r < factors.size(); ++r) {
    scaled.push_back(absl::StrCat(r == 0 ? "x " : "then x ", absl::StrFormat("%.3g", factors[r])));
  }
  for (const ErrorProbe& p : probes) {
    measured.push_back(
        absl::StrFormat("%s measured %.1f dB (predicted %.1f)", p.plan, SqnrDb(p.measured), SqnrDb(p.predicted)));
  }
  const std::string exported = absl::StrCat(probes.size(), probes.size() == 1 ? " candidate" : " candidates",
                                            " near the SQNR floor exported and run on the calibration inputs");
  if (scaled.empty()) {
    return absl::StrCat("predicted errors kept: ", exported,
                        " measured within 1 dB of their predictions or better: ", absl::StrJoin(measured, "; "));
  }
  return absl::StrCat("predicted errors ", absl::StrJoin(scaled, ", "), " to match ", exported,
                      " (the largest measured / predicted, so those are predicted no better than measured): ",
                      absl::StrJoin(measured, "; "));
}

absl::StatusOr<ErrorCheck> CheckErrors(double floor_sqnr_db, const MeasureProbes& measure, const Rerun& rerun,
                                       Problem* problem, Front* front) {
  ErrorCheck check;
  for (int round = 0; round < 2; ++round) {
    const std::vector<Candidate> candidates = ErrorProbeCandidates(*front, floor_sqnr_db);
    if (candidates.empty()) break;
    absl::StatusOr<std::vector<ErrorProbe>> measured = measure(candidates);
    if (!measured.ok()) {
      check.measurement = measured.status();
      break;
    }
    check.probes.insert(check.probes.end(), measured->begin(), measured->end());
    const double factor = ErrorFactor(*measured);
    // Within 1 dB the front stands; errors found over-predicted after a first scaling stay so
    // (the safe side).
    if (std::fabs(10 * std::log10(factor)) <= 1 || (round > 0 && factor < 1)) break;
    ScaleErrors(factor, problem);
    check.factors.push_back(factor);
    absl::StatusOr<Front> again = rerun(round);
    if (!again.ok()) return again.status();
    *front = *std::move(again);
  }
  problem->error_calibration = DescribeErrorCalibration(check.factors, check.probes);
  return check;
}

}  // namespace squeeze::search
