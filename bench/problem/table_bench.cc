// squeeze-bench-table: how long the full option table of a real model takes to build on this
// machine — analysis, measured sensitivities (ONNX Runtime), real-weight distortions and cost-model
// latencies for every layer and option — and, with --write-csv, the table itself for
// squeeze-bench-search --table.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "bench/common/problem.h"
#include "bench/common/timing.h"
#include "device_profiles/cost_model.h"
#include "device_profiles/host.h"
#include "model/loader.h"
#include "runtime/calibration.h"
#include "runtime/layer_inputs.h"
#include "runtime/sensitivity.h"
#include "runtime/session.h"
#include "runtime/shape_probe.h"
#include "search/engine/option_table_csv.h"
#include "search/problem/problem.h"

namespace {

using squeeze::bench::Clock;
using squeeze::bench::Since;

}  // namespace

int main(int argc, char** argv) {
  std::string model_path = std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/ch_PP-OCRv4_det_infer.onnx";
  std::vector<std::string> shapes;
  std::string csv;
  int samples = 2;
  int threads = 2;
  bool json = false;
  bool show_layers = false;
  double noise = squeeze::runtime::SensitivityOptions().noise_energy;
  CLI::App app{"squeeze-bench-table: time to build a real model's full option table on this machine"};
  app.add_option("MODEL", model_path, "ONNX model (default: PP-OCRv4 det)")->capture_default_str();
  app.add_option("--input-shape", shapes, "NAME=D0,D1,... (repeatable; PP-OCRv4 det's default is x=1,3,640,640)");
  app.add_option("--samples", samples, "Synthetic calibration samples")->capture_default_str();
  app.add_option("--threads", threads, "Threads for ONNX Runtime and the distortions")->capture_default_str();
  app.add_option("--write-csv", csv, "Write the option table as CSV (for squeeze-bench-search --table)");
  app.add_flag("--json", json, "Print the figures as JSON");
  app.add_option("--noise", noise, "Relative energy of the weight noise")->capture_default_str();
  app.add_flag("--layers", show_layers, "Also print every layer's measured sensitivities");
  CLI11_PARSE(app, argc, argv);
  if (app.count("MODEL") == 0 && shapes.empty()) shapes = {"x=1,3,640,640"};

  std::ifstream file(model_path, std::ios::binary);
  std::stringstream buffer;
  buffer << file.rdbuf();
  const std::string bytes = buffer.str();
  if (bytes.empty()) {
    std::cerr << "cannot read " << model_path << " (run deploy/install-deps.sh for the PP-OCR models)\n";
    return 1;
  }
  squeeze::model::AnalyzeOptions options;
  for (const std::string& text : shapes) {
    auto shape = squeeze::model::ParseInputShape(text);
    if (!shape.ok()) {
      std::cerr << shape.status().message() << "\n";
      return 2;
    }
    options.input_shapes[shape->first] = shape->second;
  }
  options.shape_probe = squeeze::runtime::OnnxRuntimeShapeProbe();

  const auto start = Clock::now();
  auto loaded = squeeze::model::LoadModel(bytes, options);
  if (!loaded.ok()) {
    std::cerr << loaded.status() << "\n";
    return 1;
  }
  const double analysis_s = Since(start);
  const int64_t analysis_rss = squeeze::bench::PeakRssBytes();

  auto t = Clock::now();
  auto session = squeeze::runtime::Session::Create(bytes);
  if (!session.ok()) {
    std::cerr << session.status() << "\n";
    return 1;
  }
  auto calibration = squeeze::runtime::SyntheticCalibration(loaded->analysis, (*session)->inputs(), samples, 1);
  if (!calibration.ok()) {
    std::cerr << calibration.status() << "\n";
    return 1;
  }
  squeeze::runtime::SensitivityOptions sensitivity_options;
  sensitivity_options.threads = threads;
  sensitivity_options.noise_energy = noise;
  auto sensitivity = squeeze::runtime::MeasureSensitivity(*loaded, *calibration, sensitivity_options);
  if (!sensitivity.ok()) {
    std::cerr << sensitivity.status() << "\n";
    return 1;
  }
  const double sensitivity_s = Since(t);
  const int64_t sensitivity_rss = squeeze::bench::PeakRssBytes();

  t = Clock::now();
  auto host =
      squeeze::device_profiles::HostDevice(squeeze::device_profiles::ReadHostFacts(squeeze::runtime::OrtVersion()));
  if (!host.ok()) {
    std::cerr << host.status() << "\n";
    return 1;
  }
  auto cost = squeeze::device_profiles::DeviceCostModel::Create(*host, {});
  if (!cost.ok()) {
    std::cerr << cost.status() << "\n";
    return 1;
  }
  // As a search: the rows each MatMul reads, for GPTQ's block-wise options.
  const Clock::time_point inputs_start = Clock::now();
  squeeze::runtime::LayerInputOptions input_options;
  input_options.threads = threads;
  auto layer_inputs = squeeze::runtime::CollectLayerInputs(
      *loaded, squeeze::runtime::RowReadingLayers(loaded->analysis), *calibration, input_options);
  if (!layer_inputs.ok()) {
    std::cerr << layer_inputs.status() << "\n";
    return 1;
  }
  const double layer_inputs_s = Since(inputs_start);
  auto problem = squeeze::bench::ProblemOn(*loaded, *host, **cost, *sensitivity, threads, &*layer_inputs);
  if (!problem.ok()) {
    std::cerr << problem.status() << "\n";
    return 1;
  }
  const double table_s = Since(t);
  const double total_s = Since(start);
  const int64_t table_rss = squeeze::bench::PeakRssBytes();
  std::map<std::string, int> kinds;
  for (const auto& layer : loaded->analysis.layers) ++kinds[layer.op_type];
  std::string kinds_json, kinds_text;
  for (const auto& [op, count] : kinds) {
    kinds_json += fmt::format("{}\"{}\": {}", kinds_json.empty() ? "" : ", ", op, count);
    kinds_text += fmt::format("{}{} {}", kinds_text.empty() ? "" : ", ", count, op);
  }
  const double file_mb = static_cast<double>(bytes.size()) / 1e6;
  size_t options_count = 0;
  for (const auto& layer : problem->table.layers) options_count += layer.options.size();
  int measured = 0;
  for (const auto& l : sensitivity->layers) measured += l.measured ? 1 : 0;

  if (!csv.empty()) {
    auto text = squeeze::search::FormatOptionTableCsv(problem->table);
    if (!text.ok()) {
      std::cerr << text.status() << "\n";
      return 1;
    }
    std::ofstream(csv) << *text;
  }
  if (show_layers) {
    for (size_t i = 0; i < sensitivity->layers.size(); ++i) {
      const auto& l = sensitivity->layers[i];
      const auto a8 = l.activation_error.find(8), a16 = l.activation_error.find(16);
      std::cerr << fmt::format("{:>3} {:<24} s={:<10.4g} act8={:<10.4g} act16={:<10.4g} range=[{:.3g}, {:.3g}]{}\n", i,
                               l.layer, l.weight, a8 == l.activation_error.end() ? 0.0 : a8->second,
                               a16 == l.activation_error.end() ? 0.0 : a16->second, l.input_range.min,
                               l.input_range.max, l.measured ? "" : " (not measured)");
    }
  }
  const std::string name = model_path.substr(model_path.find_last_of('/') + 1);
  if (json) {
    std::cout << fmt::format(
        "{{\"model\": \"{}\", \"layers\": {}, \"options\": {}, \"measured_layers\": {}, \"samples\": {}, "
        "\"threads\": {}, \"analysis_seconds\": {:.3f}, \"sensitivity_seconds\": {:.3f}, \"table_seconds\": {:.3f}, "
        "\"layer_inputs_seconds\": {:.3f}, "
        "\"total_seconds\": {:.3f}, \"layers_by_kind\": {{{}}}, \"layer_params\": {}, "
        "\"peak_rss_bytes\": {{\"analysis\": {}, \"sensitivity\": {}, \"table\": {}}}, "
        "\"model_bytes\": {}, \"peak_rss_over_model_bytes\": {:.2f}}}\n",
        name, problem->table.layers.size(), options_count, measured, samples, threads, analysis_s, sensitivity_s,
        table_s, layer_inputs_s, total_s, kinds_json, loaded->analysis.total_params, analysis_rss, sensitivity_rss,
        table_rss, bytes.size(), table_rss / 1e6 / file_mb);
  } else {
    std::cout << fmt::format(
        "{}: {} layers ({}), {} options ({} layers' sensitivity measured on {} synthetic samples, {} threads)\n"
        "  analysis {:.2f} s, sensitivity {:.2f} s, distortions + latencies {:.2f} s: {:.2f} s in all\n"
        "  peak RSS {:.0f} MB ({:.1f}x the {:.0f} MB model)\n",
        name, problem->table.layers.size(), kinds_text, options_count, measured, samples, threads, analysis_s,
        sensitivity_s, table_s, total_s, table_rss / 1e6, table_rss / 1e6 / file_mb, file_mb);
  }
  return 0;
}
