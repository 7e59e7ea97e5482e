// Predicted error calibrated against measured exports (DESIGN.md §3, issue 15 "safe side").
//
// The search predicts a candidate's output error as the sum of its layers' terms, s_i · D_i(o)
// plus an activation term, each from one layer compressed alone. In a network the errors of many
// compressed layers compound, cancel or saturate, so the sum can be several times off either way
// (PP-OCRv4 det: ~8x above what its exports measure; M-LSD: a plan predicted 12.5 dB measured
// 1.5 dB, while uniform int8, predicted -3 dB, measured 1.3 dB: the sum overshoots where the
// output is already lost and undershoots near the floor). So the calibration looks where the
// answer is decided: after a search, a few of its own candidates near the SQNR floor are exported
// and run on the calibration inputs, every option's predicted error is scaled by the largest
// measured / predicted ratio among them, and the search runs again on the scaled table.
#ifndef SQUEEZE_SEARCH_PROBLEM_ERROR_CALIBRATION_H_
#define SQUEEZE_SEARCH_PROBLEM_ERROR_CALIBRATION_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "search/engine/front.h"
#include "search/engine/option_table.h"
#include "search/problem/problem.h"

namespace squeeze::search {

// The candidates of `front` worth exporting to check its predicted errors: for each target SQNR
// (`floor_sqnr_db`, 5, 10 and 20 dB above it) the candidate predicted nearest at or above it, each
// once (the plans near the floor differ most in what their error is made of); candidates predicted exact are left out.
// Fewer when the front has fewer.
std::vector<Candidate> ErrorProbeCandidates(const Front& front, double floor_sqnr_db);

// A floor on a task metric of the outputs that count (e.g. top-1 agreement >= 0.99), held on
// what exports measure: predictions say nothing of task metrics.
struct TaskFloor {
  std::string metric;  // as runtime/output_fidelity.h names it: "top-1 agreement", "mask IoU", ...
  double min = 0;
};

// The metric an output's own SQNR goes by among the task metrics (in dB, not a share): a floor on
// it holds every output that counts above it.
inline constexpr char kOutputSqnrMetric[] = "output SQNR dB";

// A candidate exported and run: its predicted relative error (the table's, when it was probed),
// the relative output error its file measured on the calibration inputs (weighted over the
// outputs as model/output_weights.h says), and the worst value each task metric measured over
// the outputs that count, by metric name.
struct ErrorProbe {
  std::string plan;  // what it was, in words (PlanSummary)
  double predicted = 0;
  double measured = 0;
  std::map<std::string, double> metrics;
};

// The floors `probe` measured below, in words ("top-1 agreement 0.970 < 0.99"); empty when it
// keeps them all (a metric it did not measure keeps its floor).
std::vector<std::string> MissedFloors(const ErrorProbe& probe, const std::vector<TaskFloor>& floors);

// The largest measured / predicted ratio of `probes` (those predicted above 0), within
// [0.1, 1000]; 1 with none.
double ErrorFactor(const std::vector<ErrorProbe>& probes);

// Multiplies every option's predicted error (LayerOption::error), and the terms it is made of
// (OptionDetail), by `factor`.
void ScaleErrors(double factor, Problem* problem);

// "predicted errors x 7.8, then x 2 to match 5 candidates near the SQNR floor exported and run on
// the calibration inputs (...): 16×fp16, ... measured 1.3 dB (predicted 10.2); ...", or with no
// factor "predicted errors kept: ...". `factors` holds the factor of each round that scaled,
// `probes` every probe of every round; empty with no probe. `raised` says how task floors raised
// the SQNR floor, when they did.
std::string DescribeErrorCalibration(const std::vector<double>& factors, const std::vector<ErrorProbe>& probes,
                                     const std::vector<std::string>& raised = {});

// What CheckErrors did: the factor of each round that scaled, every probe, the SQNR floor the
// front ends with (raised above the floor asked for where probes missed a task floor) and why it
// stopped early when a measurement failed (the errors keep what was scaled before it).
struct ErrorCheck {
  std::vector<double> factors;
  std::vector<ErrorProbe> probes;
  double floor_sqnr_db = 0;
  std::vector<std::string> raised;  // each raise of the floor, in words
  // The task floors' metrics no probe measured (an empty mask on every calibration input): those
  // floors held nothing back, and the error calibration's text says so.
  std::vector<std::string> unmeasured_floors;
  absl::Status measurement;
};

// Exports and runs candidates (one ErrorProbe per candidate, in order).
using MeasureProbes = std::function<absl::StatusOr<std::vector<ErrorProbe>>(const std::vector<Candidate>&)>;
// Searches `problem`'s table again after round `round` scaled it, with candidates held to
// `floor_sqnr_db`.
using Rerun = std::function<absl::StatusOr<Front>(int round, double floor_sqnr_db)>;

// The check after a search: `front`'s ErrorProbeCandidates at the SQNR floor measured by `measure`.
// Where the largest measured / predicted ratio is more than 1 dB off (after the first round: more
// than 1 dB worse), every option's error is scaled by it; where a probe misses a task floor, the
// SQNR floor is raised 1 dB above that probe's (scaled) prediction; either way `rerun` replaces
// `front`. Three rounds, four with task floors. Writes problem->error_calibration. An error only
// when a rerun fails.
absl::StatusOr<ErrorCheck> CheckErrors(double floor_sqnr_db, const std::vector<TaskFloor>& task_floors,
                                       const MeasureProbes& measure, const Rerun& rerun, Problem* problem,
                                       Front* front);

}  // namespace squeeze::search

#endif  // SQUEEZE_SEARCH_PROBLEM_ERROR_CALIBRATION_H_
