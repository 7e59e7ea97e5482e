// squeeze-bench-front-fidelity: is a front's predicted SQNR what its exports measure? For each real
// model it does what a search on `host` does — sensitivities on the calibration inputs, the option
// table, the exact search with the default 10 dB floor, then the check of the predicted errors
// against exports of candidates near the floor (search::CheckErrors, up to three rounds of scaling
// and searching again) — and then exports candidates spread along the final front through
// runtime::ExportAndVerify and runs them on the calibration inputs. Reports, per model and over
// all: how many exported candidates measured at least their predicted SQNR minus 1 dB (the safe
// side), with the check and with the predictions as they were before it; the Spearman rank
// correlation of predicted and measured error; and the median measured / predicted error.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "bench/common/bench_models.h"
#include "bench/common/problem.h"
#include "bench/common/stats.h"
#include "bench/common/timing.h"
#include "common/files.h"
#include "device_profiles/cost_model.h"
#include "device_profiles/host.h"
#include "model/loader.h"
#include "runtime/calibration.h"
#include "runtime/sensitivity.h"
#include "runtime/session.h"
#include "runtime/shape_probe.h"
#include "runtime/verify.h"
#include "search/engine/exact.h"
#include "search/engine/polish.h"
#include "search/problem/error_calibration.h"
#include "search/problem/plan.h"
#include "search/problem/problem.h"

