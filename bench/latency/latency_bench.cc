// squeeze-bench-latency: the latency predictor checked against ONNX Runtime on this machine.
//
// For each real model (by default six, DefaultModels) it exports 32 variants through
// model/export.h, every layer at an option the search offers — the model as it is, uniform fp16
// weights / w8a32 / w8a8 / w4a8, output-channel pruning near 25% and 50% (fp32 and w8a8),
// unstructured and 2:4 sparsity, and seeded random per-layer mixes of all of these — times each
// in ONNX Runtime in turns with the model as it is and its uniform w8a8 and w8a32 exports (the
// profile's threads, warm rounds; the three correct for the machine's drift, float, integer and
// weight-only layers apart) and
// predicts it from a device profile measured by squeeze-profile on this machine, exactly as a
// search would (search/problem: Σ layer predictions + the other ops). Two predictions a variant:
//   samples only   — single-op samples, nothing of the model measured;
//   with the model — plus the profile's measured latencies of the model as it is and of its
//                    uniform exports (squeeze-profile --model), which calibrate the predictor.
// Those are not scored (the predictor is calibrated to them): the rest are held out. Reported,
// per model and overall: the share predicted within ±10% and ±5%, and the RMSE of the relative
// error, in percent.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <random>

#include "absl/strings/str_split.h"
#include "bench/common/bench_models.h"
#include "bench/common/timing.h"
#include "common/files.h"
#include "common/sha256.h"
#include "device_profiles/cost_model.h"
#include "device_profiles/profile_file.h"
#include "model/channel_pruning.h"
#include "model/export.h"
#include "model/loader.h"
#include "runtime/calibration.h"
#include "runtime/session.h"
#include "runtime/shape_probe.h"
#include "runtime/verify.h"
#include "search/engine/option_table.h"
#include "search/problem/plan.h"
#include "search/problem/problem.h"

