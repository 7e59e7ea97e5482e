#include "runtime/sensitivity.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "model/weight_math.h"
#include "model/weights.h"

namespace squeeze::runtime {
namespace {

constexpr char kDeltaPrefix[] = "squeeze_delta_";

// A layer's weight made a graph input of the perturbation model.
struct WeightInput {
  std::string name;
  int32_t elem_type = onnx::TensorProto::FLOAT;
  std::vector<int64_t> dims;
  std::vector<float> values;
};

// Per main-graph layer: where its weight and activation perturbations enter.
struct Probe {
  size_t layer = 0;           // index into Analysis::layers
  size_t weight = 0;          // index into the weight inputs
  bool has_delta = false;     // float activation with a known shape
  std::string activation;     // the layer's input value
  std::string delta;          // the delta input's name
};

Tensor WeightTensor(const WeightInput& w, const std::vector<float>& values) {
  if (w.elem_type == onnx::TensorProto::FLOAT16) {
    Tensor t;
    t.name = w.name;
    t.type = ElementType::kFloat16;
    t.shape = w.dims;
    t.bytes.resize(values.size() * 2);
    uint16_t* halves = reinterpret_cast<uint16_t*>(t.bytes.data());
    for (size_t i = 0; i < values.size(); ++i) halves[i] = model::FloatToHalfBits(values[i]);
    return t;
  }
  return Tensor::Float(w.name, w.dims, values);
}

onnx::ValueInfoProto ValueInfo(const std::string& name, int32_t elem_type, const std::vector<int64_t>& dims,
                               bool with_shape) {
  onnx::ValueInfoProto v;
  v.set_name(name);
  auto* t = v.mutable_type()->mutable_tensor_type();
  t->set_elem_type(elem_type);
  if (with_shape) {
    auto* shape = t->mutable_shape();
    for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
  }
  return v;
}

// Σ‖a − b‖² and Σ‖b‖² over the float outputs.
void AddError(const std::vector<Tensor>& perturbed, const std::vector<Tensor>& reference, double* num, double* den) {
  for (size_t o = 0; o < perturbed.size() && o < reference.size(); ++o) {
    absl::Span<const float> a = perturbed[o].floats(), b = reference[o].floats();
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
      const double d = static_cast<double>(a[i]) - b[i];
      *num += d * d;
      *den += static_cast<double>(b[i]) * b[i];
    }
  }
}

// q(x) − x for asymmetric uint8 quantization over [lo, hi] (widened to hold 0).
void Uint8Delta(absl::Span<const float> x, float lo, float hi, std::vector<float>* delta) {
  lo = std::min(lo, 0.f);
  hi = std::max(hi, 0.f);
  const double scale = hi > lo ? (static_cast<double>(hi) - lo) / 255 : 1.0;
  const double zero = std::nearbyint(-lo / scale);
  delta->resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double q = std::clamp(std::nearbyint(x[i] / scale) + zero, 0.0, 255.0);
    (*delta)[i] = static_cast<float>((q - zero) * scale - x[i]);
  }
}

void HalfDelta(absl::Span<const float> x, std::vector<float>* delta) {
  delta->resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) (*delta)[i] = model::RoundToHalf(x[i]) - x[i];
}

double Energy(absl::Span<const float> x) {
  double e = 0;
  for (float v : x) e += static_cast<double>(v) * v;
  return e;
}

