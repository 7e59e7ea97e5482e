// squeeze-profile: measures the machine it runs on and writes a device profile for
// `squeeze devices put`. Needs no server.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <iostream>
#include <map>

#include "device_profiles/op_grid.h"
#include "device_profiles/profile_file.h"
#include "device_profiles/profiler.h"
#include "model/loader.h"

namespace {

namespace dp = squeeze::device_profiles;

std::string Duration(double seconds) {
  if (seconds < 90) return fmt::format("{:.0f} s", seconds);
  return fmt::format("{:.0f} min {:02.0f} s", std::floor(seconds / 60), std::fmod(seconds, 60));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "squeeze-profile: measure this machine for Squeeze's latency predictor and write a device profile.\n"
      "Builds single-op ONNX models (conv k1/k3/k5 at stride 1 and 2, depthwise, grouped, ConvTranspose, "
      "MatMul; QuantizeLinear, DequantizeLinear and elementwise ops) over a grid of shapes and precisions "
      "(fp32, fp16 weights, w8a8, w8a32, w4a8, w4a32, 50% unstructured and 2:4 sparsity), times each in "
      "ONNX Runtime on pinned threads, optionally times whole models, and writes the profile as JSON.\n"
      "Upload the result with: squeeze devices put PROFILE.json\n"
      "Run it on an otherwise idle machine: other load shows up in every figure."};
  std::string output = "profile.json";
  bool quick = false, list = false, no_pin = false;
  int threads = 1, warmup = -1, repeats = -1;
  double min_time_ms = -1;
  uint64_t seed = 1;
  std::string id = "host", name;
  std::vector<std::string> model_paths, shape_texts;
  app.add_option("-o,--output", output, "Profile file to write (JSON)")->capture_default_str();
  app.add_flag("--quick", quick,
               "A coarser grid (about 500 samples, well under a minute on a 2-core machine): enough for a first "
               "profile and for `make demo`; the default is the full grid (about 2700 samples, 5-10 minutes)");
  app.add_flag("--list", list, "Print the grid's sample keys, one a line, and exit without measuring");
  app.add_option("--threads", threads, "ONNX Runtime intra-op threads, pinned to the first CPUs this process may use")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--no-pin", no_pin, "Do not pin the measuring threads to CPUs");
  app.add_option("--warmup", warmup, "Untimed runs before each sample (default: quick 1, full 2)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--repeats", repeats,
                 "Timed runs per sample (and per model) at least (default: quick 3, full 5; models 5 and 10)")
      ->check(CLI::PositiveNumber);
  app.add_option(
         "--min-time-ms", min_time_ms,
         "Repeat each sample until its timed runs add up to this (default: quick 20, full 100; models 1000 and 3000)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--seed", seed, "Seed of the single-op models' weights and inputs")->capture_default_str();
  app.add_option("--id", id, "Device id in the profile (a-z, 0-9, '-')")->capture_default_str();
  app.add_option("--name", name, "Device name in the profile (default: the CPU as detected)");
  app.add_option("--model", model_paths,
                 "Also time this ONNX model as it is (fp32) and its uniform fp16-weight, int8-weight and int8 "
                 "exports, in turns, and record their latencies with its SHA-256: searches of that model on this "
                 "device calibrate each precision to them; repeatable")
      ->allow_extra_args(false);
  bool no_model_variants = false;
  app.add_flag("--no-model-variants", no_model_variants, "Time each --model only as it is, not its uniform exports");
  app.add_option("--input-shape", shape_texts,
                 "NAME=D0,D1,... for a symbolic input of the --model before it; repeatable")
      ->allow_extra_args(false);
  CLI11_PARSE(app, argc, argv);

  const dp::ProfileMode mode = quick ? dp::ProfileMode::kQuick : dp::ProfileMode::kFull;
  dp::ProfilerOptions options;
  options.grid = dp::ProfileGrid(mode);
  if (list) {
    for (const dp::OpSpec& spec : options.grid) std::cout << dp::OpSpecKey(spec) << "\n";
    std::cerr << options.grid.size() << " samples (" << dp::ProfileModeName(mode) << " grid)\n";
    return 0;
  }

