#include "server/measure_picks.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "device_profiles/profiler.h"
#include "runtime/session.h"
#include "runtime/verify.h"
#include "search/engine/option_table.h"
#include "search/problem/plan.h"
#include "server/proto_conversion.h"
#include "server/recommend.h"

namespace squeeze::server {
namespace {

// One model to export and time: a front candidate (by position) or a uniform baseline.
struct Entry {
  std::string label;                     // "#3", "uniform int8"
  int position = -1;                     // in front->candidates(); -1 for a baseline
  std::string baseline;                  // the baseline's tag
  std::optional<search::Choice> choice;  // baselines only
  search::ObjectiveValues values;        // baselines only: the choice's predictions
  double predicted_ms = 0;
  std::vector<model::LayerPlan> plan;
  runtime::VerifiedExport exported;
  runtime::Timing timing;
};

// The positions of the picks Recommend names, then of the `extra` predicted-fastest others.
std::vector<int> PositionsToMeasure(const v1::DeviceFront& front, const MeasurePicksInputs& in) {
  std::vector<int> positions;
  auto add = [&](int index) {
    for (int p = 0; p < front.candidates_size(); ++p) {
      if (front.candidates(p).index() != index) continue;
      if (std::find(positions.begin(), positions.end(), p) == positions.end()) positions.push_back(p);
    }
  };
  for (const v1::Recommendation& r : Recommend(front, in.constraints, in.app_budget_bytes)) add(r.candidate().index());
  std::vector<int> by_latency(front.candidates_size());
  for (int p = 0; p < front.candidates_size(); ++p) by_latency[p] = p;
  std::sort(by_latency.begin(), by_latency.end(), [&](int a, int b) {
    return front.candidates(a).predicted_latency_ms() < front.candidates(b).predicted_latency_ms();
  });
  int extra = 0;
  for (int p : by_latency) {
    if (extra >= in.extra_fastest) break;
    if (std::find(positions.begin(), positions.end(), p) != positions.end()) continue;
    positions.push_back(p);
    ++extra;
  }
  return positions;
}

// Exports through the tested path, outputs compared with the original's; no timing (the picks
// are timed together, interleaved).
runtime::ExportCheckOptions CheckOptionsFor(const ExportRun& run) {
  runtime::ExportCheckOptions check;
  check.ranges.threads = run.threads;
  check.verify.threads = run.threads;
  check.verify.measure_latency = false;
  check.export_options.shape_probe = run.shape_probe;
  check.export_options.flavour = run.flavour;
  if (run.layer_inputs != nullptr) check.export_options.layer_inputs = *run.layer_inputs;
  check.verify.output_weights = run.output_weights;
  return check;
}

v1::MeasuredFigures FiguresOf(const Entry& e) {
  v1::MeasuredFigures f;
  f.set_sqnr_db(e.exported.verification.sqnr_db);
  f.set_cosine(e.exported.verification.cosine);
  f.set_latency_measured(true);
  f.set_latency_ms(e.timing.median_s * 1e3);
  f.set_file_bytes(e.exported.exported.report.file_bytes);
  f.set_packed_size_bytes(e.exported.exported.report.packed_model_bytes);
  f.set_synthetic_calibration(e.exported.verification.synthetic_calibration);
  for (const runtime::OutputFidelity& o : e.exported.verification.outputs) *f.add_outputs() = ToProto(o);
  return f;
}

}  // namespace

absl::StatusOr<std::vector<device_profiles::ModelLatency>> MeasureModelHere(
    absl::string_view model_bytes, absl::string_view model_name, const std::string& sha256,
    const std::vector<runtime::Tensor>& inputs, int threads, int channel_alignment, double min_time_s,
    const std::function<void(double)>& on_progress, std::vector<std::string>* notes) {
  device_profiles::ProfilerOptions options;
  device_profiles::ModelToTime model;
  model.path = std::string(model_name);
  model.inputs = inputs;  // the search's calibration inputs: a mode input keeps the value it was given
  options.threads = threads;
  options.channel_alignment = channel_alignment;
  options.model_timing.warmup = 1;
  options.model_timing.min_repeats = 5;
  options.model_timing.min_time_s = min_time_s;
  runtime::SessionOptions session_options;
  session_options.intra_op_threads = threads;  // not pinned: the server's threads are not ours to pin
  std::mt19937_64 rng(1);
  if (on_progress) on_progress(0);
  absl::StatusOr<std::vector<device_profiles::ModelLatency>> timed = device_profiles::TimeModel(
      model, model_bytes, std::string(model_name), sha256, session_options, options, &rng, notes);
  if (!timed.ok()) return timed.status();
  std::vector<device_profiles::ModelLatency> out = *std::move(timed);
  for (device_profiles::ModelLatency& m : out) {
    m.key = absl::StrCat(m.key, " (timed before this search)");
    m.source = absl::StrCat("measured by squeezed on this machine before the search; ", m.source);
  }
  if (on_progress) on_progress(1);
  return out;
}

absl::StatusOr<std::vector<search::ErrorProbe>> MeasureErrorProbes(
    const ExportRun& run, const std::vector<search::Candidate>& candidates,
    std::map<std::string, search::ErrorProbe>* measured) {
  if (run.model == nullptr || run.calibration == nullptr || run.problem == nullptr || measured == nullptr) {
    return absl::InvalidArgumentError("measuring error probes needs the model, its problem and calibration samples");
  }
  std::vector<search::ErrorProbe> out;
  for (const search::Candidate& c : candidates) {
    if (run.cancelled != nullptr && run.cancelled->load()) return absl::CancelledError("cancelled");
    const std::vector<model::LayerPlan> plan = search::ExportPlanOf(*run.problem, c.choice);
    std::string key;
    for (const model::LayerPlan& p : plan) {
      absl::StrAppend(&key, p.weight_bits, "/", p.activation_bits, "/", static_cast<int>(p.pattern), "/",
                      absl::StrFormat("%.6f", p.prune_ratio), ";");
    }
    const std::string summary = search::PlanSummary(*run.problem, c.choice);
    auto known = measured->find(key);
    if (known == measured->end()) {
      absl::StatusOr<runtime::VerifiedExport> exported =
          runtime::ExportAndVerify(*run.model, run.model_bytes, plan, *run.calibration, CheckOptionsFor(run));
      if (!exported.ok()) {
        return absl::Status(exported.status().code(),
                            absl::StrCat("exporting ", summary, ": ", exported.status().message()));
      }
      search::ErrorProbe probe;
      probe.measured = exported->verification.relative_error;
      for (const runtime::OutputFidelity& o : exported->verification.outputs) {
        if (o.weight <= 0) continue;
        std::vector<std::pair<std::string, double>> metrics = o.metrics;
        metrics.emplace_back(search::kOutputSqnrMetric, o.sqnr_db);
        for (const auto& [metric, value] : metrics) {
          auto [it, added] = probe.metrics.emplace(metric, value);
          if (!added) it->second = std::min(it->second, value);
        }
      }
      known = measured->emplace(key, std::move(probe)).first;
    }
    search::ErrorProbe probe = known->second;
    probe.plan = summary;
    probe.predicted = c.values.error;
    out.push_back(std::move(probe));
  }
  return out;
}

namespace {

// The front's picks (and the fastest beyond them) and the uniform baselines, each with its plan.
absl::StatusOr<std::vector<Entry>> EntriesToMeasure(const MeasurePicksInputs& in, const v1::DeviceFront& front) {
  std::vector<Entry> entries;
  for (int p : PositionsToMeasure(front, in)) {
    Entry e;
    e.label = absl::StrCat("#", front.candidates(p).index());
    e.position = p;
    e.predicted_ms = front.candidates(p).predicted_latency_ms();
    absl::StatusOr<std::vector<model::LayerPlan>> plan =
        ExportPlanFromProto(front.candidates(p), in.run.model->analysis);
    if (!plan.ok()) return plan.status();
    e.plan = *std::move(plan);
    entries.push_back(std::move(e));
  }
  for (const auto& [w, a, name] : {std::make_tuple(32, 32, "fp32"), std::make_tuple(8, 8, "uniform int8")}) {
    std::optional<search::Choice> choice = search::UniformChoice(*in.run.problem, w, a);
    if (!choice) continue;
    absl::StatusOr<search::ObjectiveValues> values = search::Evaluate(in.run.problem->table, *choice);
    if (!values.ok()) return values.status();
    Entry e;
    e.values = *values;
    e.predicted_ms = values->latency * 1e3;
    e.label = name;
    e.baseline = name;
    e.choice = choice;
    e.plan = search::ExportPlanOf(*in.run.problem, *choice);
    entries.push_back(std::move(e));
  }
  return entries;
}

// Each entry exported through the tested path, its outputs compared with the original's, then
// all of them timed together, in turns.
absl::Status ExportAndTime(const MeasurePicksInputs& in, std::vector<Entry>* entries) {
  auto cancelled = [&] { return in.run.cancelled != nullptr && in.run.cancelled->load(); };
  const runtime::ExportCheckOptions check = CheckOptionsFor(in.run);
  const double steps = static_cast<double>(entries->size()) + 1;
  for (size_t k = 0; k < entries->size(); ++k) {
    Entry& e = (*entries)[k];
    if (cancelled()) return absl::CancelledError("cancelled");
    absl::StatusOr<runtime::VerifiedExport> exported =
        runtime::ExportAndVerify(*in.run.model, in.run.model_bytes, e.plan, *in.run.calibration, check);
    if (!exported.ok()) {
      return absl::Status(exported.status().code(),
                          absl::StrCat("exporting ", e.label, ": ", exported.status().message()));
    }
    e.exported = *std::move(exported);
    if (in.on_progress) in.on_progress((k + 1) / steps);
  }
  std::vector<std::unique_ptr<runtime::Session>> sessions;
  std::vector<const runtime::Session*> views;
  runtime::SessionOptions session_options;
  session_options.intra_op_threads = in.run.threads;
  for (const Entry& e : *entries) {
    absl::StatusOr<std::unique_ptr<runtime::Session>> s =
        runtime::Session::Create(e.exported.exported.bytes, session_options);
    if (!s.ok()) return absl::Status(s.status().code(), absl::StrCat("loading ", e.label, ": ", s.status().message()));
    views.push_back(s->get());
    sessions.push_back(*std::move(s));
  }
  if (cancelled()) return absl::CancelledError("cancelled");
  runtime::InterleavedTiming timing;
  timing.warmup = 2;
  timing.rounds = 7;
  timing.round_time_s = 0.05;
  timing.min_time_s = 0.3;
  absl::StatusOr<std::vector<runtime::Timing>> times =
      runtime::TimeInterleaved(views, in.run.calibration->samples.front(), timing);
  if (!times.ok()) return times.status();
  for (size_t k = 0; k < entries->size(); ++k) (*entries)[k].timing = (*times)[k];
  if (in.on_progress) in.on_progress(1);
  return absl::OkStatus();
}

// The measured figures into the front's picks and baselines; a baseline that keeps the limits and
// is faster than every measured pick joins the front. Returns what `measured_picks` says of that.
std::string RecordFigures(const MeasurePicksInputs& in, const std::vector<Entry>& entries, v1::DeviceFront* front) {
  double fastest_candidate = std::numeric_limits<double>::infinity();
  // Only what keeps the limits, its SQNR as measured, counts: Recommend never names the rest.
  for (const Entry& e : entries) {
    if (e.position < 0) continue;
    v1::Candidate& c = *front->mutable_candidates(e.position);
    *c.mutable_measured() = FiguresOf(e);
    if (MeetsConstraints(c, in.constraints, in.app_budget_bytes)) {
      fastest_candidate = std::min(fastest_candidate, e.timing.median_s);
    }
  }
  const Entry* fastest_baseline = nullptr;
  for (const Entry& e : entries) {
    if (e.position >= 0) continue;
    for (v1::Candidate& b : *front->mutable_baselines()) {
      if (!b.tags().empty() && b.tags(0) == e.baseline) *b.mutable_measured() = FiguresOf(e);
    }
    // Only one that keeps the search's limits, its SQNR as measured, may join the front.
    v1::Candidate as_measured = ToProto(*in.run.problem, search::Candidate{*e.choice, e.values}, false);
    *as_measured.mutable_measured() = FiguresOf(e);
    if (MeetsConstraints(as_measured, in.constraints, in.app_budget_bytes) && e.timing.median_s < fastest_candidate &&
        (fastest_baseline == nullptr || e.timing.median_s < fastest_baseline->timing.median_s)) {
      fastest_baseline = &e;
    }
  }
  if (fastest_baseline == nullptr) return "";
  // Faster than every measured candidate: it joins the front, so the fastest pick is never slower.
  v1::Candidate joiner =
      ToProto(*in.run.problem, search::Candidate{*fastest_baseline->choice, fastest_baseline->values}, true);
  joiner.set_index(front->candidates_size());
  joiner.add_tags(fastest_baseline->baseline);
  joiner.add_tags("measured faster than every measured candidate that keeps the limits");
  *joiner.mutable_measured() = FiguresOf(*fastest_baseline);
  *front->add_candidates() = std::move(joiner);
  return absl::StrFormat(
      "; %s measured faster than every measured candidate that keeps the limits and joins the front as #%d",
      fastest_baseline->label, front->candidates_size() - 1);
}

}  // namespace

absl::Status MeasurePicks(const MeasurePicksInputs& in, v1::DeviceFront* front) {
  if (in.run.model == nullptr || in.run.calibration == nullptr || in.run.problem == nullptr ||
      in.run.calibration->samples.empty()) {
    return absl::InvalidArgumentError("measuring picks needs the model, its problem and calibration samples");
  }
  absl::StatusOr<std::vector<Entry>> entries = EntriesToMeasure(in, *front);
  if (!entries.ok()) return entries.status();
  if (entries->empty()) return absl::OkStatus();
  if (absl::Status s = ExportAndTime(in, &*entries); !s.ok()) return s;
  const std::string joined = RecordFigures(in, *entries, front);
  std::vector<std::string> parts;
  for (const Entry& e : *entries) {
    parts.push_back(absl::StrFormat("%s %.3f ms (predicted %.3f)", e.label, e.timing.median_s * 1e3, e.predicted_ms));
  }
  front->set_measured_picks(absl::StrCat("measured here, ", in.run.threads, " thread", in.run.threads == 1 ? "" : "s",
                                         ", runs interleaved: ", absl::StrJoin(parts, ", "), joined));
  return absl::OkStatus();
}

}  // namespace squeeze::server
