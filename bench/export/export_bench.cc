// squeeze-bench-export: compressed exports of a model measured against their predictions.
// Builds the model's search problem on this machine's `host` profile (sensitivities measured on
// the calibration inputs), exports six plans — fp32 (the original), uniform int8 (weights and
// activations), mixed (the larger half of the layers at 4-bit weights, the rest at 8, 8-bit
// activations), pruned (30% of the output channels of every plain Conv, int8), and weight-only
// w8 and w4 (8- and 4-bit weights, float activations; the 4-bit ones stored in INT4) — through
// model/export.h, runs each in ONNX Runtime on the calibration inputs (runtime/verify.h) and
// reports measured host latency (median of repeats, the host profile's threads), measured output
// SQNR, file and packed sizes, and the predicted latency, size and SQNR beside them.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>

#include "bench/common/bench_models.h"
#include "bench/common/problem.h"
#include "bench/common/timing.h"
#include "device_profiles/cost_model.h"
#include "device_profiles/host.h"
#include "model/export.h"
#include "model/loader.h"
#include "runtime/calibration.h"
#include "runtime/sensitivity.h"
#include "runtime/session.h"
#include "runtime/shape_probe.h"
#include "runtime/verify.h"
#include "search/engine/option_table.h"
#include "search/problem/plan.h"
#include "search/problem/problem.h"

namespace {

namespace model = squeeze::model;
namespace runtime = squeeze::runtime;
namespace search = squeeze::search;
using squeeze::bench::Clock;
using squeeze::bench::Since;

struct Row {
  std::string name;
  std::string plan;
  double latency_ms = 0, latency_stddev_ms = 0;
  double original_latency_ms = 0;  // fp32, its runs interleaved with this plan's
  double sqnr_db = 0, cosine = 0;
  int64_t file_bytes = 0, packed_bytes = 0;
  int qlinear_conv = 0, remaining_qdq = 0, removed_channels = 0;
  bool predicted = false;
  double predicted_latency_ms = 0, predicted_sqnr_db = 0;
  int64_t predicted_bytes = 0;
  double export_s = 0;
};

std::string Num(double v) { return std::isfinite(v) ? fmt::format("{:.4g}", v) : "null"; }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Export a model at fp32, int8, mixed 4/8-bit and 30%-channel-pruned plans; measure each on this machine"};
  const std::string default_path = std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/ch_PP-OCRv4_det_infer.onnx";
  std::string path = default_path;
  std::vector<std::string> shapes = {"x=1,3,640,640"};
  std::vector<std::string> images;
  int repeats = 10, threads = 0, samples = 2;
  std::string method = "percentile";
  double percentile = 99.999;
  bool json = false;
  std::string save;
  bool no_predict = false;
  app.add_flag("--no-predict", no_predict, "skip the predictions (no sensitivity measurement)");
  app.add_option("--save", save, "a directory to write each exported model and ONNX Runtime's optimized form of it to");
  app.add_option("model", path, "ONNX model (default: PP-OCRv4 det)");
  app.add_option("--input-shape", shapes, "NAME=D0,D1,... (PP-OCRv4 det's default is x=1,3,640,640)");
  app.add_option("--image", images, "8-bit PPM calibration images (default: synthetic N(0,1) inputs)");
  app.add_option("--repeats", repeats, "timed runs per model; the median is reported");
  app.add_option("--threads", threads, "ONNX Runtime threads (default: the host profile's)");
  app.add_option("--samples", samples, "synthetic samples when no image is given");
  app.add_option("--range", method, "activation ranges: minmax or percentile")
      ->check(CLI::IsMember({"minmax", "percentile"}));
  app.add_option("--percentile", percentile, "for --range percentile");
  app.add_flag("--json", json, "print one JSON object");
  CLI11_PARSE(app, argc, argv);
  if (app.count("--input-shape") == 0 && path != default_path) shapes.clear();  // det's shape is det's
  auto fail = [](const auto& what) {
    std::cerr << what << "\n";
    return 1;
  };

  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  if (bytes.empty()) return fail("cannot read " + path);
  auto analyze = squeeze::bench::AnalyzeOptionsFor(shapes);
  if (!analyze.ok()) return fail(analyze.status());
  auto loaded = model::LoadModel(bytes, *analyze);
  if (!loaded.ok()) return fail(loaded.status());

  auto host = squeeze::device_profiles::HostDevice(squeeze::device_profiles::ReadHostFacts(runtime::OrtVersion()));
  if (!host.ok()) return fail(host.status());
  if (threads <= 0) threads = host->threads;