// The measurement itself; any failure leaves every layer unmeasured (see MeasureSensitivity).
absl::Status Measure(const model::LoadedModel& loaded, const CalibrationSet& calibration,
                     const SensitivityOptions& options, SensitivityReport* report) {
  const model::Analysis& analysis = loaded.analysis;
  const onnx::GraphProto& graph = loaded.proto.graph();
  if (calibration.samples.empty()) return absl::InvalidArgumentError("no calibration samples");

  std::map<std::string, int> node_index;
  for (int n = 0; n < graph.node_size(); ++n) node_index[graph.node(n).name()] = n;
  std::set<std::string> graph_inputs;
  for (const auto& i : graph.input()) graph_inputs.insert(i.name());

  // Weights to lift into inputs, and the probes.
  onnx::ModelProto perturb = loaded.proto;
  onnx::GraphProto* pg = perturb.mutable_graph();
  std::vector<WeightInput> weights;
  std::map<std::string, size_t> weight_of;
  std::vector<Probe> probes;
  std::set<std::string> lifted;
  for (size_t i = 0; i < analysis.layers.size(); ++i) {
    const model::Layer& layer = analysis.layers[i];
    auto node = node_index.find(layer.name);
    if (!layer.subgraph.empty() || node == node_index.end()) {
      report->warnings.push_back(absl::StrCat("layer '", layer.name,
                                              "' sits inside a subgraph: its sensitivity is not measured (taken as 1)"));
      continue;
    }
    Probe probe;
    probe.layer = i;
    auto known = weight_of.find(layer.weight_name);
    if (known == weight_of.end()) {
      const onnx::TensorProto* tensor = nullptr;
      for (const onnx::TensorProto& t : graph.initializer()) {
        if (t.name() == layer.weight_name) tensor = &t;
      }
      for (const onnx::NodeProto& n : graph.node()) {
        if (n.op_type() == "Constant" && n.output_size() == 1 && n.output(0) == layer.weight_name) {
          for (const onnx::AttributeProto& a : n.attribute()) {
            if (a.name() == "value" && a.has_t()) tensor = &a.t();
          }
        }
      }
      if (tensor == nullptr) {
        report->warnings.push_back(absl::StrCat("layer '", layer.name, "': its weight is not a plain constant of the "
                                                "main graph; sensitivity not measured (taken as 1)"));
        continue;
      }
      absl::StatusOr<std::vector<float>> values = model::DecodeFloatTensor(*tensor, layer.weight_name);
      if (!values.ok()) return values.status();
      WeightInput w;
      w.name = layer.weight_name;
      w.elem_type = tensor->data_type() == onnx::TensorProto::FLOAT16 ? onnx::TensorProto::FLOAT16
                                                                      : onnx::TensorProto::FLOAT;
      if (tensor->data_type() != onnx::TensorProto::FLOAT && tensor->data_type() != onnx::TensorProto::FLOAT16) {
        report->warnings.push_back(absl::StrCat("layer '", layer.name, "': weight type not fp32/fp16; not measured"));
        continue;
      }
      w.dims.assign(tensor->dims().begin(), tensor->dims().end());
      w.values = *std::move(values);
      known = weight_of.emplace(w.name, weights.size()).first;
      weights.push_back(std::move(w));
      lifted.insert(layer.weight_name);
    }
    probe.weight = known->second;
    const onnx::NodeProto& n = graph.node(node->second);
    probe.activation = n.input(0);
    probe.has_delta = layer.weight_elem_type == onnx::TensorProto::FLOAT && !layer.input_shape.empty();
    probe.delta = absl::StrCat(kDeltaPrefix, i);
    probes.push_back(probe);
  }
  if (probes.empty()) return absl::FailedPreconditionError("no layer of the main graph can be probed");

  // The perturbation model: lifted weights as inputs, Add(x, delta) before every probed layer.
  {
    google::protobuf::RepeatedPtrField<onnx::TensorProto> kept;
    for (const onnx::TensorProto& t : pg->initializer()) {
      if (!lifted.count(t.name())) *kept.Add() = t;
    }
    pg->mutable_initializer()->Swap(&kept);
    for (const std::string& name : lifted) {
      for (int k = 0; k < pg->input_size(); ++k) {
        if (pg->input(k).name() == name) pg->mutable_input()->DeleteSubrange(k, 1);
      }
    }
    std::map<std::string, const Probe*> probe_of_node;
    for (const Probe& p : probes) probe_of_node[analysis.layers[p.layer].name] = &p;
    google::protobuf::RepeatedPtrField<onnx::NodeProto> nodes;
    for (const onnx::NodeProto& n : pg->node()) {
      if (n.op_type() == "Constant" && n.output_size() == 1 && lifted.count(n.output(0))) continue;
      auto p = probe_of_node.find(n.name());
      onnx::NodeProto copy = n;
      if (p != probe_of_node.end() && p->second->has_delta) {
        onnx::NodeProto* add = nodes.Add();
        add->set_op_type("Add");
        add->set_name(absl::StrCat("squeeze_add_", p->second->layer));
        add->add_input(p->second->activation);
        add->add_input(p->second->delta);
        const std::string perturbed = absl::StrCat("squeeze_perturbed_", p->second->layer);
        add->add_output(perturbed);
        copy.set_input(0, perturbed);
      }
      *nodes.Add() = std::move(copy);
    }
    pg->mutable_node()->Swap(&nodes);
    for (const WeightInput& w : weights) *pg->add_input() = ValueInfo(w.name, w.elem_type, w.dims, true);
    for (const Probe& p : probes) {
      if (p.has_delta) {
        *pg->add_input() = ValueInfo(p.delta, onnx::TensorProto::FLOAT, analysis.layers[p.layer].input_shape, true);
      }
    }
  }
  // The clean model exposes every probed layer's input.
  onnx::ModelProto clean = loaded.proto;
  std::vector<std::string> exposed;
  for (const Probe& p : probes) {
    if (!p.has_delta || graph_inputs.count(p.activation)) continue;
    if (std::find(exposed.begin(), exposed.end(), p.activation) != exposed.end()) continue;
    exposed.push_back(p.activation);
    *clean.mutable_graph()->add_output() = ValueInfo(p.activation, onnx::TensorProto::FLOAT, {}, false);
  }

  SessionOptions session_options;
  session_options.intra_op_threads = std::max(1, options.threads);
  absl::StatusOr<std::unique_ptr<Session>> clean_session = Session::Create(clean.SerializeAsString(), session_options);
  if (!clean_session.ok()) return clean_session.status();
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(perturb.SerializeAsString(), session_options);
  if (!session.ok()) return session.status();
  std::vector<std::string> outputs;
  for (const auto& o : graph.output()) outputs.push_back(o.name());

  // Clean runs: each probed layer's input per sample, and its calibrated range.
  const size_t samples = calibration.samples.size();
  std::vector<std::map<std::string, Tensor>> activations(samples);
  for (size_t k = 0; k < samples; ++k) {
    std::vector<std::string> wanted = outputs;
    wanted.insert(wanted.end(), exposed.begin(), exposed.end());
    absl::StatusOr<std::vector<Tensor>> out = (*clean_session)->Run(calibration.samples[k], wanted);
    if (!out.ok()) return out.status();
    for (size_t j = outputs.size(); j < out->size(); ++j) activations[k][(*out)[j].name] = std::move((*out)[j]);
    for (const Tensor& t : calibration.samples[k]) activations[k][t.name] = t;
  }
  for (const Probe& p : probes) {
    if (!p.has_delta) continue;
    LayerSensitivity& l = report->layers[p.layer];
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (size_t k = 0; k < samples; ++k) {
      for (float v : activations[k][p.activation].floats()) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    }
    l.input_range = {lo, hi};
  }

  // The perturbation model's own unperturbed outputs are the reference, so that fusions and
  // rounding inside ONNX Runtime cancel out.
  std::vector<std::vector<Tensor>> feeds(samples);
  std::map<std::string, size_t> feed_index;
  for (size_t k = 0; k < samples; ++k) {
    feeds[k] = calibration.samples[k];
    for (const WeightInput& w : weights) feeds[k].push_back(WeightTensor(w, w.values));
    for (const Probe& p : probes) {
      if (!p.has_delta) continue;
      std::vector<float> zeros(static_cast<size_t>(activations[k][p.activation].ElementCount()), 0.f);
      feeds[k].push_back(Tensor::Float(p.delta, analysis.layers[p.layer].input_shape, zeros));
    }
  }
  for (size_t j = 0; j < feeds[0].size(); ++j) feed_index[feeds[0][j].name] = j;
  std::vector<std::vector<Tensor>> reference(samples);
  for (size_t k = 0; k < samples; ++k) {
    absl::StatusOr<std::vector<Tensor>> out = (*session)->Run(feeds[k], outputs);
    if (!out.ok()) return out.status();
    reference[k] = *std::move(out);
  }

  // Runs `samples` with one feed replaced per sample (by `make(k)`), returns the relative error.
  auto relative_error = [&](size_t slot, const std::function<Tensor(size_t)>& make) -> absl::StatusOr<double> {
    double num = 0, den = 0;
    for (size_t k = 0; k < samples; ++k) {
      Tensor original = std::move(feeds[k][slot]);
      feeds[k][slot] = make(k);
      absl::StatusOr<std::vector<Tensor>> out = (*session)->Run(feeds[k], outputs);
      feeds[k][slot] = std::move(original);
      if (!out.ok()) return out.status();
      AddError(*out, reference[k], &num, &den);
    }
    return den > 0 ? num / den : 0.0;
  };

  const double epsilon = options.noise_energy;
  for (size_t n = 0; n < probes.size(); ++n) {
    if (options.cancelled != nullptr && options.cancelled->load()) return absl::CancelledError("cancelled");
    const Probe& p = probes[n];
    LayerSensitivity& l = report->layers[p.layer];
    const WeightInput& w = weights[p.weight];
    // Weight noise of relative energy ε, from this layer's own RNG.
    std::mt19937_64 rng(options.seed * 1000003 + p.layer);
    std::normal_distribution<double> normal(0, 1);
    std::vector<double> noise(w.values.size());
    double noise_energy = 0;
    for (double& v : noise) {
      v = normal(rng);
      noise_energy += v * v;
    }
    const double scale = noise_energy > 0 ? std::sqrt(epsilon * Energy(w.values) / noise_energy) : 0;
    std::vector<float> noisy(w.values.size());
    for (size_t i = 0; i < noisy.size(); ++i) noisy[i] = static_cast<float>(w.values[i] + scale * noise[i]);
    absl::StatusOr<double> err = relative_error(feed_index[w.name], [&](size_t) { return WeightTensor(w, noisy); });
    if (!err.ok()) return err.status();
    l.weight = *err / epsilon;
    l.measured = true;

    if (p.has_delta) {
      // Measured at 8 bits; other widths scale by their quantization noise energy on the same
      // inputs (the same linearization as the weights').
      double relative8 = 0, input_energy = 0;
      std::map<int, double> relative;
      std::vector<float> delta;
      for (size_t k = 0; k < samples; ++k) {
        absl::Span<const float> x = activations[k][p.activation].floats();
        input_energy += Energy(x);
        Uint8Delta(x, l.input_range.min, l.input_range.max, &delta);
        relative8 += Energy(delta);
        for (int bits : options.activation_bits) {
          if (bits == 16) {
            HalfDelta(x, &delta);
            relative[16] += Energy(delta);
          }
        }
      }
      absl::StatusOr<double> err8 = relative_error(feed_index[p.delta], [&](size_t k) {
        std::vector<float> d;
        Uint8Delta(activations[k][p.activation].floats(), l.input_range.min, l.input_range.max, &d);
        return Tensor::Float(p.delta, analysis.layers[p.layer].input_shape, d);
      });
      if (!err8.ok()) return err8.status();
      const double gain = relative8 > 0 ? *err8 / (relative8 / input_energy) : 0;
      for (int bits : options.activation_bits) {
        if (bits == 8) l.activation_error[8] = *err8;
        if (bits == 16) l.activation_error[16] = input_energy > 0 ? gain * relative[16] / input_energy : 0;
      }
    }
    if (options.on_progress) options.on_progress(static_cast<double>(n + 1) / probes.size());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SensitivityReport> MeasureSensitivity(const model::LoadedModel& model,
                                                     const CalibrationSet& calibration,
                                                     const SensitivityOptions& options) {
  if (!(options.noise_energy > 0)) return absl::InvalidArgumentError("noise_energy must be positive");
  const auto start = std::chrono::steady_clock::now();
  SensitivityReport report;
  report.synthetic_calibration = calibration.synthetic;
  report.samples = static_cast<int>(calibration.samples.size());
  report.noise_energy = options.noise_energy;
  for (const model::Layer& layer : model.analysis.layers) {
    LayerSensitivity l;
    l.layer = layer.name;
    report.layers.push_back(std::move(l));
  }
  absl::Status status = Measure(model, calibration, options, &report);
  if (status.code() == absl::StatusCode::kCancelled) return status;
  if (!status.ok()) {
    // A model ONNX Runtime cannot run still gets a table: every layer at s_i = 1, said so.
    for (LayerSensitivity& l : report.layers) {
      l.weight = 1;
      l.measured = false;
      l.activation_error.clear();
    }
    report.warnings.push_back(absl::StrCat(
        "sensitivities could not be measured in ONNX Runtime (", status.message(),
        "); every layer's sensitivity is taken as 1, so predicted errors are weight distortions only"));
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace squeeze::runtime
