// squeeze-bench-fidelity: does the predicted error rank real compressions the way they really
// behave? Measures a model's sensitivities, draws random mixed per-layer plans (weight bits,
// activation bits, prune ratio and pattern), predicts each plan's relative output error as
// Σ s_i·D_i + Σ activation terms, then builds each plan as a fake-quantized, pruned float ONNX model
// (weights replaced by their compressed values; 8-bit activations through uint8 quantize /
// dequantize arithmetic with the calibrated ranges, 16-bit through fp16 casts), runs it in ONNX Runtime
// on the calibration inputs, and measures the real relative output error. Reports the Spearman
// rank correlation and the median measured / predicted ratio.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "model/loader.h"
#include "model/weight_math.h"
#include "model/weights.h"
#include "runtime/calibration.h"
#include "runtime/sensitivity.h"
#include "runtime/session.h"
#include "runtime/shape_probe.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace model = squeeze::model;
namespace runtime = squeeze::runtime;

struct LayerPlan {
  int weight_bits = 32;
  int activation_bits = 32;
  model::PrunePattern pattern = model::PrunePattern::kNone;
  double ratio = 0;
};

std::vector<double> Ranks(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> ranks(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    for (size_t k = i; k <= j; ++k) ranks[order[k]] = (i + j) / 2.0;
    i = j + 1;
  }
  return ranks;
}

double Pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const double n = static_cast<double>(a.size());
  double ma = 0, mb = 0;
  for (size_t i = 0; i < a.size(); ++i) ma += a[i] / n, mb += b[i] / n;
  double cov = 0, va = 0, vb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    cov += (a[i] - ma) * (b[i] - mb);
    va += (a[i] - ma) * (a[i] - ma);
    vb += (b[i] - mb) * (b[i] - mb);
  }
  return va > 0 && vb > 0 ? cov / std::sqrt(va * vb) : 0;
}

onnx::TensorProto Scalar(const std::string& name, int32_t type, double value) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(type);
  t.add_float_data(static_cast<float>(value));
  return t;
}

// Inserts activation fake-quantization before every main-graph layer whose plan asks for it.
void FakeQuantizeActivations(onnx::ModelProto* m, const model::Analysis& analysis,
                             const runtime::SensitivityReport& report, const std::vector<LayerPlan>& plan) {
  std::map<std::string, size_t> layer_of;
  for (size_t i = 0; i < analysis.layers.size(); ++i) {
    if (analysis.layers[i].subgraph.empty()) layer_of[analysis.layers[i].name] = i;
  }
  onnx::GraphProto* g = m->mutable_graph();
  google::protobuf::RepeatedPtrField<onnx::NodeProto> nodes;
  for (const onnx::NodeProto& n : g->node()) {
    onnx::NodeProto copy = n;
    auto it = layer_of.find(n.name());
    if (it != layer_of.end() && plan[it->second].activation_bits < 32 &&
        analysis.layers[it->second].weight_elem_type == onnx::TensorProto::FLOAT) {
      const size_t i = it->second;
      const std::string x = n.input(0), tag = std::to_string(i);
      if (plan[i].activation_bits == 8) {
        const float lo = std::min(report.layers[i].input_range.min, 0.f);
        const float hi = std::max(report.layers[i].input_range.max, 0.f);
        const double scale = hi > lo ? (static_cast<double>(hi) - lo) / 255 : 1.0;
        // q = clamp(floor(x / scale + zero + 0.5), 0, 255); x' = (q - zero) * scale, in ops every
        // opset since 8 has (QuantizeLinear needs 10).
        const double zero = std::nearbyint(-lo / scale);
        const std::pair<const char*, double> constants[] = {
            {"inv", 1 / scale}, {"shift", zero + 0.5}, {"top", 255}, {"bottom", 0}, {"zero", zero}, {"scale", scale}};
        for (const auto& [key, value] : constants) {
          *g->add_initializer() = Scalar("fq_" + std::string(key) + "_" + tag, onnx::TensorProto::FLOAT, value);
        }
        std::string value = x;
        const std::pair<const char*, const char*> steps[] = {{"Mul", "inv"},    {"Add", "shift"}, {"Floor", nullptr},
                                                             {"Min", "top"},    {"Max", "bottom"}, {"Sub", "zero"},
                                                             {"Mul", "scale"}};
        int k = 0;
        for (const auto& [op, constant] : steps) {
          onnx::NodeProto* node = nodes.Add();
          node->set_op_type(op);
          node->set_name(fmt::format("fq_{}_{}_{}", op, tag, k));
          node->add_input(value);
          if (constant != nullptr) node->add_input("fq_" + std::string(constant) + "_" + tag);
          value = fmt::format("fq_v_{}_{}", tag, k++);
          node->add_output(value);
        }
        onnx::NodeProto* last = nodes.Mutable(nodes.size() - 1);
        last->set_output(0, "fq_x_" + tag);
      } else {
        for (auto [type, in, out] : {std::make_tuple(onnx::TensorProto::FLOAT16, x, "fq_half_" + tag),
                                     std::make_tuple(onnx::TensorProto::FLOAT, "fq_half_" + tag, "fq_x_" + tag)}) {
          onnx::NodeProto* cast = nodes.Add();
          cast->set_op_type("Cast");
          cast->set_name("fq_cast_" + out);
          cast->add_input(in);
          cast->add_output(out);
          onnx::AttributeProto* to = cast->add_attribute();
          to->set_name("to");
          to->set_type(onnx::AttributeProto::INT);
          to->set_i(type);
        }
      }
      copy.set_input(0, "fq_x_" + tag);
    }
    *nodes.Add() = std::move(copy);
  }
  g->mutable_node()->Swap(&nodes);
}