namespace {

namespace dp = squeeze::device_profiles;
namespace model = squeeze::model;
namespace runtime = squeeze::runtime;
namespace search = squeeze::search;
namespace v1 = squeeze::v1;
using squeeze::bench::Clock;
using squeeze::bench::Since;

struct Variant {
  std::string name;
  std::vector<model::LayerPlan> plan;
  // A uniform plan squeeze-profile --model also times ("uniform w8a8", ...): when the profile
  // holds it, the predictor is calibrated to it, so it is scored apart from the held-out ones.
  std::string profiled_as;
};

struct Scored {
  std::string name;
  double measured_ms = 0, spread_ms = 0;  // median, and stddev of the timed runs
  double reference_ms = 0;                // the model as it is, timed in turn with this variant
  double int_reference_ms = 0;            // the uniform w8a8 export, timed in turn with it (0: none)
  double integer_share = 0;               // of predicted_ms, the layers that run on integer activations
  double weight_only_reference_ms = 0;    // the uniform w8a32 export, timed in turn with it (0: none)
  double weight_only_share = 0;           // of predicted_ms, the weight-only integer layers that run float
  double corrected_ms = 0;                // measured_ms at the machine's speed when it was profiled
  double fp32_corrected_ms = 0;           // the same, corrected by the fp32 reference alone
  double predicted_ms = 0;                // with the model's measured latency
  double samples_only_ms = 0;             // from single-op samples alone
  bool calibration_point = false;         // the model as it is, or a uniform plan the profile timed
};

struct Accuracy {
  int variants = 0;
  double within_10pct = 0, within_5pct = 0, rmse_pct = 0, mean_error_pct = 0, max_abs_error_pct = 0;
};

Accuracy Score(const std::vector<double>& predicted, const std::vector<double>& measured) {
  Accuracy a;
  a.variants = static_cast<int>(measured.size());
  if (measured.empty()) return a;
  double squares = 0, sum = 0;
  int within10 = 0, within5 = 0;
  for (size_t i = 0; i < measured.size(); ++i) {
    const double e = (predicted[i] - measured[i]) / measured[i];
    within10 += std::fabs(e) <= 0.10;
    within5 += std::fabs(e) <= 0.05;
    squares += e * e;
    sum += e;
    a.max_abs_error_pct = std::max(a.max_abs_error_pct, 100 * std::fabs(e));
  }
  a.within_10pct = static_cast<double>(within10) / a.variants;
  a.within_5pct = static_cast<double>(within5) / a.variants;
  a.rmse_pct = 100 * std::sqrt(squares / a.variants);
  a.mean_error_pct = 100 * sum / a.variants;
  return a;
}

std::string AccuracyJson(const Accuracy& a) {
  return fmt::format(
      "\"variants\":{},\"within_10pct\":{:.4f},\"within_5pct\":{:.4f},\"rmse_pct\":{:.3f},\"mean_error_pct\":{:.3f},"
      "\"max_abs_error_pct\":{:.3f}",
      a.variants, a.within_10pct, a.within_5pct, a.rmse_pct, a.mean_error_pct, a.max_abs_error_pct);
}

// The option of layer i nearest to a wish: its precision and pattern, the prune ratio closest to
// `ratio` (the search's options keep aligned channel counts); dense at that precision when the
// layer has no such pattern (grouped convolutions, short rows), fp32 when not even that.
model::LayerPlan Nearest(const search::Problem& problem, size_t i, model::LayerPlan wish) {
  const search::OptionDetail* best = nullptr;
  for (int pass = 0; pass < 3 && best == nullptr; ++pass) {
    if (pass == 1) wish.pattern = model::Sparsity::kDense, wish.prune_ratio = 0;
    if (pass == 2) wish = model::LayerPlan{};
    for (const search::OptionDetail& d : problem.details[i]) {
      const model::LayerPlan p = search::LayerPlanOf(d.option);
      if (p.weight_bits != wish.weight_bits || p.activation_bits != wish.activation_bits || p.pattern != wish.pattern) {
        continue;
      }
      if (best == nullptr ||
          std::fabs(p.prune_ratio - wish.prune_ratio) < std::fabs(best->option.prune_ratio - wish.prune_ratio)) {
        best = &d;
      }
    }
  }
  return best != nullptr ? search::LayerPlanOf(best->option) : model::LayerPlan{};
}

// The variants of one model, every layer at an option the search offers: uniform plans, pruning,
// sparsity and seeded random mixes. The fp32 export with half the channels pruned is the plan
// squeeze-profile --model times to calibrate pruned float options (model::UniformChannelPlan at
// the device's `alignment`).
std::vector<Variant> Variants(const search::Problem& problem, const model::LoadedModel& loaded, int alignment,
                              int count, uint64_t seed) {
  const size_t n = problem.details.size();
  using model::LayerPlan;
  using model::Sparsity;
  auto uniform = [&](std::string name, LayerPlan p) {
    Variant v{std::move(name), {}, ""};
    for (size_t i = 0; i < n; ++i) v.plan.push_back(Nearest(problem, i, p));
    return v;
  };
  std::vector<Variant> out;
  out.push_back(uniform("fp32", LayerPlan{}));
  out.push_back(uniform("fp16", LayerPlan{16, 32}));
  out.back().profiled_as = dp::UniformVariantLabel(16, 32);
  out.push_back(uniform("w8a32", LayerPlan{8, 32}));
  out.back().profiled_as = dp::UniformVariantLabel(8, 32);
  out.push_back(uniform("w8a8", LayerPlan{8, 8}));
  out.back().profiled_as = dp::UniformVariantLabel(8, 8);
  out.push_back(uniform("w4a8", LayerPlan{4, 8}));
  out.push_back(uniform("fp32 channel 25%", LayerPlan{32, 32, Sparsity::kOutputChannel, 0.25}));
  out.push_back(
      Variant{"fp32 channel 50%",
              model::UniformChannelPlan(model::AnalyzeChannelPruning(loaded), loaded, LayerPlan{}, 0.5, alignment),
              dp::UniformVariantLabel(32, 32, 0.5)});
  out.push_back(uniform("w8a8 channel 25%", LayerPlan{8, 8, Sparsity::kOutputChannel, 0.25}));
  out.push_back(uniform("w8a8 channel 50%", LayerPlan{8, 8, Sparsity::kOutputChannel, 0.5}));
  out.push_back(uniform("fp32 unstructured 50%", LayerPlan{32, 32, Sparsity::kUnstructured, 0.5}));
  out.push_back(uniform("w8a8 2:4", LayerPlan{8, 8, Sparsity::kTwoFour, 0.5}));
  // Mixes: each layer draws from the options above, with a share of integer layers that varies
  // from plan to plan (a search's front ranges from mostly float to mostly integer).
  const std::vector<LayerPlan> floats = {LayerPlan{}, LayerPlan{16, 32}, LayerPlan{8, 32},
                                         LayerPlan{32, 32, Sparsity::kOutputChannel, 0.25}};
  const std::vector<LayerPlan> integers = {LayerPlan{8, 8}, LayerPlan{4, 8},
                                           LayerPlan{8, 8, Sparsity::kOutputChannel, 0.25},
                                           LayerPlan{8, 8, Sparsity::kOutputChannel, 0.5}};
  std::mt19937_64 rng(seed);
  for (int k = 0; static_cast<int>(out.size()) < count; ++k) {
    const double integer_share = 0.1 + 0.8 * ((k * 7) % 10) / 9.0;
    Variant v{fmt::format("mix {} ({:.0f}% integer)", k + 1, 100 * integer_share), {}, ""};
    std::uniform_real_distribution<double> coin(0, 1);
    for (size_t i = 0; i < n; ++i) {
      const std::vector<LayerPlan>& pool = coin(rng) < integer_share ? integers : floats;
      v.plan.push_back(Nearest(problem, i, pool[static_cast<size_t>(coin(rng) * pool.size()) % pool.size()]));
    }
    out.push_back(std::move(v));
  }
  return out;
}

// A plan given on the command line, "NAME=CODE CODE ...", one code per layer in layer order: F
// (fp32), H (fp16 weights, w16a32), W (w8a32), I (w8a8), J (w4a8), each optionally followed by c
// or C (a quarter or half of the output channels pruned). To look at what moves one variant's
// latency, layer by layer.
absl::StatusOr<Variant> ParsePlan(const search::Problem& problem, const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    return absl::InvalidArgumentError(fmt::format("--plan {}: expected NAME=CODES", text));
  Variant v{text.substr(0, eq), {}, ""};
  const std::vector<std::string> codes = absl::StrSplit(text.substr(eq + 1), absl::ByAnyChar(" ,"), absl::SkipEmpty());
  if (codes.size() != problem.details.size()) {
    return absl::InvalidArgumentError(
        fmt::format("--plan {}: {} codes for {} layers", v.name, codes.size(), problem.details.size()));
  }
  for (size_t i = 0; i < codes.size(); ++i) {
    const std::string& c = codes[i];
    model::LayerPlan p;
    switch (c[0]) {
      case 'F':
        p = model::LayerPlan{};
        break;
      case 'H':
        p = model::LayerPlan{16, 32};
        break;
      case 'W':
        p = model::LayerPlan{8, 32};
        break;
      case 'I':
        p = model::LayerPlan{8, 8};
        break;
      case 'J':
        p = model::LayerPlan{4, 8};
        break;
      default:
        return absl::InvalidArgumentError(fmt::format("--plan {}: unknown code '{}'", v.name, c));
    }
    if (c.size() == 2 && (c[1] == 'c' || c[1] == 'C')) {
      p.pattern = model::Sparsity::kOutputChannel;
      p.prune_ratio = c[1] == 'c' ? 0.25 : 0.5;
    } else if (c.size() != 1) {
      return absl::InvalidArgumentError(fmt::format("--plan {}: unknown code '{}'", v.name, c));
    }
    v.plan.push_back(Nearest(problem, i, p));
  }
  return v;
}

using squeeze::bench::DefaultModels;
using squeeze::bench::ModelSpec;
using squeeze::bench::ParseModelSpec;

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Predicted vs measured whole-model latency on this machine: six real models of four families, 32 exported "
      "variants "
      "each (fp32, fp16 weights, int8, mixed, pruned), predicted from a squeeze-profile measurement of this machine"};
  const std::string models_dir = std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/";
  std::string profile_path;
  int variants = 32, repeats = 10, warmup = 2;
  double min_time_s = 1.0;
  uint64_t seed = 1;
  bool json = false;
  app.add_option("--profile", profile_path,
                 "a profile of this machine written by squeeze-profile with --model for every model (default: "
                 "measure one now with squeeze-profile --quick)");
  app.add_option("--variants", variants, "variants per model, the model as it is included")
      ->check(CLI::Range(12, 1000));
  app.add_option("--repeats", repeats, "timed runs per variant; the median is compared")->check(CLI::Range(3, 1000));
  app.add_option("--warmup", warmup, "untimed runs before them")->check(CLI::Range(0, 100));
  app.add_option("--min-time", min_time_s, "seconds of timed runs per variant, at least (as squeeze-profile's models)");
  app.add_option("--seed", seed, "seed of the random mixes");
  app.add_flag("--json", json, "print one JSON object");
  std::string explain;
  app.add_option("--explain", explain,
                 "VARIANT: print each layer's predicted latency and how it was found for that variant (e.g. "
                 "'fp16') of every model");
  std::string save_dir;
  app.add_option("--save-variants", save_dir,
                 "DIR: also write every exported variant there as LABEL-NAME.onnx (to look into one with ONNX "
                 "Runtime's profiler)");
  std::vector<std::string> plan_args;
  app.add_option("--plan", plan_args,
                 "NAME=CODES also score this plan (repeatable; one code per layer: F fp32, H w16a32, W w8a32, I "
                 "w8a8, J w4a8, each optionally followed by c or C for a quarter or half of the output channels "
                 "pruned); with one --model");
  std::vector<std::string> model_args;
  app.add_option("--model", model_args,
                 "LABEL:FILE[:INPUT=D0,D1,...] a model to check (repeatable; default: PP-OCRv4 det, rec, PP-OCR cls, "
                 "UltraFace, a face liveness classifier and openWakeWord's embedding)");
  CLI11_PARSE(app, argc, argv);
  auto fail = [](const auto& what) {
    std::cerr << "squeeze-bench-latency: " << what << "\n";
    return 1;
  };
  std::vector<ModelSpec> specs = DefaultModels(models_dir);
  if (!model_args.empty()) {
    specs.clear();
    for (const std::string& a : model_args) {
      absl::StatusOr<ModelSpec> spec = ParseModelSpec(a);
      if (!spec.ok()) return fail(spec.status());
      specs.push_back(*spec);
    }
  }

  // The profile: given, or measured now by the squeeze-profile next to this program.
  double profile_s = 0;
  if (profile_path.empty()) {
    std::string self = argv[0];
    const std::string dir = self.find('/') == std::string::npos ? "." : self.substr(0, self.rfind('/'));
    profile_path = dir + "/../bench-host-profile.json";
    std::string command = dir + "/squeeze-profile --quick -o " + profile_path;
    for (const ModelSpec& m : specs) {
      command += " --model " + m.file;
      if (!m.input_shape.empty()) command += " --input-shape " + m.input_shape;
    }
    std::cerr << "measuring this machine: " << command << "\n";
    const Clock::time_point t = Clock::now();
    if (std::system(command.c_str()) != 0) return fail("squeeze-profile failed; run it yourself and pass --profile");
    profile_s = Since(t);
  }
  absl::StatusOr<dp::Profile> profile = dp::ReadProfileFile(profile_path);
  if (!profile.ok()) return fail(profile.status());
  if (profile->device.id.empty()) profile->device.id = "host";
  auto cost = dp::DeviceCostModel::Create(profile->device, profile->samples);
  if (!cost.ok()) return fail(cost.status());
  const int threads = profile->conditions.threads > 0 ? profile->conditions.threads : profile->device.threads;
  // Timed as squeeze-profile times models: the same pinned CPUs, inputs and outputs bound once,
  // repeated until a minimum time.
  const std::vector<int> allowed = runtime::AllowedCpus();
  if (static_cast<int>(allowed.size()) < threads) return fail("fewer CPUs available than the profile's threads");
  const std::vector<int> cpus(allowed.begin(), allowed.begin() + threads);
  if (absl::Status pinned = runtime::PinCurrentThread(cpus[0]); !pinned.ok()) return fail(pinned);

  search::OptionGrid grid;  // what the variants use, so the problem stays small
  grid.weight_bits = {32, 16, 8, 4};
  grid.activation_bits = {32, 8};
  grid.prune_ratios = {0, 0.25, 0.5};

  std::string models_json;
  std::vector<std::pair<std::string, Accuracy>> per_model;  // held-out variants, at profile speed
  std::vector<double> all_measured, all_corrected, all_fp32_corrected, all_predicted, all_samples_only;
  for (const ModelSpec& spec : specs) {
    absl::StatusOr<std::string> bytes = squeeze::common::ReadFile(spec.file);
    if (!bytes.ok())
      return fail(fmt::format("{} (run `make deps` to fetch the test models)", bytes.status().ToString()));
    absl::StatusOr<model::AnalyzeOptions> analyze = squeeze::bench::AnalyzeOptionsFor(spec);
    if (!analyze.ok()) return fail(analyze.status());
    auto loaded = model::LoadModel(*bytes, *analyze);
    if (!loaded.ok()) return fail(loaded.status());
    const std::string sha = squeeze::common::Sha256Hex(*bytes);

    runtime::SessionOptions session_options;
    session_options.intra_op_threads = threads;
    session_options.pinned_cpus = cpus;
    auto original = runtime::Session::Create(*bytes, session_options);
    if (!original.ok()) return fail(original.status());
    auto calibration = runtime::SyntheticCalibration(loaded->analysis, (*original)->inputs(), 2, seed);
    if (!calibration.ok()) return fail(calibration.status());
    const std::vector<runtime::Tensor>& inputs = calibration->samples.front();

    // Predictions: the search problem with and without the model's measured latency.
    search::ProblemInputs problem_inputs;
    problem_inputs.model = &*loaded;
    problem_inputs.device = &profile->device;
    problem_inputs.cost_model = cost->get();
    problem_inputs.grid = grid;
    problem_inputs.threads = threads;
    auto samples_only = search::BuildProblem(problem_inputs);
    if (!samples_only.ok()) return fail(samples_only.status());
    problem_inputs.model_sha256 = sha;
    problem_inputs.model_latencies = profile->model_latencies;
    auto with_model = search::BuildProblem(problem_inputs);
    if (!with_model.ok()) return fail(with_model.status());
    if (with_model->latency_calibration.empty()) {
      return fail(
          fmt::format("the profile holds no latency of {} as it is: profile with --model {}", spec.label, spec.file));
    }

    if (!explain.empty())
      std::cerr << "  " << spec.label << " calibration: " << with_model->latency_calibration << "\n";
    // Ranges once for every tensor any variant quantizes (the all-w8a8 plan's).
    std::vector<Variant> plans =
        Variants(*with_model, *loaded, search::ChannelAlignment(profile->device), variants, seed);
    for (const std::string& text : plan_args) {
      auto v = ParsePlan(*with_model, text);
      if (!v.ok()) return fail(v.status());
      plans.push_back(*std::move(v));
    }
    auto names = model::ActivationsToCalibrate(*loaded, plans[3].plan, model::ExportFlavour::kOrtCpu);
    if (!names.ok()) return fail(names.status());
    runtime::RangeOptions range_options;
    range_options.threads = threads;
    auto ranges = runtime::CalibrateRanges(*loaded, *names, *calibration, range_options);
    if (!ranges.ok()) return fail(ranges.status());
    model::ExportOptions export_options;
    export_options.shape_probe = runtime::OnnxRuntimeShapeProbe();

    // This VM's speed drifts by tens of percent within minutes, more than the predictor's error, and
    // not alike for every kind of kernel (it switches between states where the uniform w8a8 export
    // runs 1.05x or 1.30x the fp32 model, and UltraFace's w8a32 export, whose weights are dequantized
    // on every run, slows down more than either). So each variant is timed in turns with three
    // references the profile also timed: the model as it is, its uniform w8a8 export and its uniform
    // w8a32 export; and its latency is also given at the speed the profile was measured at:
    // measured / r, where r is the drift now of each reference (its latency now / in the profile)
    // weighted by the share of the variant's predicted time in its domain (float, integer,
    // weight-only). With one drift for all, this is measured x profiled / reference now.
    double profiled_ms = 0, profiled_int_ms = 0, profiled_weight_only_ms = 0;
    for (const dp::ModelLatency& m : profile->model_latencies) {
      if (m.model_sha256 != sha) continue;
      if (m.variant.empty()) profiled_ms = m.latency_median_us * 1e-3;
      if (m.variant == dp::UniformVariantLabel(8, 8)) profiled_int_ms = m.latency_median_us * 1e-3;
      if (m.variant == dp::UniformVariantLabel(8, 32)) profiled_weight_only_ms = m.latency_median_us * 1e-3;
    }
    auto reference_session = [&](const Variant& v) -> absl::StatusOr<std::unique_ptr<runtime::Session>> {
      auto exported = model::ExportModel(*loaded, v.plan, *ranges, export_options);
      if (!exported.ok()) return exported.status();
      return runtime::Session::Create(exported->bytes, session_options);
    };
    std::unique_ptr<runtime::Session> int_reference, weight_only_reference;
    if (profiled_int_ms > 0) {
      auto session = reference_session(plans[3]);
      if (!session.ok()) return fail(fmt::format("{} w8a8: {}", spec.label, session.status().ToString()));
      int_reference = *std::move(session);
    }
    if (profiled_weight_only_ms > 0) {
      auto session = reference_session(plans[2]);
      if (!session.ok()) return fail(fmt::format("{} w8a32: {}", spec.label, session.status().ToString()));
      weight_only_reference = *std::move(session);
    }
    // In turns with the references, round by round, warm within each round (as the profiler times
    // a model's uniform exports).
    runtime::InterleavedTiming turns;
    turns.warmup = warmup;
    turns.rounds = repeats;
    turns.round_time_s = min_time_s / std::max(1, repeats);
    turns.min_time_s = min_time_s;

    std::vector<Scored> scored;
    std::vector<double> measured, corrected, fp32_corrected, predicted, predicted_samples;
    for (size_t k = 0; k < plans.size(); ++k) {
      const Variant& v = plans[k];
      std::string variant_bytes = *bytes;
      if (k > 0) {
        auto exported = model::ExportModel(*loaded, v.plan, *ranges, export_options);
        if (!exported.ok()) return fail(fmt::format("{} {}: {}", spec.label, v.name, exported.status().ToString()));
        if (v.name == explain) {
          for (const model::LayerExport& l : exported->report.layers) {
            std::cerr << fmt::format(
                "  {} export {:<28} {:<24} channels {}/{} kept, {} zeroed, {} inputs removed  {}\n", spec.label,
                l.layer, l.option, l.kept_out_channels, l.out_channels, l.zeroed_out_channels, l.removed_in_channels,
                l.note);
          }
        }
        variant_bytes = std::move(exported->bytes);
        if (!save_dir.empty()) {
          std::string file_name = fmt::format("{}/{}-{}.onnx", save_dir, spec.label, v.name);
          std::replace(file_name.begin() + save_dir.size() + 1, file_name.end(), ' ', '_');
          if (absl::Status s = squeeze::common::WriteFileAtomically(file_name, variant_bytes); !s.ok()) return fail(s);
        }
      }
      auto session = runtime::Session::Create(variant_bytes, session_options);
      if (!session.ok()) return fail(fmt::format("{} {}: {}", spec.label, v.name, session.status().ToString()));
      std::vector<const runtime::Session*> timed = {session->get(), original->get()};
      const size_t int_index = timed.size();
      if (int_reference) timed.push_back(int_reference.get());
      const size_t weight_only_index = timed.size();
      if (weight_only_reference) timed.push_back(weight_only_reference.get());
      auto timings = runtime::TimeInterleaved(timed, inputs, turns);
      if (!timings.ok()) return fail(timings.status());
      const runtime::Timing& timing = (*timings)[0];
      const runtime::Timing& reference = (*timings)[1];
      auto choice = search::ChoiceOfPlan(*with_model, v.plan);
      auto choice_samples = search::ChoiceOfPlan(*samples_only, v.plan);
      if (!choice || !choice_samples)
        return fail(fmt::format("{} {}: an option is not in the problem", spec.label, v.name));
      auto conversions = search::ConversionsOf(with_model->table, *choice);
      if (!conversions.ok()) return fail(conversions.status());
      if (v.name == explain) {
        for (size_t i = 0; i < choice->size(); ++i) {
          const search::OptionDetail& d = with_model->details[i][(*choice)[i]];
          const double narrowed = conversions->narrowed_latency[i];
          std::cerr << fmt::format(
              "  {} {:<28} {:<24} {:9.1f} us  {}{}\n", spec.label, loaded->analysis.layers[i].name,
              with_model->table.layers[i].options[(*choice)[i]].label, (d.latency.seconds - narrowed) * 1e6,
              d.latency.explanation,
              narrowed > 0 ? fmt::format("; - {:.1f} us on its narrowed input", narrowed * 1e6) : std::string());
        }
        // What the plan pays outside its layers: the other ops, and each conversion between domains.
        std::cerr << fmt::format("  {} fixed cost (other ops) {:.1f} us\n", spec.label,
                                 with_model->table.fixed.latency * 1e6);
        for (size_t at = 0; at < with_model->table.boundaries.size(); ++at) {
          const search::ActivationBoundary& b = with_model->table.boundaries[at];
          const double paid = conversions->boundary_latency[at];
          if (paid <= 0) continue;
          std::cerr << fmt::format(
              "  {} boundary after {:<28} {:7.1f} us (quantize {:.1f}, dequantize {:.1f}, transpose {:.1f}, pool "
              "{:.1f})\n",
              spec.label, b.producer >= 0 ? loaded->analysis.layers[b.producer].name : "(input)", paid * 1e6,
              b.quantize_latency * 1e6, b.dequantize_latency * 1e6, b.transpose_latency * 1e6, b.pool_latency * 1e6);
        }
      }
      auto value = search::Evaluate(with_model->table, *choice);
      auto value_samples = search::Evaluate(samples_only->table, *choice_samples);
      if (!value.ok() || !value_samples.ok()) return fail("evaluating a plan failed");
      Scored s;
      s.name = v.name;
      s.measured_ms = 1e3 * timing.median_s;
      s.spread_ms = 1e3 * timing.stddev_s;
      s.reference_ms = 1e3 * reference.median_s;
      s.predicted_ms = 1e3 * value->latency;
      s.samples_only_ms = 1e3 * value_samples->latency;
      // The predicted time of the layers that run on integer activations (fused weight-only ones
      // included) and of the weight-only ones that run float.
      double integer_ms = 0, weight_only_ms = 0;
      for (size_t i = 0; i < choice->size(); ++i) {
        const search::LayerOption& o = with_model->table.layers[i].options[(*choice)[i]];
        const int weight_bits = with_model->details[i][(*choice)[i]].option.weight_bits;
        if (conversions->runs_integer[i]) {
          integer_ms += 1e3 * (o.integer_activations ? o.latency : o.fused_latency);
        } else if (weight_bits <= 8) {
          weight_only_ms += 1e3 * o.latency;
        }
      }
      s.integer_share = std::clamp(integer_ms / s.predicted_ms, 0.0, 1.0);
      s.weight_only_share = std::clamp(weight_only_ms / s.predicted_ms, 0.0, 1.0 - s.integer_share);
      const double float_drift = s.reference_ms / profiled_ms;
      s.fp32_corrected_ms = s.measured_ms / float_drift;
      double int_drift = float_drift, weight_only_drift = float_drift;
      if (int_reference) {
        s.int_reference_ms = 1e3 * (*timings)[int_index].median_s;
        int_drift = s.int_reference_ms / profiled_int_ms;
      }
      if (weight_only_reference) {
        s.weight_only_reference_ms = 1e3 * (*timings)[weight_only_index].median_s;
        weight_only_drift = s.weight_only_reference_ms / profiled_weight_only_ms;
      }
      const double float_share = 1 - s.integer_share - s.weight_only_share;
      s.corrected_ms = s.measured_ms / (float_share * float_drift + s.integer_share * int_drift +
                                        s.weight_only_share * weight_only_drift);
      if (!json) {
        std::cerr << fmt::format(
            "{} {:<28} measured {:8.2f} ms (references {:8.2f} fp32, {:8.2f} w8a8, {:8.2f} w8a32; at profile speed "
            "{:8.2f})  predicted {:8.2f} ms ({:+.1f}%)  samples only {:8.2f} ms\n",
            spec.label, v.name, s.measured_ms, s.reference_ms, s.int_reference_ms, s.weight_only_reference_ms,
            s.corrected_ms, s.predicted_ms, 100 * (s.predicted_ms - s.corrected_ms) / s.corrected_ms,
            s.samples_only_ms);
      }
      // The model as it is is the reference; a uniform plan the profile timed calibrates the
      // predictor, so only the others are held out and scored.
      const bool calibrated =
          !v.profiled_as.empty() &&
          std::any_of(profile->model_latencies.begin(), profile->model_latencies.end(),
                      [&](const dp::ModelLatency& m) { return m.model_sha256 == sha && m.variant == v.profiled_as; });
      s.calibration_point = k == 0 || calibrated;
      if (!s.calibration_point) {
        measured.push_back(s.measured_ms);
        corrected.push_back(s.corrected_ms);
        fp32_corrected.push_back(s.fp32_corrected_ms);
        predicted.push_back(s.predicted_ms);
        predicted_samples.push_back(s.samples_only_ms);
      }
      scored.push_back(std::move(s));
    }
    all_measured.insert(all_measured.end(), measured.begin(), measured.end());
    all_corrected.insert(all_corrected.end(), corrected.begin(), corrected.end());
    all_fp32_corrected.insert(all_fp32_corrected.end(), fp32_corrected.begin(), fp32_corrected.end());
    all_predicted.insert(all_predicted.end(), predicted.begin(), predicted.end());
    all_samples_only.insert(all_samples_only.end(), predicted_samples.begin(), predicted_samples.end());
    std::string rows;
    for (const Scored& s : scored) {
      rows += fmt::format(
          "{}{{\"name\":\"{}\",\"measured_ms\":{:.3f},\"stddev_ms\":{:.3f},\"reference_ms\":{:.3f},"
          "\"int_reference_ms\":{:.3f},\"integer_share\":{:.3f},\"weight_only_reference_ms\":{:.3f},"
          "\"weight_only_share\":{:.3f},\"at_profile_speed_ms\":{:.3f},"
          "\"at_profile_speed_fp32_reference_ms\":{:.3f},\"predicted_ms\":{:.3f},\"samples_only_ms\":{:.3f},"
          "\"calibration_point\":{}}}",
          rows.empty() ? "" : ",", s.name, s.measured_ms, s.spread_ms, s.reference_ms, s.int_reference_ms,
          s.integer_share, s.weight_only_reference_ms, s.weight_only_share, s.corrected_ms, s.fp32_corrected_ms,
          s.predicted_ms, s.samples_only_ms, s.calibration_point ? "true" : "false");
    }
    per_model.push_back({spec.label, Score(predicted, corrected)});
    models_json += fmt::format(
        "{}{{\"model\":\"{}\",\"file\":\"{}\",\"layers\":{},\"profiled_ms\":{:.3f},\"calibration\":\"{}\",{},"
        "\"samples_only\":{{{}}},\"fp32_reference_only\":{{{}}},\"raw\":{{{}}},\"results\":[{}]}}",
        models_json.empty() ? "" : ",", spec.label, spec.file.substr(spec.file.rfind('/') + 1),
        loaded->analysis.layers.size(), profiled_ms, with_model->latency_calibration,
        AccuracyJson(Score(predicted, corrected)), AccuracyJson(Score(predicted_samples, corrected)),
        AccuracyJson(Score(predicted, fp32_corrected)), AccuracyJson(Score(predicted, measured)), rows);
  }

  const Accuracy overall = Score(all_predicted, all_corrected);
  const Accuracy samples = Score(all_samples_only, all_corrected);
  const Accuracy fp32_only = Score(all_predicted, all_fp32_corrected);
  const Accuracy raw = Score(all_predicted, all_measured);
  if (json) {
    std::cout << fmt::format(
        "{{{},\"samples_only\":{{{}}},\"fp32_reference_only\":{{{}}},\"raw\":{{{}}},\"threads\":{},\"repeats\":{},"
        "\"warmup\":{},\"onnxruntime\":\"{}"
        "\","
        "\"profile\":{{\"file\":\"{}\",\"mode\":\"{}\",\"samples\":{},\"model_latencies\":{},"
        "\"measured_seconds\":{:.1f}}},\"models\":[{}]}}\n",
        AccuracyJson(overall), AccuracyJson(samples), AccuracyJson(fp32_only), AccuracyJson(raw), threads, repeats,
        warmup, runtime::OrtVersion(), profile_path, profile->conditions.mode, profile->samples.size(),
        profile->model_latencies.size(), profile_s, models_json);
    return 0;
  }
  for (const auto& [label, a] : per_model) {
    std::cout << fmt::format(
        "  {:<16} {:3d} held-out variants: {:3.0f}% within ±10%, {:3.0f}% within ±5%, RMSE {:5.1f}%\n", label,
        a.variants, 100 * a.within_10pct, 100 * a.within_5pct, a.rmse_pct);
  }
  std::cout << fmt::format(
      "{} held-out variants (the models as they are and the uniform plans the profile timed are excluded: the "
      "predictor is calibrated to them), measured latencies at the speed the machine had when profiled\n"
      "  with the model's measured latency: {:.0f}% within ±10%, {:.0f}% within ±5%, RMSE {:.1f}%\n"
      "  single-op samples only:            {:.0f}% within ±10%, {:.0f}% within ±5%, RMSE {:.1f}%\n"
      "  drift corrected by the fp32 reference alone: {:.0f}% within ±10%, RMSE {:.1f}%\n"
      "  as measured, without the correction for the machine's drift: {:.0f}% within ±10%, RMSE {:.1f}%\n",
      overall.variants, 100 * overall.within_10pct, 100 * overall.within_5pct, overall.rmse_pct,
      100 * samples.within_10pct, 100 * samples.within_5pct, samples.rmse_pct, 100 * fp32_only.within_10pct,
      fp32_only.rmse_pct, 100 * raw.within_10pct, raw.rmse_pct);
  return 0;
}