  auto session = runtime::Session::Create(loaded->proto.SerializeAsString());
  if (!session.ok()) return fail(session.status());
  auto calibrated = images.empty() ? runtime::SyntheticCalibration(loaded->analysis, (*session)->inputs(), samples, 1)
                                   : runtime::CalibrationFromImages(loaded->analysis, (*session)->inputs(), images);
  if (!calibrated.ok()) return fail(calibrated.status());
  const runtime::CalibrationSet calibration = *std::move(calibrated);

  // Predictions: the search problem on the host profile.
  Clock::time_point t0 = Clock::now();
  std::optional<search::Problem> problem;
  if (!no_predict) {
    runtime::SensitivityOptions sensitivity_options;
    sensitivity_options.threads = threads;
    auto sensitivity = runtime::MeasureSensitivity(*loaded, calibration, sensitivity_options);
    if (!sensitivity.ok()) return fail(sensitivity.status());
    auto cost = squeeze::device_profiles::DeviceCostModel::Create(*host, {});
    if (!cost.ok()) return fail(cost.status());
    auto built = squeeze::bench::ProblemOn(*loaded, *host, **cost, *sensitivity, threads);
    if (!built.ok()) return fail(built.status());
    problem = *std::move(built);
  }
  const double problem_s = Since(t0);

