// squeeze-bench-rounding: what GPTQ (model/rounding.h) buys over rounding to nearest, on a whole
// model. Every MatMul the export writes as MatMulNBits is put at 4 and at 3 bits, in blocks of 32
// and of 128 (every other layer stays fp32), and each plan is exported twice through
// runtime::ExportAndVerify — its blocks rounded by GPTQ on the calibration inputs' rows, and to
// nearest — and run in ONNX Runtime on the calibration inputs and on held-out inputs drawn with
// another seed, which GPTQ never saw. Beside each measured output SQNR stands the one the search
// predicts for the same plan (its option table on this machine's `host` profile, sensitivities
// measured on the calibration inputs), and beside the file its size against the fp32 original.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "bench/common/bench_models.h"
#include "bench/common/timing.h"
#include "common/files.h"
#include "device_profiles/cost_model.h"
#include "device_profiles/host.h"
#include "model/export.h"
#include "model/loader.h"
#include "runtime/calibration.h"
#include "runtime/layer_inputs.h"
#include "runtime/sensitivity.h"
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
using squeeze::bench::Clock;
using squeeze::bench::Since;

struct Row {
  int bits = 0;
  int block = 0;
  std::string rounding;
  int layers = 0, compensated = 0;
  int64_t file_bytes = 0;
  double sqnr_db = 0, held_out_sqnr_db = 0;
  std::optional<double> predicted_sqnr_db;
  std::optional<int64_t> predicted_bytes;
  double export_s = 0;
};