double RelativeError(const std::vector<runtime::Tensor>& got, const std::vector<runtime::Tensor>& want) {
  double num = 0, den = 0;
  for (size_t o = 0; o < got.size() && o < want.size(); ++o) {
    auto a = got[o].floats(), b = want[o].floats();
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
      num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
      den += static_cast<double>(b[i]) * b[i];
    }
  }
  return den > 0 ? num / den : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  std::vector<std::string> shapes;
  int candidates = 60, samples = 2, threads = 2;
  uint64_t seed = 1;
  bool json = false;
  CLI::App app{"squeeze-bench-fidelity: predicted vs measured output error of random compressions"};
  app.add_option("MODEL", path, "ONNX model")->required()->check(CLI::ExistingFile);
  app.add_option("--input-shape", shapes, "NAME=D0,D1,... (repeatable)");
  app.add_option("--candidates", candidates, "Random plans to build and run")->capture_default_str();
  app.add_option("--samples", samples, "Synthetic calibration samples")->capture_default_str();
  app.add_option("--threads", threads, "ONNX Runtime threads")->capture_default_str();
  app.add_option("--seed", seed, "Seed of the plans")->capture_default_str();
  app.add_flag("--json", json, "Print one JSON object");
  CLI11_PARSE(app, argc, argv);

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
  runtime::SessionOptions session_options;
  session_options.intra_op_threads = threads;
  auto original = runtime::Session::Create(bytes, session_options);
  if (!original.ok()) return std::cerr << original.status() << "\n", 1;
  auto calibration = runtime::SyntheticCalibration(loaded->analysis, (*original)->inputs(), samples, 1);
  if (!calibration.ok()) return std::cerr << calibration.status() << "\n", 1;
  const auto start = Clock::now();
  runtime::SensitivityOptions sensitivity_options;
  sensitivity_options.threads = threads;
  auto report = runtime::MeasureSensitivity(*loaded, *calibration, sensitivity_options);
  if (!report.ok()) return std::cerr << report.status() << "\n", 1;
  const double sensitivity_s = std::chrono::duration<double>(Clock::now() - start).count();
  auto weights = model::ReadLayerWeights(*loaded);
  if (!weights.ok()) return std::cerr << weights.status() << "\n", 1;
  std::vector<std::vector<runtime::Tensor>> reference;
  for (const auto& sample : calibration->samples) {
    auto out = (*original)->Run(sample);
    if (!out.ok()) return std::cerr << out.status() << "\n", 1;
    reference.push_back(*std::move(out));
  }

  const auto& layers = loaded->analysis.layers;
  std::mt19937_64 rng(seed);
  std::vector<double> predicted, measured;
  const int kWeightBits[] = {32, 16, 8, 6, 5, 4, 3};
  for (int c = 0; c < candidates; ++c) {
    // Each plan has its own aggressiveness, so errors span orders of magnitude.
    const double level = std::uniform_real_distribution<double>(0, 1)(rng);
    std::vector<LayerPlan> plan(layers.size());
    double prediction = 0;
    onnx::ModelProto m = loaded->proto;
    for (size_t i = 0; i < layers.size(); ++i) {
      std::uniform_real_distribution<double> u(0, 1);
      LayerPlan& p = plan[i];
      if (u(rng) < level) p.weight_bits = kWeightBits[2 + static_cast<int>(u(rng) * 5)];
      else p.weight_bits = kWeightBits[static_cast<int>(u(rng) * 3)];
      p.activation_bits = u(rng) < level ? 8 : (u(rng) < 0.5 ? 16 : 32);
      if (u(rng) < level * 0.6) {
        const int kind = static_cast<int>(u(rng) * 3);
        p.pattern = kind == 0 ? model::PrunePattern::kUnstructured
                              : kind == 1 ? model::PrunePattern::kTwoFour : model::PrunePattern::kOutputChannel;
        p.ratio = p.pattern == model::PrunePattern::kTwoFour ? 0.5 : 0.1 * (1 + static_cast<int>(u(rng) * 6));
        if (p.pattern == model::PrunePattern::kOutputChannel && layers[i].grouped) p.pattern = model::PrunePattern::kUnstructured;
      }
      if (!layers[i].subgraph.empty()) continue;
      const model::ChannelMatrix& w = (*weights)[i];
      const model::ChannelMatrix compressed = model::Compress(w, p.weight_bits, p.pattern, p.ratio);
      const double d = model::RelativeDistortion(w.values, compressed.values);
      const auto& s = report->layers[i];
      double act = 0;
      if (p.activation_bits < 32) {
        auto it = s.activation_error.find(p.activation_bits);
        act = it == s.activation_error.end() ? 0 : it->second;
      }
      prediction += s.weight * d + act;
      auto status = model::SetLayerWeights(&m, layers[i], model::FromChannelMajor(compressed, layers[i].weight_layout));
      if (!status.ok()) return std::cerr << status << "\n", 1;
    }
    FakeQuantizeActivations(&m, loaded->analysis, *report, plan);
    auto session = runtime::Session::Create(m.SerializeAsString(), session_options);
    if (!session.ok()) return std::cerr << "candidate " << c << ": " << session.status() << "\n", 1;
    double num = 0;
    for (size_t k = 0; k < calibration->samples.size(); ++k) {
      auto out = (*session)->Run(calibration->samples[k]);
      if (!out.ok()) return std::cerr << out.status() << "\n", 1;
      num += RelativeError(*out, reference[k]) / calibration->samples.size();
    }
    predicted.push_back(prediction);
    measured.push_back(num);
    if (std::getenv("SQUEEZE_FIDELITY_PAIRS") != nullptr) {
      std::cerr << fmt::format("pair {} predicted {:.4g} measured {:.4g} level {:.2f}\n", c, prediction, num, level);
    }
    if (!json && isatty(2)) std::cerr << fmt::format("\rcandidate {}/{}", c + 1, candidates) << std::flush;
  }
  if (!json) std::cerr << "\n";
  const double spearman = Pearson(Ranks(predicted), Ranks(measured));
  std::vector<double> ratios;
  for (size_t i = 0; i < predicted.size(); ++i) {
    if (predicted[i] > 0) ratios.push_back(measured[i] / predicted[i]);
  }
  std::sort(ratios.begin(), ratios.end());
  const double median_ratio = ratios.empty() ? 0 : ratios[ratios.size() / 2];
  const double total_s = std::chrono::duration<double>(Clock::now() - start).count();
  const std::string name = path.substr(path.find_last_of('/') + 1);
  if (json) {
    std::cout << fmt::format(
        "{{\"model\": \"{}\", \"candidates\": {}, \"samples\": {}, \"spearman\": {:.4f}, \"median_ratio\": {:.4f}, "
        "\"min_measured\": {:.3g}, \"max_measured\": {:.3g}, \"sensitivity_seconds\": {:.2f}, \"seconds\": {:.2f}}}\n",
        name, predicted.size(), samples, spearman, median_ratio,
        *std::min_element(measured.begin(), measured.end()), *std::max_element(measured.begin(), measured.end()),
        sensitivity_s, total_s);
  } else {
    std::cout << fmt::format("{}: {} candidates on {} synthetic samples: Spearman {:.3f}, median measured/predicted "
                             "{:.3f} (measured errors {:.3g} to {:.3g}); {:.1f} s\n",
                             name, predicted.size(), samples, spearman, median_ratio,
                             *std::min_element(measured.begin(), measured.end()),
                             *std::max_element(measured.begin(), measured.end()), total_s);
  }
  return 0;
}