  // Each --input-shape belongs to the --model before it.
  std::map<const CLI::Option*, size_t> seen;
  const CLI::Option* model_option = app.get_option("--model");
  const CLI::Option* shape_option = app.get_option("--input-shape");
  for (const CLI::Option* o : app.parse_order()) {
    const size_t i = seen[o]++;
    if (o == model_option) {
      options.models.push_back({model_paths[i], {}, {}});
    } else if (o == shape_option) {
      if (options.models.empty()) {
        std::cerr << "--input-shape " << shape_texts[i] << " comes before any --model\n";
        return 2;
      }
      absl::StatusOr<std::pair<std::string, std::vector<int64_t>>> shape =
          squeeze::model::ParseInputShape(shape_texts[i]);
      if (!shape.ok()) {
        std::cerr << "--input-shape: " << shape.status().message() << "\n";
        return 2;
      }
      options.models.back().input_shapes[shape->first] = shape->second;
    }
  }

  options.device_id = id;
  options.device_name = name;
  options.mode = std::string(dp::ProfileModeName(mode));
  options.threads = threads;
  options.pin_threads = !no_pin;
  options.model_variants = !no_model_variants;
  options.seed = seed;
  options.timing.warmup = warmup >= 0 ? warmup : quick ? 1 : 2;
  options.timing.min_repeats = repeats > 0 ? repeats : quick ? 3 : 5;
  options.timing.max_repeats = std::max(options.timing.min_repeats, quick ? 500 : 2000);
  options.timing.min_time_s = (min_time_ms >= 0 ? min_time_ms : quick ? 20 : 100) / 1000;
  options.model_timing.warmup = warmup >= 0 ? warmup : quick ? 2 : 3;
  options.model_timing.min_repeats = repeats > 0 ? repeats : quick ? 5 : 10;
  options.model_timing.max_repeats = std::max(options.model_timing.min_repeats, 200);
  options.model_timing.min_time_s = quick ? 1 : 3;

  std::cerr << fmt::format("squeeze-profile: {} samples ({} grid){}, {} thread{}{}\n", options.grid.size(),
                           options.mode,
                           options.models.empty() ? "" : fmt::format(" and {} model(s)", options.models.size()),
                           threads, threads == 1 ? "" : "s", no_pin ? "" : ", pinned");
  int last_step = -1;
  double last_drift = 1;
  options.progress = [&](const dp::ProfileProgress& p) {
    last_drift = p.drift;
    const int step = p.done * 20 / std::max(1, p.total);
    if (step == last_step && p.done != p.total) return;
    last_step = step;
    std::cerr << fmt::format("[{:3d}%] {}/{} measured, {} elapsed, ETA {}, speed drift {:.2f}x  ({})\n",
                             p.done * 100 / p.total, p.done, p.total, Duration(p.elapsed_s), Duration(p.eta_s), p.drift,
                             p.current);
  };

  absl::StatusOr<dp::Profile> profile = dp::RunProfile(options);
  if (!profile.ok()) {
    std::cerr << "squeeze-profile: " << profile.status() << "\n";
    return 1;
  }
  if (absl::Status written = dp::WriteProfileFile(output, *profile); !written.ok()) {
    std::cerr << "squeeze-profile: " << written << "\n";
    return 1;
  }
  std::cerr << fmt::format("wrote {}: device '{}', {} samples, {} model latencies, measured in {}\n", output,
                           profile->device.id, profile->samples.size(), profile->model_latencies.size(),
                           Duration(profile->conditions.duration_seconds));
  if (last_drift > 1.1) {
    std::cerr << fmt::format(
        "warning: the machine's speed moved by {:.2f}x during the run (the reference conv timed through it); figures "
        "measured at different times differ by up to that much. Measure again on an idle machine if that matters.\n",
        last_drift);
  }
  for (const dp::ModelLatency& m : profile->model_latencies) {
    std::cerr << fmt::format("  {}: median {:.2f} ms (p10 {:.2f}, p90 {:.2f}) over {} runs\n", m.key,
                             m.latency_median_us / 1000, m.latency_p10_us / 1000, m.latency_p90_us / 1000, m.repeats);
  }
  return 0;
}