namespace {

namespace dp = squeeze::device_profiles;
namespace model = squeeze::model;
namespace runtime = squeeze::runtime;
namespace search = squeeze::search;
using squeeze::bench::Clock;
using squeeze::bench::Since;

constexpr double kFloorDb = 10;

// What a plan's predicted error is made of in a problem's table: the weights' quantization, the
// activations' and pruning's terms.
struct Terms {
  double weights = 0, activations = 0, pruning = 0;
};

// One exported candidate of a final front.
struct Exported {
  std::string plan;
  double predicted = 0;         // relative error, the checked (scaled) table's
  double predicted_before = 0;  // the table's before the check
  double measured = 0;          // over the outputs by their weights (model/output_weights.h)
  std::vector<runtime::OutputFidelity> outputs;
  Terms terms;         // of predicted_before
  std::string pruned;  // PrunedJson of the plan
};

using squeeze::bench::Median;
using squeeze::bench::Spearman;

struct Score {
  int exported = 0;
  int safe = 0;         // measured SQNR >= predicted - 1 dB, with the check
  int safe_before = 0;  // the same against the predictions before it
  double spearman = 0;
  double median_ratio = 0, median_ratio_before = 0;  // measured / predicted error
};

Score ScoreOf(const std::vector<Exported>& rows) {
  Score s;
  std::vector<double> predicted, measured, ratio, ratio_before;
  for (const Exported& e : rows) {
    ++s.exported;
    s.safe += search::SqnrDb(e.measured) >= search::SqnrDb(e.predicted) - 1 ? 1 : 0;
    s.safe_before += search::SqnrDb(e.measured) >= search::SqnrDb(e.predicted_before) - 1 ? 1 : 0;
    predicted.push_back(e.predicted);
    measured.push_back(e.measured);
    if (e.predicted > 0) ratio.push_back(e.measured / e.predicted);
    if (e.predicted_before > 0) ratio_before.push_back(e.measured / e.predicted_before);
  }
  s.spearman = Spearman(predicted, measured);
  s.median_ratio = Median(ratio);
  s.median_ratio_before = Median(ratio_before);
  return s;
}

// Per graph output, over a model's exports: how its own measured error ranks with the predicted
// (weighted) one, its median measured / predicted, and the worst value of each task metric.
std::string OutputsJson(const std::vector<Exported>& rows) {
  if (rows.empty()) return "[]";
  std::string out;
  for (size_t o = 0; o < rows.front().outputs.size(); ++o) {
    std::vector<double> predicted, measured, ratio;
    std::map<std::string, double> worst;
    for (const Exported& e : rows) {
      if (o >= e.outputs.size()) continue;
      const runtime::OutputFidelity& f = e.outputs[o];
      predicted.push_back(e.predicted);
      measured.push_back(f.relative_error);
      if (e.predicted > 0) ratio.push_back(f.relative_error / e.predicted);
      for (const auto& [metric, value] : f.metrics) {
        auto [it, added] = worst.emplace(metric, value);
        if (!added) it->second = std::min(it->second, value);
      }
    }
    std::string metrics;
    for (const auto& [metric, value] : worst) {
      metrics += fmt::format("{}\"{}\":{:.4f}", metrics.empty() ? "" : ",", metric, value);
    }
    const runtime::OutputFidelity& first = rows.front().outputs[o];
    out += fmt::format(
        "{}{{\"name\":\"{}\",\"kind\":\"{}\",\"weight\":{:.4f},\"spearman\":{:.4f},"
        "\"median_measured_over_predicted\":{:.4g},\"worst_task_metrics\":{{{}}}}}",
        out.empty() ? "" : ",", first.name, std::string(runtime::OutputKindName(first.kind)), first.weight,
        Spearman(predicted, measured), Median(ratio), metrics);
  }
  return "[" + out + "]";
}

std::string ScoreJson(const Score& s) {
  return fmt::format(
      "\"exported\":{},\"safe_side\":{},\"safe_side_share\":{:.4f},\"safe_side_before_check\":{},"
      "\"safe_side_share_before_check\":{:.4f},\"spearman\":{:.4f},\"median_measured_over_predicted\":{:.4g},"
      "\"median_measured_over_predicted_before_check\":{:.4g}",
      s.exported, s.safe, s.exported ? static_cast<double>(s.safe) / s.exported : 0, s.safe_before,
      s.exported ? static_cast<double>(s.safe_before) / s.exported : 0, s.spearman, s.median_ratio,
      s.median_ratio_before);
}

// Up to `count` of `front`'s candidates with a predicted error above 0, evenly spread over the
// front ordered by predicted error.
std::vector<search::Candidate> Spread(const search::Front& front, int count) {
  std::vector<search::Candidate> lossy;
  for (const search::Candidate& c : front.candidates) {
    if (c.values.error > 0) lossy.push_back(c);
  }
  std::sort(lossy.begin(), lossy.end(),
            [](const search::Candidate& a, const search::Candidate& b) { return a.values.error < b.values.error; });
  if (static_cast<int>(lossy.size()) <= count) return lossy;
  std::vector<search::Candidate> out;
  for (int k = 0; k < count; ++k) {
    const size_t at = static_cast<size_t>(std::llround(static_cast<double>(k) * (lossy.size() - 1) / (count - 1)));
    out.push_back(lossy[at]);
  }
  return out;
}

// A plan's Terms in `p`'s table.
Terms TermsOf(const search::Problem& p, const search::Choice& choice) {
  Terms t;
  for (size_t l = 0; l < choice.size(); ++l) {
    const search::OptionDetail& d = p.details[l][choice[l]];
    t.activations += d.activation_error;
    t.pruning += d.pruning_error;
    t.weights += p.table.layers[l].options[choice[l]].error - d.activation_error - d.pruning_error;
  }
  return t;
}

// The layers a plan prunes, as JSON: each one's name, pattern, ratio and predicted pruning term
// (before the check), so a plan that measures far from its prediction can be traced to them.
std::string PrunedJson(const search::Problem& p, const search::Choice& choice) {
  std::string out;
  for (size_t l = 0; l < choice.size(); ++l) {
    const search::OptionDetail& d = p.details[l][choice[l]];
    if (d.option.prune_ratio <= 0) continue;
    out += fmt::format("{}{{\"layer\":\"{}\",\"pattern\":\"{}\",\"ratio\":{:.3f},\"predicted_error\":{:.4g}}}",
                       out.empty() ? "" : ",", p.table.layers[l].name, std::string(dp::SparsityName(d.option.pattern)),
                       d.option.prune_ratio, d.pruning_error);
  }
  return "[" + out + "]";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Predicted vs measured SQNR of a front's exported candidates, with the check of the predicted errors against "
      "exports near the floor that a search runs, on six real models (synthetic calibration inputs, as a search "
      "without --calibration, unless --image gives a model its own)"};
  const std::string models_dir = std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/";
  std::vector<std::string> model_args;
  int exports = 12, threads = 2, samples = 2;
  uint64_t seed = 1;
  double bandwidth_gbps = 30;  // about what this machine measures (31-35 GB/s)
  bool json = false;
  app.add_option("--model", model_args,
                 "LABEL:FILE[:INPUT=D0,D1,...] a model to check (repeatable; default: PP-OCRv4 det, rec, PP-OCR cls, "
                 "UltraFace, a face liveness classifier and openWakeWord's embedding)");
  app.add_option("--exports", exports, "candidates of each final front to export and run")
      ->check(CLI::Range(2, 200))
      ->capture_default_str();
  std::vector<std::string> image_args;
  app.add_option("--image", image_args,
                 "LABEL=FILE: an 8-bit PPM image as a calibration sample of the model LABEL instead of synthetic "
                 "ones (repeatable; one 3-channel image input of its size, normalized as PP-OCR does)");
  app.add_option("--samples", samples,
                 "synthetic calibration samples, at least (more for small outputs, as a search takes them)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--threads", threads, "ONNX Runtime threads")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--seed", seed, "seed of the calibration inputs and the sensitivity noise")->capture_default_str();
  app.add_option("--memory-bandwidth-gbps", bandwidth_gbps,
                 "the host's memory bandwidth for its spec roofline, GB/s (0: measure it, as squeezed does at start; "
                 "then the fronts move with the measurement from run to run)")
      ->check(CLI::Range(0.0, 10000.0))
      ->capture_default_str();
  app.add_flag("--json", json, "print one JSON object");
  CLI11_PARSE(app, argc, argv);
  auto fail = [](const auto& what) {
    std::cerr << "squeeze-bench-front-fidelity: " << what << "\n";
    return 1;
  };
  std::map<std::string, std::vector<std::string>> images;  // model label -> its calibration images
  for (const std::string& a : image_args) {
    const size_t eq = a.find('=');
    if (eq == std::string::npos || eq == 0) return fail(fmt::format("--image {}: give LABEL=FILE", a));
    images[a.substr(0, eq)].push_back(a.substr(eq + 1));
  }
  std::vector<squeeze::bench::ModelSpec> specs = squeeze::bench::DefaultModels(models_dir);
  if (!model_args.empty()) {
    specs.clear();
    for (const std::string& a : model_args) {
      absl::StatusOr<squeeze::bench::ModelSpec> spec = squeeze::bench::ParseModelSpec(a);
      if (!spec.ok()) return fail(spec.status());
      specs.push_back(*spec);
    }
  }
  // The host's memory bandwidth is measured at each start and shapes the spec roofline, so the
  // fronts (and every figure here) would move from run to run with it: fixed unless asked.
  dp::HostFacts facts = dp::ReadHostFacts(runtime::OrtVersion());
  if (bandwidth_gbps > 0) facts.memory_bandwidth_bytes_per_s = bandwidth_gbps * 1e9;
  absl::StatusOr<dp::Device> host = dp::HostDevice(facts);
  if (!host.ok()) return fail(host.status());
  // Latency does not enter the error; the host's spec figures shape the front as on any device.
  absl::StatusOr<std::unique_ptr<dp::DeviceCostModel>> cost = dp::DeviceCostModel::Create(*host, {});
  if (!cost.ok()) return fail(cost.status());