  const auto& layers = loaded->analysis.layers;
  std::vector<int64_t> sorted;
  for (const model::Layer& l : layers) sorted.push_back(l.params);
  std::sort(sorted.begin(), sorted.end());
  const int64_t median = sorted[sorted.size() / 2];
  struct Plan {
    std::string name, description;
    std::vector<model::LayerPlan> layers;
  };
  std::vector<Plan> plans(6);
  plans[0] = {"fp32", "the original model", std::vector<model::LayerPlan>(layers.size())};
  plans[1] = {"int8", "every layer w8a8", std::vector<model::LayerPlan>(layers.size(), model::LayerPlan{8, 8})};
  plans[4] = {"w8", "every layer w8a32 (weights only)",
              std::vector<model::LayerPlan>(layers.size(), model::LayerPlan{8, 32})};
  plans[5] = {"w4", "every layer w4a32 (weights only, stored in INT4; MatMuls as MatMulNBits, blocks of 32)",
              std::vector<model::LayerPlan>(layers.size(), model::LayerPlan{4, 32})};
  // A model with MatMuls the export writes as MatMulNBits: those at 4 bits in blocks of 32 and of
  // 128, the rest w8a32, which shows what the blocks do apart from the rest of the model.
  std::vector<model::LayerPlan> nbits32(layers.size(), model::LayerPlan{8, 32});
  bool any_nbits = false;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (!model::WritesMatMulNBits(layers[i], model::ExportFlavour::kOrtCpu, 4, 32)) continue;
    plans[5].layers[i].block_size = 32;
    nbits32[i] = model::LayerPlan{4, 32};
    nbits32[i].block_size = 32;
    any_nbits = true;
  }
  if (any_nbits) {
    std::vector<model::LayerPlan> nbits128 = nbits32;
    for (model::LayerPlan& p : nbits128) p.block_size = p.block_size > 0 ? 128 : 0;
    plans.push_back({"w4-matmul-block32", "the MatMuls w4a32 as MatMulNBits in blocks of 32, the rest w8a32", nbits32});
    plans.push_back({"w4-matmul-block128", "the MatMuls w4a32 as MatMulNBits in blocks of 128, the rest w8a32",
                     std::move(nbits128)});
  }
  plans[2].name = "mixed";
  plans[2].description = "layers with at least the median weight count w4a8, the rest w8a8";
  plans[3].name = "pruned";
  plans[3].description =
      "every pointwise (1x1, ungrouped) Conv w8a8 with 30% of its output channels pruned, the rest w8a8";
  // Pruned: about 30% of the output channels of a quarter of the ungrouped Convs — those where the
  // predictor says it costs least (the pointwise ones when there are no predictions), each at the
  // offered ratio nearest 30% (the search rounds channel counts to the device's kernel blocks).
  std::vector<std::pair<double, size_t>> prune_cost;
  std::vector<double> prune_ratio(layers.size(), 0.3);
  for (size_t i = 0; i < layers.size(); ++i) {
    const model::Layer& l = layers[i];
    plans[2].layers.push_back(model::LayerPlan{l.params >= median ? 4 : 8, 8});
    if (l.op_type != "Conv" || l.grouped) continue;
    double cost = l.kernel.size() == 2 && l.kernel[0] == 1 ? 0 : 1;
    if (problem) {
      double dense = -1, pruned = -1;
      for (size_t k = 0; k < problem->details[i].size(); ++k) {
        const model::LayerPlan p = search::LayerPlanOf(problem->details[i][k].option);
        if (p.weight_bits != 8 || p.activation_bits != 8) continue;
        if (p.pattern == model::Sparsity::kDense) dense = problem->table.layers[i].options[k].error;
        if (p.pattern == model::Sparsity::kOutputChannel && std::fabs(p.prune_ratio - 0.3) < 0.1 &&
            (pruned < 0 || std::fabs(p.prune_ratio - 0.3) < std::fabs(prune_ratio[i] - 0.3))) {
          pruned = problem->table.layers[i].options[k].error;
          prune_ratio[i] = p.prune_ratio;
        }
      }
      if (dense < 0 || pruned < 0) continue;
      cost = pruned - dense;
    }
    prune_cost.push_back({cost, i});
  }
  std::sort(prune_cost.begin(), prune_cost.end());
  prune_cost.resize(std::max<size_t>(1, prune_cost.size() / 4));
  plans[3].layers.assign(layers.size(), model::LayerPlan{8, 8});
  for (const auto& [cost, i] : prune_cost)
    plans[3].layers[i] = model::LayerPlan{8, 8, model::Sparsity::kOutputChannel, prune_ratio[i]};
  plans[3].description = fmt::format(
      "w8a8; about 30% of the output channels of {} ungrouped Convs pruned (those the predictor says it costs least)",
      prune_cost.size());

  // A layer the search would not offer the plan's option (one the calibration never ran is kept at
  // 8 bits, unpruned; a channel count the device's blocks round) gets 8-bit weights at the plan's
  // activations instead, so every plan is one the search could pick and has a prediction.
  if (problem) {
    for (Plan& plan : plans) {
      int substituted = 0;
      for (size_t i = 0; i < plan.layers.size(); ++i) {
        bool offered = false;
        for (const auto& detail : problem->details[i]) {
          const model::LayerPlan p = search::LayerPlanOf(detail.option);
          offered = offered || (p.weight_bits == plan.layers[i].weight_bits &&
                                p.activation_bits == plan.layers[i].activation_bits &&
                                p.pattern == plan.layers[i].pattern && p.block_size == plan.layers[i].block_size &&
                                std::fabs(p.prune_ratio - plan.layers[i].prune_ratio) < 1e-9);
        }
        if (offered || plan.name == "fp32") continue;
        plan.layers[i] = model::LayerPlan{8, plan.layers[i].activation_bits};  // no block: int8 per channel
        ++substituted;
      }
      if (substituted > 0) {
        plan.description +=
            fmt::format(" ({} layers the search does not offer it at 8-bit weights instead)", substituted);
      }
    }
  }

  runtime::ExportCheckOptions options;
  options.ranges.method = method == "minmax" ? runtime::RangeMethod::kMinMax : runtime::RangeMethod::kPercentile;
  options.ranges.percentile = percentile;
  options.ranges.threads = threads;
  options.verify.threads = threads;
  options.verify.measure_latency = true;
  options.verify.repeats = repeats;
  options.verify.warmup = 3;
  std::vector<Row> rows;
  for (const Plan& plan : plans) {
    Row row;
    row.name = plan.name;
    row.plan = plan.description;
    if (!save.empty()) options.verify.keep_optimized_model = save + "/" + plan.name + ".optimized.onnx";
    Clock::time_point t = Clock::now();
    auto out = runtime::ExportAndVerify(*loaded, bytes, plan.layers, calibration, options);
    if (!out.ok()) return fail(fmt::format("{}: {}", plan.name, out.status().ToString()));
    row.export_s = Since(t);
    if (!save.empty()) std::ofstream(save + "/" + plan.name + ".onnx", std::ios::binary) << out->exported.bytes;
    const runtime::Verification& v = out->verification;
    row.latency_ms = 1e3 * (plan.name == "fp32" ? v.original_latency.median_s : v.exported_latency.median_s);
    row.latency_stddev_ms = 1e3 * (plan.name == "fp32" ? v.original_latency.stddev_s : v.exported_latency.stddev_s);
    row.original_latency_ms = 1e3 * v.original_latency.median_s;
    row.sqnr_db = plan.name == "fp32" ? INFINITY : v.sqnr_db;
    row.cosine = plan.name == "fp32" ? 1 : v.cosine;
    row.file_bytes = plan.name == "fp32" ? static_cast<int64_t>(bytes.size()) : out->exported.report.file_bytes;
    row.packed_bytes = out->exported.report.packed_model_bytes;
    auto it = v.integer_ops.find("QLinearConv");
    row.qlinear_conv = it == v.integer_ops.end() ? 0 : it->second;
    row.remaining_qdq = v.remaining_qdq;
    row.removed_channels = out->exported.report.removed_channels;
    if (auto choice = problem ? search::ChoiceOfPlan(*problem, plan.layers) : std::nullopt) {
      auto values = search::Evaluate(problem->table, *choice);
      if (values.ok()) {
        row.predicted = true;
        row.predicted_latency_ms = 1e3 * values->latency;
        row.predicted_bytes = static_cast<int64_t>(values->size);
        row.predicted_sqnr_db = search::SqnrDb(values->error);
      }
    }
    rows.push_back(row);
    if (!json && isatty(2)) std::cerr << "exported " << plan.name << "\n";
  }

  if (json) {
    std::cout << "{\"model\":\"" << path.substr(path.rfind('/') + 1) << "\",\"threads\":" << threads
              << ",\"repeats\":" << repeats << ",\"calibration\":\""
              << (images.empty() ? fmt::format("{} synthetic N(0,1) samples", calibration.samples.size())
                                 : fmt::format("{} text images", images.size()))
              << "\",\"range_method\":\"" << method << "\",\"onnxruntime\":\"" << runtime::OrtVersion()
              << "\",\"problem_seconds\":" << Num(problem_s) << ",\"plans\":[";
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::cout << (i ? "," : "") << "{\"name\":\"" << r.name << "\",\"plan\":\"" << r.plan
                << "\",\"measured_latency_ms\":" << Num(r.latency_ms)
                << ",\"latency_stddev_ms\":" << Num(r.latency_stddev_ms)
                << ",\"fp32_latency_ms_interleaved\":" << Num(r.original_latency_ms)
                << ",\"speedup_vs_fp32\":" << Num(r.original_latency_ms / r.latency_ms)
                << ",\"measured_sqnr_db\":" << Num(r.sqnr_db) << ",\"cosine\":" << Num(r.cosine)
                << ",\"file_bytes\":" << r.file_bytes << ",\"packed_bytes\":" << r.packed_bytes
                << ",\"qlinear_conv\":" << r.qlinear_conv << ",\"remaining_qdq\":" << r.remaining_qdq
                << ",\"removed_channels\":" << r.removed_channels
                << ",\"export_and_verify_seconds\":" << Num(r.export_s);
      if (r.predicted) {
        std::cout << ",\"predicted_latency_ms\":" << Num(r.predicted_latency_ms)
                  << ",\"predicted_bytes\":" << r.predicted_bytes
                  << ",\"predicted_sqnr_db\":" << Num(r.predicted_sqnr_db);
      }
      std::cout << "}";
    }
    std::cout << "]}\n";
    return 0;
  }
  std::cout << fmt::format("{} on this machine, {} threads, median of {}; {} calibration\n", path, threads, repeats,
                           images.empty() ? "synthetic" : "image");
  std::cout << fmt::format("{:<7} {:>10} {:>8} {:>10} {:>9} {:>9} {:>8} {:>11} {:>11} {:>11} {:>6} {:>7}\n", "plan",
                           "lat ms", "speedup", "pred ms", "SQNR dB", "pred dB", "cosine", "file B", "packed B",
                           "pred B", "QLConv", "removed");
  for (const Row& r : rows) {
    std::cout << fmt::format("{:<7} {:>10.2f} {:>8.2f} {:>10} {:>9} {:>9} {:>8.4f} {:>11} {:>11} {:>11} {:>6} {:>7}\n",
                             r.name, r.latency_ms, r.original_latency_ms / r.latency_ms,
                             r.predicted ? fmt::format("{:.2f}", r.predicted_latency_ms) : "-", Num(r.sqnr_db),
                             r.predicted ? Num(r.predicted_sqnr_db) : "-", r.cosine, r.file_bytes, r.packed_bytes,
                             r.predicted ? std::to_string(r.predicted_bytes) : "-", r.qlinear_conv, r.removed_channels);
  }
  return 0;
}
