// squeeze-bench-fidelity: does the predicted error rank real compressions the way they really
// behave? Measures a model's sensitivities (runtime/sensitivity.h), draws random mixed per-layer
// plans (weight bits, activation bits, prune ratio and pattern, as the ort-cpu flavour realizes
// them), predicts each plan's relative output error as the search does — Σ of each layer's weight
// terms (runtime::PredictedQuantizationError, PredictedPruningError) and activation term — then exports each plan as a
// server export does (runtime::ExportAndVerify: calibrated ranges, the QDQ file, run in ONNX Runtime on the calibration
// inputs) and takes its measured relative output error. Reports the Spearman rank correlation of predicted and measured
// errors and the median measured / predicted ratio.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "bench/common/stats.h"
#include "bench/common/timing.h"
#include "model/export.h"
#include "model/export_flavour.h"
#include "model/loader.h"
#include "model/weight_math.h"
#include "model/weights.h"
#include "runtime/calibration.h"
#include "runtime/sensitivity.h"
#include "runtime/session.h"
#include "runtime/shape_probe.h"
#include "runtime/verify.h"

namespace {

using squeeze::bench::Clock;
using squeeze::bench::Since;
namespace model = squeeze::model;
namespace runtime = squeeze::runtime;

struct LayerPlan {
  int weight_bits = 32;
  int activation_bits = 32;
  model::Sparsity pattern = model::Sparsity::kDense;
  double ratio = 0;
  bool Compressed() const { return weight_bits < 32 || pattern != model::Sparsity::kDense; }
};

struct Candidate {
  std::vector<LayerPlan> plan;
  bool few = false;  // a few layers compressed hard, the rest untouched
  double level = 0;  // otherwise: how aggressive the draw was
  double predicted = 0;
  double predicted_weight = 0;      // Σ s_i·D_i
  double predicted_activation = 0;  // Σ activation terms
  double measured = 0;
};

using squeeze::bench::Median;
using squeeze::bench::Pearson;
using squeeze::bench::Ranks;

// Draws plan c from its own stream. A third of the plans compress a few layers hard and leave the
// rest alone (they test the per-layer sensitivities); the others draw every layer with their own
// aggressiveness, log-uniform from 0.001 to 1 (the share of layers at 3-8 bits, 8-bit
// activations and pruned), so that errors span orders of magnitude.
Candidate Draw(uint64_t seed, int c, const model::Analysis& analysis) {
  std::mt19937_64 rng(runtime::DeriveSeed(seed, static_cast<uint64_t>(c)));
  std::uniform_real_distribution<double> u(0, 1);
  auto pick = [&](int n) { return std::min(n - 1, static_cast<int>(u(rng) * n)); };
  const int kMild[] = {32, 16};
  const int kLow[] = {8, 6, 5, 4, 3};
  Candidate candidate;
  const size_t n = analysis.layers.size();
  candidate.plan.resize(n);
  const bool few = u(rng) < 1.0 / 3;
  candidate.few = few;
  // Log-uniform over three decades: as many plans near lossless as near broken.
  candidate.level = std::pow(10.0, -3 * u(rng));
  std::vector<bool> chosen(n, !few);
  if (few) {
    const int count = 1 + pick(4);
    for (int k = 0; k < count; ++k) chosen[static_cast<size_t>(pick(static_cast<int>(n)))] = true;
  }
  for (size_t i = 0; i < n; ++i) {
    LayerPlan& p = candidate.plan[i];
    const double level = few ? 1.0 : candidate.level;
    if (!chosen[i]) continue;
    p.weight_bits = u(rng) < level ? kLow[pick(5)] : kMild[pick(2)];
    p.activation_bits = u(rng) < level ? 8 : (u(rng) < 0.5 ? 16 : 32);
    // As the ort-cpu flavour writes it: float weights take no 8-bit activations, fp32 only fp32.
    for (int a : {p.activation_bits, 16, 32}) {
      if (model::Realizes(model::ExportFlavour::kOrtCpu, p.weight_bits, a)) {
        p.activation_bits = a;
        break;
      }
    }
    if (u(rng) < 0.7 * level) {
      const int kind = pick(3);
      p.pattern = kind == 0   ? model::Sparsity::kUnstructured
                  : kind == 1 ? model::Sparsity::kTwoFour
                              : model::Sparsity::kOutputChannel;
      p.ratio = p.pattern == model::Sparsity::kTwoFour ? 0.5 : 0.1 * (1 + pick(6));
    }
  }
  return candidate;
}

// Calls fn(i) for i in [0, count) on `threads` threads.
void ParallelFor(int threads, int count, const std::function<void(int)>& fn) {
  std::atomic<int> next{0};
  auto work = [&] {
    for (int i = next++; i < count; i = next++) fn(i);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  std::vector<std::string> shapes, images;
  int candidates = 60, samples = 2, threads = 2;
  uint64_t seed = 1;
  double noise = runtime::SensitivityOptions().noise_energy;
  bool json = false, pairs = false;
  CLI::App app{"squeeze-bench-fidelity: predicted vs measured output error of random compressions"};
  app.add_option("MODEL", path, "ONNX model")->required()->check(CLI::ExistingFile);
  app.add_option("--input-shape", shapes, "NAME=D0,D1,... (repeatable)");
  app.add_option("--candidates", candidates, "Random plans to build and run")->capture_default_str();
  app.add_option("--samples", samples,
                 "Synthetic calibration samples, at least (more for small outputs, as a search takes them)")
      ->capture_default_str();
  app.add_option("--image", images,
                 "An 8-bit PPM image as a calibration sample instead of synthetic ones (repeatable; one "
                 "3-channel image input of its size, normalized as PP-OCR does)")
      ->check(CLI::ExistingFile);
  app.add_option("--seed", seed, "Seed of the calibration, the noise and the plans")->capture_default_str();
  app.add_option("--threads", threads, "Runs in flight at once")->capture_default_str();
  app.add_option("--noise", noise, "Relative energy of the sensitivity probe's weight noise")->capture_default_str();
  app.add_flag("--json", json, "Print one JSON object");
  app.add_flag("--pairs", pairs, "Also print every plan's predicted and measured error (stderr)");
  CLI11_PARSE(app, argc, argv);
  if (candidates < 2 || samples < 1 || threads < 1) {
    std::cerr << "--candidates must be at least 2, --samples and --threads at least 1\n";
    return 2;
  }

  std::ifstream file(path, std::ios::binary);
  std::stringstream buffer;
  buffer << file.rdbuf();
  const std::string bytes = buffer.str();
  model::AnalyzeOptions options;
  for (const std::string& text : shapes) {
    auto shape = model::ParseInputShape(text);
    if (!shape.ok()) return std::cerr << shape.status() << "\n", 2;
    options.input_shapes[shape->first] = shape->second;
  }
  options.shape_probe = runtime::OnnxRuntimeShapeProbe();
  auto loaded = model::LoadModel(bytes, options);
  if (!loaded.ok()) return std::cerr << loaded.status() << "\n", 1;
  const model::Analysis& analysis = loaded->analysis;
  runtime::SessionOptions session_options;
  session_options.intra_op_threads = 1;  // whole runs side by side, as the measurement does
  auto original = runtime::Session::Create(bytes, session_options);
  if (!original.ok()) return std::cerr << original.status() << "\n", 1;
  absl::StatusOr<runtime::CalibrationSet> calibration;
  if (images.empty()) {
    // As a search takes them: more for a model with small outputs.
    absl::StatusOr<int> count = runtime::SyntheticSampleCount(analysis, **original, samples, seed);
    if (!count.ok()) return std::cerr << count.status() << "\n", 1;
    samples = *count;
    calibration = runtime::SyntheticCalibration(analysis, (*original)->inputs(), samples, seed);
  } else {
    // Through the upload path: one TensorProto per image.
    calibration = runtime::CalibrationFromImages(analysis, (*original)->inputs(), images);
    samples = static_cast<int>(images.size());
  }
  if (!calibration.ok()) return std::cerr << calibration.status() << "\n", 1;

  const auto start = Clock::now();
  runtime::SensitivityOptions sensitivity_options;
  sensitivity_options.threads = threads;
  sensitivity_options.seed = seed;
  sensitivity_options.noise_energy = noise;
  sensitivity_options.activation_bits = {8, 16};
  auto report = runtime::MeasureSensitivity(*loaded, *calibration, sensitivity_options);
  if (!report.ok()) return std::cerr << report.status() << "\n", 1;
  const double sensitivity_s = Since(start);
  for (const std::string& w : report->warnings) std::cerr << "warning: " << w << "\n";

  auto weights = model::ReadLayerWeights(*loaded);
  if (!weights.ok()) return std::cerr << weights.status() << "\n", 1;
  // A layer's weight term: quantization and pruning distortions, each with its sensitivity.
  auto weight_error = [&](size_t i, const LayerPlan& p) {
    const model::ChannelMatrix& w = (*weights)[i];
    const std::vector<uint8_t> mask = model::PruneMask(w, p.pattern, p.ratio);
    const double pruned = model::RelativeDistortion(w.values, model::QuantizeMasked(w, mask, 32).values);
    const double total = model::RelativeDistortion(w.values, model::QuantizeMasked(w, mask, p.weight_bits).values);
    const double kept = std::min(pruned, total);
    std::optional<double> removed_energy;
    if (p.pattern == model::Sparsity::kOutputChannel) {
      removed_energy = runtime::RemovedEnergyShare(report->layers[i], model::KeptChannels(w, mask));
    }
    return runtime::PredictedQuantizationError(&report->layers[i], p.weight_bits, total - kept) +
           runtime::PredictedPruningError(&report->layers[i], p.pattern, p.ratio, kept, removed_energy);
  };

  std::vector<Candidate> plans(static_cast<size_t>(candidates));
  std::vector<std::string> failures(plans.size());
  std::atomic<int> finished{0};
  ParallelFor(threads, candidates, [&](int c) {
    Candidate& candidate = plans[static_cast<size_t>(c)];
    candidate = Draw(seed, c, analysis);
    std::vector<model::LayerPlan> plan(analysis.layers.size());
    for (size_t i = 0; i < analysis.layers.size(); ++i) {
      const LayerPlan& p = candidate.plan[i];
      const runtime::LayerSensitivity& s = report->layers[i];
      plan[i] = model::LayerPlan{p.weight_bits, p.activation_bits, p.pattern, p.ratio};
      if (p.Compressed()) candidate.predicted_weight += weight_error(i, p);
      if (model::QuantizesActivations(model::ExportFlavour::kOrtCpu, p.weight_bits, p.activation_bits)) {
        auto it = s.activation_error.find(p.activation_bits);
        candidate.predicted_activation += it == s.activation_error.end() ? 0 : it->second;
      }
    }
    candidate.predicted = candidate.predicted_weight + candidate.predicted_activation;
    runtime::ExportCheckOptions check;
    check.export_options.shape_probe = runtime::OnnxRuntimeShapeProbe();
    absl::StatusOr<runtime::VerifiedExport> exported =
        runtime::ExportAndVerify(*loaded, bytes, plan, *calibration, check);
    if (!exported.ok()) {
      failures[static_cast<size_t>(c)] = exported.status().ToString();
      return;
    }
    candidate.measured = exported->verification.relative_error;
    const int done = ++finished;
    if (!json && isatty(2)) std::cerr << fmt::format("\rcandidate {}/{}", done, candidates) << std::flush;
  });
  if (!json && isatty(2)) std::cerr << "\n";
  for (size_t c = 0; c < failures.size(); ++c) {
    if (!failures[c].empty()) return std::cerr << "candidate " << c << ": " << failures[c] << "\n", 1;
  }

  std::vector<double> predicted, measured, ratios;
  for (size_t c = 0; c < plans.size(); ++c) {
    const Candidate& p = plans[c];
    predicted.push_back(p.predicted);
    measured.push_back(p.measured);
    if (p.predicted > 0) ratios.push_back(p.measured / p.predicted);
    if (pairs) {
      std::cerr << fmt::format(
          "plan {:>3} {} predicted {:.4g} (weights {:.3g}, activations {:.3g}) "
          "measured {:.4g}\n",
          c, p.few ? "few layers " : fmt::format("level {:.3f}", p.level), p.predicted, p.predicted_weight,
          p.predicted_activation, p.measured);
    }
  }
  const double spearman = Pearson(Ranks(predicted), Ranks(measured));
  std::vector<double> log_p, log_m;
  for (size_t c = 0; c < plans.size(); ++c) {
    if (predicted[c] > 0 && measured[c] > 0) {
      log_p.push_back(std::log10(predicted[c]));
      log_m.push_back(std::log10(measured[c]));
    }
  }
  const double median_ratio = Median(ratios);
  // The plans a search keeps by default (measured SQNR of 10 dB or more): where the predictor's
  // linear model is meant to hold.
  std::vector<double> usable_p, usable_m, usable_ratios;
  for (size_t c = 0; c < plans.size(); ++c) {
    if (measured[c] > 0.1) continue;
    usable_p.push_back(predicted[c]);
    usable_m.push_back(measured[c]);
    if (predicted[c] > 0) usable_ratios.push_back(measured[c] / predicted[c]);
  }
  const double spearman_usable = Pearson(Ranks(usable_p), Ranks(usable_m));
  const double total_s = Since(start);
  const std::string name = path.substr(path.find_last_of('/') + 1);
  int measured_layers = 0;
  for (const auto& l : report->layers) measured_layers += l.measured ? 1 : 0;
  const auto [min_m, max_m] = std::minmax_element(measured.begin(), measured.end());
  const auto [min_p, max_p] = std::minmax_element(predicted.begin(), predicted.end());
  if (json) {
    std::cout << fmt::format(
        "{{\"model\": \"{}\", \"candidates\": {}, \"samples\": {}, \"calibration\": \"{}\", \"seed\": {}, \"threads\": "
        "{}, "
        "\"noise_energy\": {:g}, \"layers\": {}, \"measured_layers\": {}, \"spearman\": {:.4f}, "
        "\"log_pearson\": {:.4f}, \"median_ratio\": {:.4g}, \"usable\": {}, \"spearman_usable\": {:.4f}, "
        "\"median_ratio_usable\": {:.4g}, \"min_measured\": {:.3g}, \"max_measured\": {:.3g}, "
        "\"min_predicted\": {:.3g}, \"max_predicted\": {:.3g}, \"sensitivity_seconds\": {:.2f}, \"seconds\": "
        "{:.2f}}}\n",
        name, plans.size(), samples, images.empty() ? "synthetic" : "images", seed, threads, noise,
        analysis.layers.size(), measured_layers, spearman, Pearson(log_p, log_m), median_ratio, usable_p.size(),
        spearman_usable, Median(usable_ratios), *min_m, *max_m, *min_p, *max_p, sensitivity_s, total_s);
  } else {
    std::cout << fmt::format(
        "{}: {} plans on {} {} samples: Spearman {:.3f}, median measured/predicted {:.3g} (measured "
        "{:.3g} to {:.3g}, predicted {:.3g} to {:.3g}); the {} plans of 10 dB or more: Spearman {:.3f}, "
        "median ratio {:.3g}; sensitivities {:.1f} s, {:.1f} s in all\n",
        name, plans.size(), samples, images.empty() ? "synthetic" : "image", spearman, median_ratio, *min_m, *max_m,
        *min_p, *max_p, usable_p.size(), spearman_usable, Median(usable_ratios), sensitivity_s, total_s);
  }
  return 0;
}