  std::vector<Exported> all;
  std::string models_json;
  for (const squeeze::bench::ModelSpec& spec : specs) {
    const Clock::time_point start = Clock::now();
    absl::StatusOr<std::string> bytes = squeeze::common::ReadFile(spec.file);
    if (!bytes.ok()) return fail(fmt::format("{} (run `make deps` to fetch the models)", bytes.status().ToString()));
    absl::StatusOr<model::AnalyzeOptions> analyze = squeeze::bench::AnalyzeOptionsFor(spec);
    if (!analyze.ok()) return fail(analyze.status());
    absl::StatusOr<model::LoadedModel> loaded = model::LoadModel(*bytes, *analyze);
    if (!loaded.ok()) return fail(loaded.status());
    auto session = runtime::Session::Create(*bytes);
    if (!session.ok()) return fail(session.status());
    const auto own_images = images.find(spec.label);
    absl::StatusOr<runtime::CalibrationSet> calibration;
    std::string calibrated_on;
    if (own_images == images.end()) {
      // As a search takes them: more synthetic samples for a model with small outputs.
      absl::StatusOr<int> count = runtime::SyntheticSampleCount(loaded->analysis, **session, samples, seed);
      if (!count.ok()) return fail(count.status());
      calibration = runtime::SyntheticCalibration(loaded->analysis, (*session)->inputs(), *count, seed);
      calibrated_on = fmt::format("{} synthetic N(0, 1) samples, seed {}", *count, seed);
    } else {
      calibration = runtime::CalibrationFromImages(loaded->analysis, (*session)->inputs(), own_images->second);
      calibrated_on = fmt::format("{} images", own_images->second.size());
    }
    if (!calibration.ok()) return fail(calibration.status());
    runtime::SensitivityOptions sensitivity_options;
    sensitivity_options.threads = threads;
    sensitivity_options.seed = seed;
    auto sensitivity = runtime::MeasureSensitivity(*loaded, *calibration, sensitivity_options);
    if (!sensitivity.ok()) return fail(sensitivity.status());

    absl::StatusOr<search::Problem> problem = squeeze::bench::ProblemOn(*loaded, *host, **cost, *sensitivity, threads);
    if (!problem.ok()) return fail(problem.status());
    const search::Problem before = *problem;
    search::SearchSpec engine_spec;
    engine_spec.objectives = {search::Objective::kLatency, search::Objective::kSize, search::Objective::kError};
    engine_spec.constraints.max_error = search::ErrorOfSqnrDb(kFloorDb);
    engine_spec.max_candidates = 200;
    auto solve = [&]() -> absl::StatusOr<search::Front> {
      absl::StatusOr<search::Front> f = search::SolveExact(problem->table, engine_spec);
      if (!f.ok()) return f;
      return search::Polish(problem->table, engine_spec, *std::move(f), search::PolishOptions{});
    };
    absl::StatusOr<search::Front> front = solve();
    if (!front.ok()) return fail(front.status());

    runtime::ExportCheckOptions check;
    check.ranges.threads = threads;
    check.verify.threads = threads;
    check.verify.measure_latency = false;
    check.export_options.shape_probe = analyze->shape_probe;
    auto measure =
        [&](const std::vector<search::Candidate>& candidates) -> absl::StatusOr<std::vector<search::ErrorProbe>> {
      std::vector<search::ErrorProbe> out;
      for (const search::Candidate& c : candidates) {
        auto exported =
            runtime::ExportAndVerify(*loaded, *bytes, search::ExportPlanOf(*problem, c.choice), *calibration, check);
        if (!exported.ok()) return exported.status();
        out.push_back(
            {search::PlanSummary(*problem, c.choice), c.values.error, exported->verification.relative_error, {}});
      }
      return out;
    };
    absl::StatusOr<search::ErrorCheck> checked = search::CheckErrors(
        kFloorDb, {}, measure, [&](int, double) { return solve(); }, &*problem, &*front);
    if (!checked.ok()) return fail(checked.status());
    if (!checked->measurement.ok()) return fail(checked->measurement);

    std::vector<Exported> rows;
    for (const search::Candidate& c : Spread(*front, exports)) {
      auto exported =
          runtime::ExportAndVerify(*loaded, *bytes, search::ExportPlanOf(*problem, c.choice), *calibration, check);
      if (!exported.ok()) return fail(fmt::format("{}: {}", spec.label, exported.status().ToString()));
      absl::StatusOr<search::ObjectiveValues> was = search::Evaluate(before.table, c.choice);
      if (!was.ok()) return fail(was.status());
      rows.push_back({search::PlanSummary(*problem, c.choice), c.values.error, was->error,
                      exported->verification.relative_error, exported->verification.outputs, TermsOf(before, c.choice),
                      PrunedJson(before, c.choice)});
    }
    all.insert(all.end(), rows.begin(), rows.end());
    const Score score = ScoreOf(rows);
    const double seconds = Since(start);
    if (!json) {
      std::cout << fmt::format(
          "{:<14} {:2d} exported: {:2d} at or above predicted - 1 dB ({:2d} before the check), Spearman {:.3f}, "
          "measured / predicted error {:.3g} ({:.3g} before); {:.0f} s\n  {}\n",
          spec.label, score.exported, score.safe, score.safe_before, score.spearman, score.median_ratio,
          score.median_ratio_before, seconds, problem->error_calibration);
    }
    // An exact export (no error) has no finite SQNR: null.
    auto db = [](double error) {
      const double v = search::SqnrDb(error);
      return std::isfinite(v) ? fmt::format("{:.3f}", v) : std::string("null");
    };
    std::string rows_json;
    for (const Exported& e : rows) {
      std::string outputs;
      for (const runtime::OutputFidelity& f : e.outputs) {
        std::string metrics;
        for (const auto& [metric, value] : f.metrics) {
          metrics += fmt::format("{}\"{}\":{:.4f}", metrics.empty() ? "" : ",", metric, value);
        }
        outputs += fmt::format("{}{{\"name\":\"{}\",\"sqnr_db\":{},\"metrics\":{{{}}}}}", outputs.empty() ? "" : ",",
                               f.name, db(f.relative_error), metrics);
      }
      rows_json += fmt::format(
          "{}{{\"plan\":\"{}\",\"predicted_sqnr_db\":{},\"predicted_sqnr_db_before_check\":{},"
          "\"predicted_terms_before_check\":{{\"weights\":{:.4g},\"activations\":{:.4g},\"pruning\":{:.4g}}},"
          "\"pruned\":{},\"measured_sqnr_db\":{},\"outputs\":[{}]}}",
          rows_json.empty() ? "" : ",", e.plan, db(e.predicted), db(e.predicted_before), e.terms.weights,
          e.terms.activations, e.terms.pruning, e.pruned, db(e.measured), outputs);
    }
    models_json += fmt::format(
        "{}{{\"model\":\"{}\",\"file\":\"{}\",\"calibration\":\"{}\",\"layers\":{},{},\"outputs\":{},"
        "\"error_calibration\":\"{}\",\"seconds\":{:.1f},\"candidates\":[{}]}}",
        models_json.empty() ? "" : ",", spec.label, spec.file.substr(spec.file.rfind('/') + 1), calibrated_on,
        loaded->analysis.layers.size(), ScoreJson(score), OutputsJson(rows), problem->error_calibration, seconds,
        rows_json);
  }
  const Score overall = ScoreOf(all);
  if (json) {
    std::cout << fmt::format(
        "{{{},\"floor_db\":{},\"calibration\":\"{} synthetic N(0, 1) samples, seed {}, unless a model says "
        "otherwise\",\"threads\":{},"
        "\"memory_bandwidth_gbps\":{:.3g},\"onnxruntime\":\"{}\",\"models\":[{}]}}\n",
        ScoreJson(overall), kFloorDb, samples, seed, threads, host->memory_bandwidth_bytes_per_s / 1e9,
        runtime::OrtVersion(), models_json);
    return 0;
  }
  std::cout << fmt::format("all {} exported: {} at or above predicted - 1 dB ({:.0f}%; {:.0f}% before the check)\n",
                           overall.exported, overall.safe,
                           overall.exported ? 100.0 * overall.safe / overall.exported : 0,
                           overall.exported ? 100.0 * overall.safe_before / overall.exported : 0);
  return 0;
}
