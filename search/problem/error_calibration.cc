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
  for (double target : {floor_sqnr_db, floor_sqnr_db + 5, floor_sqnr_db + 10, floor_sqnr_db + 20}) {
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

std::vector<std::string> MissedFloors(const ErrorProbe& probe, const std::vector<TaskFloor>& floors) {
  std::vector<std::string> missed;
  for (const TaskFloor& f : floors) {
    auto it = probe.metrics.find(f.metric);
    if (it != probe.metrics.end() && it->second < f.min) {
      missed.push_back(absl::StrFormat("%s %.3f < %.3g", f.metric, it->second, f.min));
    }
  }
  return missed;
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
  // The terms stay the parts of the error they are.
  for (std::vector<OptionDetail>& layer : problem->details) {
    for (OptionDetail& d : layer) {
      d.activation_error *= factor;
      d.pruning_error *= factor;
    }
  }
}

std::string DescribeErrorCalibration(const std::vector<double>& factors, const std::vector<ErrorProbe>& probes,
                                     const std::vector<std::string>& raised) {
  if (probes.empty()) return "";
  std::vector<std::string> scaled, measured;
  for (size_t r = 0; r < factors.size(); ++r) {
    scaled.push_back(absl::StrCat(r == 0 ? "x " : "then x ", absl::StrFormat("%.3g", factors[r])));
  }
  for (const ErrorProbe& p : probes) {
    std::string text =
        absl::StrFormat("%s measured %.1f dB (predicted %.1f)", p.plan, SqnrDb(p.measured), SqnrDb(p.predicted));
    for (const auto& [metric, value] : p.metrics) absl::StrAppend(&text, absl::StrFormat(", %s %.3f", metric, value));
    measured.push_back(std::move(text));
  }
  const std::string exported = absl::StrCat(probes.size(), probes.size() == 1 ? " candidate" : " candidates",
                                            " near the SQNR floor exported and run on the calibration inputs");
  std::string text =
      scaled.empty()
          ? absl::StrCat("predicted errors kept: ", exported,
                         " measured within 1 dB of their predictions or better: ", absl::StrJoin(measured, "; "))
          : absl::StrCat("predicted errors ", absl::StrJoin(scaled, ", "), " to match ", exported,
                         " (the largest measured / predicted, so those are predicted no better than measured): ",
                         absl::StrJoin(measured, "; "));
  if (!raised.empty()) absl::StrAppend(&text, "; ", absl::StrJoin(raised, "; "));
  return text;
}

absl::StatusOr<ErrorCheck> CheckErrors(double floor_sqnr_db, const std::vector<TaskFloor>& task_floors,
                                       const MeasureProbes& measure, const Rerun& rerun, Problem* problem,
                                       Front* front) {
  ErrorCheck check;
  check.floor_sqnr_db = floor_sqnr_db;
  const int rounds = task_floors.empty() ? 3 : 4;
  for (int round = 0; round < rounds; ++round) {
    const std::vector<Candidate> candidates = ErrorProbeCandidates(*front, check.floor_sqnr_db);
    if (candidates.empty()) break;
    absl::StatusOr<std::vector<ErrorProbe>> measured = measure(candidates);
    if (!measured.ok()) {
      check.measurement = measured.status();
      break;
    }
    check.probes.insert(check.probes.end(), measured->begin(), measured->end());
    double factor = ErrorFactor(*measured);
    // Within 1 dB the front stands; errors found over-predicted after a first scaling stay so
    // (the safe side).
    if (std::fabs(10 * std::log10(factor)) <= 1 || (round > 0 && factor < 1)) factor = 1;
    // A probe below a task floor: the floor goes 1 dB above its prediction (as scaled now), so
    // no candidate predicted as close to the error it measured is offered again.
    double floor = check.floor_sqnr_db;
    std::vector<std::string> why;
    for (const ErrorProbe& p : *measured) {
      const std::vector<std::string> missed = MissedFloors(p, task_floors);
      if (missed.empty() || p.predicted <= 0) continue;
      floor = std::max(floor, SqnrDb(p.predicted * factor) + 1);
      why.push_back(absl::StrCat(p.plan, ": ", absl::StrJoin(missed, ", ")));
    }
    if (factor == 1 && floor == check.floor_sqnr_db) break;
    if (factor != 1) {
      ScaleErrors(factor, problem);
      check.factors.push_back(factor);
    }
    if (floor > check.floor_sqnr_db) {
      check.raised.push_back(
          absl::StrFormat("the SQNR floor raised to %.1f dB, as measured exports missed a task floor (%s)", floor,
                          absl::StrJoin(why, "; ")));
      check.floor_sqnr_db = floor;
    }
    absl::StatusOr<Front> again = rerun(round, check.floor_sqnr_db);
    if (!again.ok()) return again.status();
    *front = *std::move(again);
  }
  // A floor on a metric no export measured (an empty mask on every calibration input) held
  // nothing back: say so rather than let it read as met.
  std::vector<std::string> notes = check.raised;
  for (const TaskFloor& f : task_floors) {
    const bool measured = std::any_of(check.probes.begin(), check.probes.end(),
                                      [&](const ErrorProbe& p) { return p.metrics.count(f.metric) > 0; });
    if (!check.probes.empty() && !measured) {
      check.unmeasured_floors.push_back(f.metric);
      notes.push_back(absl::StrCat("the floor on ", f.metric, " was not checked: no export measured it on the ",
                                   "calibration inputs (nothing there for it to compare, e.g. an empty mask); ",
                                   "calibrate on inputs that show what the output finds"));
    }
  }
  problem->error_calibration = DescribeErrorCalibration(check.factors, check.probes, notes);
  return check;
}

}  // namespace squeeze::search