std::string Num(double v) { return std::isfinite(v) ? fmt::format("{:.4g}", v) : "null"; }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Export a model's MatMuls at 4 and 3 bits block-wise, rounded by GPTQ and to nearest; measure both"};
  std::string path;
  std::vector<std::string> shapes;
  int samples = 2, threads = 0;
  bool json = false;
  app.add_option("model", path, "ONNX model with MatMul layers (e.g. squeeze-make-transformer's)")->required();
  app.add_option("--input-shape", shapes, "NAME=D0,D1,...");
  app.add_option("--samples", samples, "synthetic calibration samples, and as many held-out ones");
  app.add_option("--threads", threads, "ONNX Runtime and distortion threads (default: the host profile's)");
  app.add_flag("--json", json, "print one JSON object");
  CLI11_PARSE(app, argc, argv);
  auto fail = [](const auto& what) {
    std::cerr << what << "\n";
    return 1;
  };
  absl::StatusOr<std::string> bytes = squeeze::common::ReadFile(path);
  if (!bytes.ok()) return fail(bytes.status());
  auto analyze = squeeze::bench::AnalyzeOptionsFor(shapes);
  if (!analyze.ok()) return fail(analyze.status());
  auto loaded = model::LoadModel(*bytes, *analyze);
  if (!loaded.ok()) return fail(loaded.status());
  auto host = dp::HostDevice(dp::ReadHostFacts(runtime::OrtVersion()));
  if (!host.ok()) return fail(host.status());
  if (threads <= 0) threads = host->threads;
  auto session = runtime::Session::Create(*bytes);
  if (!session.ok()) return fail(session.status());
  auto calibration = runtime::SyntheticCalibration(loaded->analysis, (*session)->inputs(), samples, 1);
  auto held_out = runtime::SyntheticCalibration(loaded->analysis, (*session)->inputs(), samples, 2);
  if (!calibration.ok()) return fail(calibration.status());
  if (!held_out.ok()) return fail(held_out.status());

  // The plans: the MatMulNBits layers at (bits, block), the rest fp32.
  const std::vector<model::Layer>& layers = loaded->analysis.layers;
  std::vector<size_t> block_wise;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (model::WritesMatMulNBits(layers[i], model::ExportFlavour::kOrtCpu, 4, 32)) block_wise.push_back(i);
  }
  if (block_wise.empty()) return fail(path + ": no MatMul the export writes as MatMulNBits");

  // The predictions: the option table with GPTQ's distortions, and with round-to-nearest's.
  Clock::time_point t0 = Clock::now();
  runtime::SensitivityOptions sensitivity_options;
  sensitivity_options.threads = threads;
  auto sensitivity = runtime::MeasureSensitivity(*loaded, *calibration, sensitivity_options);
  if (!sensitivity.ok()) return fail(sensitivity.status());
  const double sensitivity_s = Since(t0);
  runtime::LayerInputOptions input_options;
  input_options.threads = threads;
  t0 = Clock::now();
  auto inputs =
      runtime::CollectLayerInputs(*loaded, runtime::RowReadingLayers(loaded->analysis), *calibration, input_options);
  if (!inputs.ok()) return fail(inputs.status());
  const double inputs_s = Since(t0);
  int64_t rows = 0;
  for (const auto& [layer, x] : *inputs) rows = std::max(rows, x->rows());
  auto cost = dp::DeviceCostModel::Create(*host, {});
  if (!cost.ok()) return fail(cost.status());
  search::ProblemInputs problem_inputs;
  problem_inputs.model = &*loaded;
  problem_inputs.device = &*host;
  problem_inputs.cost_model = cost->get();
  problem_inputs.sensitivity = &*sensitivity;
  problem_inputs.threads = threads;
  problem_inputs.grid.weight_bits = {32, 4, 3};
  problem_inputs.grid.activation_bits = {32};
  problem_inputs.grid.prune_ratios = {0};
  problem_inputs.grid.block_sizes = {32, 128};
  t0 = Clock::now();
  auto nearest_problem = search::BuildProblem(problem_inputs);
  if (!nearest_problem.ok()) return fail(nearest_problem.status());
  const double nearest_table_s = Since(t0);
  problem_inputs.layer_inputs = &*inputs;
  t0 = Clock::now();
  auto gptq_problem = search::BuildProblem(problem_inputs);
  if (!gptq_problem.ok()) return fail(gptq_problem.status());
  const double gptq_table_s = Since(t0);

  runtime::ExportCheckOptions check;
  check.ranges.threads = threads;
  check.verify.threads = threads;
  check.export_options.layer_inputs = *inputs;
  std::vector<Row> out;
  for (int bits : {4, 3}) {
    for (int block : {32, 128}) {
      std::vector<model::LayerPlan> plan(layers.size());
      for (size_t i : block_wise) {
        plan[i] = model::LayerPlan{bits, 32};
        plan[i].block_size = block;
      }
      for (model::WeightRounding rounding :
           {model::WeightRounding::kErrorCompensating, model::WeightRounding::kNearest}) {
        Row row;
        row.bits = bits;
        row.block = block;
        row.rounding = model::WeightRoundingName(rounding);
        row.layers = static_cast<int>(block_wise.size());
        check.export_options.rounding = rounding;
        t0 = Clock::now();
        auto exported = runtime::ExportAndVerify(*loaded, *bytes, plan, *calibration, check);
        if (!exported.ok())
          return fail(fmt::format("w{} block {} {}: {}", bits, block, row.rounding, exported.status().ToString()));
        row.export_s = Since(t0);
        for (const model::LayerExport& l : exported->exported.report.layers) row.compensated += l.compensated ? 1 : 0;
        row.file_bytes = exported->exported.report.file_bytes;
        row.sqnr_db = exported->verification.sqnr_db;
        auto other = runtime::VerifyExport(*bytes, exported->exported.bytes, *held_out, check.verify);
        if (!other.ok()) return fail(other.status());
        row.held_out_sqnr_db = other->sqnr_db;
        const search::Problem& problem = rounding == model::WeightRounding::kNearest ? *nearest_problem : *gptq_problem;
        if (auto choice = search::ChoiceOfPlan(problem, plan)) {
          if (auto values = search::Evaluate(problem.table, *choice); values.ok()) {
            row.predicted_sqnr_db = search::SqnrDb(values->error);
            row.predicted_bytes = static_cast<int64_t>(values->size);
          }
        }
        out.push_back(row);
        if (!json) std::cerr << fmt::format("w{} block {} {} exported\n", bits, block, row.rounding);
      }
    }
  }

  const std::string name = path.substr(path.rfind('/') + 1);
  if (json) {
    std::cout << fmt::format(
        "{{\"model\":\"{}\",\"fp32_bytes\":{},\"block_wise_layers\":{},\"layers\":{},\"threads\":{},"
        "\"calibration\":\"{} synthetic samples (seed 1); held out: {} (seed 2)\",\"calibration_rows\":{},"
        "\"onnxruntime\":\"{}\",\"seconds\":{{\"sensitivities\":{},\"layer_inputs\":{},\"table_nearest\":{},"
        "\"table_gptq\":{}}},\"plans\":[",
        name, bytes->size(), block_wise.size(), layers.size(), threads, samples, samples, rows, runtime::OrtVersion(),
        Num(sensitivity_s), Num(inputs_s), Num(nearest_table_s), Num(gptq_table_s));
    for (size_t i = 0; i < out.size(); ++i) {
      const Row& r = out[i];
      std::cout << fmt::format(
          "{}{{\"bits\":{},\"block\":{},\"rounding\":\"{}\",\"compensated_layers\":{},\"file_bytes\":{},"
          "\"file_share_of_fp32\":{},\"measured_sqnr_db\":{},\"held_out_sqnr_db\":{},\"predicted_sqnr_db\":{},"
          "\"predicted_bytes\":{},\"export_and_verify_seconds\":{}}}",
          i ? "," : "", r.bits, r.block, r.rounding, r.compensated, r.file_bytes,
          Num(static_cast<double>(r.file_bytes) / static_cast<double>(bytes->size())), Num(r.sqnr_db),
          Num(r.held_out_sqnr_db), r.predicted_sqnr_db ? Num(*r.predicted_sqnr_db) : "null",
          r.predicted_bytes ? std::to_string(*r.predicted_bytes) : "null", Num(r.export_s));
    }
    std::cout << "]}\n";
    return 0;
  }
  std::cout << fmt::format("{}: {} of {} layers block-wise, fp32 file {} B; {} calibration rows per layer at most\n",
                           name, block_wise.size(), layers.size(), bytes->size(), rows);
  std::cout << fmt::format("{:<4} {:>5} {:<8} {:>11} {:>7} {:>10} {:>10} {:>10} {:>7}\n", "bits", "block", "rounding",
                           "file B", "share", "SQNR dB", "held out", "predicted", "GPTQ'd");
  for (const Row& r : out) {
    std::cout << fmt::format(
        "{:<4} {:>5} {:<8} {:>11} {:>7.3f} {:>10.2f} {:>10.2f} {:>10} {:>7}\n", r.bits, r.block, r.rounding,
        r.file_bytes, static_cast<double>(r.file_bytes) / static_cast<double>(bytes->size()), r.sqnr_db,
        r.held_out_sqnr_db, r.predicted_sqnr_db ? fmt::format("{:.2f}", *r.predicted_sqnr_db) : "-", r.compensated);
  }
  return 0;
}
