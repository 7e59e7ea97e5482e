#include "runtime/sensitivity.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/activation_sites.h"
#include "model/channel_pruning.h"
#include "model/output_weights.h"
#include "model/surgery.h"
#include "model/weight_math.h"

namespace squeeze::runtime {
namespace {

// "layer 'a'", or "3 layers ('a', 'b', 'c')", the first five named.
std::string NamedLayers(const std::vector<std::string>& layers) {
  if (layers.size() == 1) return absl::StrCat("layer '", layers[0], "'");
  std::vector<std::string> named;
  for (size_t i = 0; i < layers.size() && i < 5; ++i) named.push_back(absl::StrCat("'", layers[i], "'"));
  return absl::StrCat(layers.size(), " layers (", absl::StrJoin(named, ", "),
                      layers.size() > 5 ? absl::StrCat(" and ", layers.size() - 5, " more") : "", ")");
}

// The least weight-noise energy an fp16 layer is probed with.
constexpr double kHalfNoiseEnergy = 1e-3;
// A layer responding less than this fraction of the median layer is probed again at
// kSaturationNoiseEnergy (about the distortion of 4-bit weights, 1% relative energy).
constexpr double kSaturationRatio = 1e-3;
constexpr double kSaturationNoiseEnergy = 1e-2;
// The seed stream of channel-removal signs: layer i draws from DeriveSeed(seed, this + i), apart
// from its weight noise's DeriveSeed(seed, i).
constexpr uint64_t kChannelSignStream = uint64_t{1} << 32;
// The output-channel pruning ratios whose removals are probed: a layer's response per unit of
// energy removed may grow or shrink with the ratio (PP-OCRv4 rec: 1x to 9x from 12% to 50%).
constexpr double kChannelRemovalRatios[] = {0.1, 0.5};

ElementType TypeOf(int32_t onnx_type) {
  return onnx_type == onnx::TensorProto::FLOAT16 ? ElementType::kFloat16 : ElementType::kFloat32;
}

// A float tensor's values (fp32 or fp16); empty for other types.
std::vector<float> Floats(const Tensor& t) {
  if (t.type == ElementType::kFloat32) {
    absl::Span<const float> f = t.floats();
    return {f.begin(), f.end()};
  }
  std::vector<float> out;
  if (t.type != ElementType::kFloat16) return out;
  out.resize(t.bytes.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    uint16_t half;
    std::memcpy(&half, &t.bytes[i * 2], 2);
    out[i] = model::HalfBitsToFloat(half);
  }
  return out;
}

// `values` as a tensor of `type` (fp32, or fp16 rounded to nearest).
Tensor MakeTensor(const std::string& name, ElementType type, std::vector<int64_t> shape,
                  absl::Span<const float> values) {
  if (type == ElementType::kFloat32) return Tensor::Float(name, std::move(shape), values);
  Tensor t;
  t.name = name;
  t.type = ElementType::kFloat16;
  t.shape = std::move(shape);
  t.bytes.resize(values.size() * 2);
  for (size_t i = 0; i < values.size(); ++i) {
    const uint16_t half = model::FloatToHalfBits(values[i]);
    std::memcpy(&t.bytes[i * 2], &half, 2);
  }
  return t;
}

double Energy(absl::Span<const float> x) {
  double e = 0;
  for (float v : x) e += static_cast<double>(v) * v;
  return e;
}

// Σ_o scale[o]·‖a_o − b_o‖² over the outputs.
double WeightedSquaredError(const std::vector<Tensor>& a, const std::vector<Tensor>& b,
                            const std::vector<double>& scale) {
  double num = 0;
  for (size_t o = 0; o < a.size() && o < b.size() && o < scale.size(); ++o) {
    if (scale[o] == 0) continue;
    const std::vector<float> x = Floats(a[o]), y = Floats(b[o]);
    double sum = 0;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      const double d = static_cast<double>(x[i]) - y[i];
      sum += d * d;
    }
    num += scale[o] * sum;
  }
  return num;
}

// Calls fn(worker, i) for i in [0, count) on `workers` threads (the caller's among them), each
// index once; stops handing out indices once stop() holds.
void ParallelFor(int workers, size_t count, const std::function<void(int, size_t)>& fn,
                 const std::function<bool()>& stop) {
  std::atomic<size_t> next{0};
  auto work = [&](int worker) {
    for (size_t i = next++; i < count && !stop(); i = next++) fn(worker, i);
  };
  std::vector<std::thread> threads;
  const int n =
      static_cast<int>(std::min<size_t>(static_cast<size_t>(std::max(1, workers)), std::max<size_t>(count, 1)));
  for (int w = 1; w < n; ++w) threads.emplace_back(work, w);
  work(0);
  for (std::thread& t : threads) t.join();
}

// One measurement: the two sessions, the clean values and the per-layer runs. Measure() is called
// once; it writes report->layers and report->warnings.
class Measurement {
 public:
  Measurement(const model::LoadedModel& model, const CalibrationSet& calibration, const SensitivityOptions& options,
              std::vector<double> output_weights, SensitivityReport* report)
      : model_(model),
        calibration_(calibration),
        options_(options),
        report_(report),
        output_weights_(std::move(output_weights)) {}

  absl::Status Measure() {
    const model::Analysis& analysis = model_.analysis;
    const size_t n = analysis.layers.size();
    std::vector<size_t> all(n);
    std::iota(all.begin(), all.end(), size_t{0});

    // The values an export quantizes for a layer at integer activations: its input and its output
    // (model::ActivationTensorsOf); a main-graph layer whose activations stay float (fp16 weights)
    // still has its input probed, for the 16-bit error. One site per value, however many layers
    // quantize it.
    const model::ActivationTensors tensors = model::ActivationTensorsOf(model_);
    std::map<std::string, const onnx::NodeProto*> main_nodes;
    for (const onnx::NodeProto& node : model_.proto.graph().node()) main_nodes[node.name()] = &node;
    std::vector<std::pair<std::string, int32_t>> values;
    std::map<std::string, int> site_of;
    auto site = [&](const std::string& value, int32_t elem_type) {
      auto [it, added] = site_of.emplace(value, static_cast<int>(values.size()));
      if (added) values.emplace_back(value, elem_type);
      return it->second;
    };
    layer_sites_.assign(n, {-1, -1});
    std::map<std::string, std::vector<std::string>> unprobed;
    for (size_t i = 0; i < n; ++i) {
      const model::Layer& layer = analysis.layers[i];
      std::string input = tensors.input[i];
      if (input.empty() && layer.subgraph.empty()) {
        auto node = main_nodes.find(layer.name);
        if (node != main_nodes.end() && node->second->input_size() > 0) input = node->second->input(0);
      }
      if (input.empty()) {
        unprobed[layer.subgraph.empty() ? std::string("its input cannot be perturbed")
                                        : absl::StrCat("they sit in subgraph '", layer.subgraph,
                                                       "': their activations cannot be perturbed from outside")]
            .push_back(layer.name);
        continue;
      }
      layer_sites_[i].first = site(input, layer.weight_elem_type);
      if (!tensors.output[i].empty() && tensors.output[i] != input) {
        layer_sites_[i].second = site(tensors.output[i], layer.weight_elem_type);
      }
    }

    // The perturbation model: weights as inputs, Add(x, delta) on every site's value.
    onnx::ModelProto perturb = model_.proto;
    absl::StatusOr<std::vector<model::WeightInput>> weights = model::WeightsToInputs(&perturb, analysis, all);
    if (!weights.ok()) return weights.status();
    weights_ = *std::move(weights);
    std::vector<model::ValueDelta> deltas = model::InsertValueDeltas(&perturb, values);
    sites_.resize(deltas.size());
    for (size_t v = 0; v < deltas.size(); ++v) sites_[v].delta = std::move(deltas[v]);
    for (size_t i = 0; i < n; ++i) {
      if (!weights_[i].status.ok()) {
        report_->warnings.push_back(
            absl::StrCat("layer '", analysis.layers[i].name,
                         "': weight sensitivity not measured (taken as 1): ", weights_[i].status.message()));
      }
      const int in = layer_sites_[i].first;
      if (in >= 0 && !sites_[static_cast<size_t>(in)].delta.status.ok()) {
        unprobed["its input is a constant"].push_back(analysis.layers[i].name);
      }
    }
    // Layers whose activation cannot be probed, one warning per reason.
    for (const auto& [reason, layers] : unprobed) {
      report_->warnings.push_back(
          absl::StrCat("activation error not measured for ", NamedLayers(layers), ": ", reason));
    }

    // The clean model exposes every site's value that is not a graph input.
    std::set<std::string> graph_inputs;
    for (const auto& input : model_.proto.graph().input()) graph_inputs.insert(input.name());
    outputs_ = model::FidelityOutputs(model_.proto);
    if (absl::Status s = model::ExposeValues(&perturb, outputs_); !s.ok()) return s;
    std::vector<std::string> exposed;
    for (const Site& st : sites_) {
      const model::ValueDelta& d = st.delta;
      if (!d.status.ok() || graph_inputs.count(d.value) || exposed_index_.count(d.value)) continue;
      exposed_index_[d.value] = outputs_.size() + exposed.size();
      exposed.push_back(d.value);
    }
    onnx::ModelProto clean = model_.proto;
    if (absl::Status s = model::ExposeValues(&clean, outputs_); !s.ok()) return s;
    if (absl::Status s = model::ExposeValues(&clean, exposed); !s.ok()) return s;
    SessionOptions session_options;
    session_options.intra_op_threads = 1;
    absl::StatusOr<std::unique_ptr<Session>> clean_session =
        Session::Create(clean.SerializeAsString(), session_options);
    if (!clean_session.ok()) return clean_session.status();
    absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(perturb.SerializeAsString(), session_options);
    if (!session.ok()) return session.status();
    session_ = std::move(*session);

    const size_t samples = calibration_.samples.size();
    std::vector<std::string> fetch = outputs_;
    fetch.insert(fetch.end(), exposed.begin(), exposed.end());
    clean_.resize(samples);
    if (absl::Status s = ForSamples([&](size_t k) -> absl::Status {
          absl::StatusOr<std::vector<Tensor>> out = (*clean_session)->Run(calibration_.samples[k], fetch);
          if (!out.ok()) return out.status();
          clean_[k] = *std::move(out);
          return absl::OkStatus();
        });
        !s.ok()) {
      return s;
    }
    clean_session->reset();
    Calibrate();

    // Feeds with nothing perturbed, and the reference outputs they give.
    base_feeds_.resize(samples);
    for (size_t k = 0; k < samples; ++k) {
      std::vector<Tensor>& feeds = base_feeds_[k];
      feeds = calibration_.samples[k];
      for (const model::WeightInput& w : weights_) {
        if (!w.status.ok()) continue;
        weight_slot_[w.layer] = feeds.size();
        feeds.push_back(MakeTensor(w.name, TypeOf(w.elem_type), w.dims, w.values));
      }
      for (Site& st : sites_) {
        if (!st.delta.status.ok()) continue;
        st.slot = feeds.size();
        const std::vector<float> zero = {0.f};
        feeds.push_back(MakeTensor(st.delta.name, TypeOf(st.delta.elem_type), {1}, zero));
      }
    }
    reference_.resize(samples);
    if (absl::Status s = ForSamples([&](size_t k) -> absl::Status {
          absl::StatusOr<std::vector<Tensor>> out = session_->Run(base_feeds_[k], outputs_);
          if (!out.ok()) return out.status();
          reference_[k] = *std::move(out);
          return absl::OkStatus();
        });
        !s.ok()) {
      return s;
    }
    // Each output's error counts relative to its own energy, times its weight
    // (model/output_weights.h): the relative output error is then Σ_o scale_[o]·‖Δ_o‖².
    // An output that is 0 on every sample has no relative error: the others share its weight.
    inverse_energy_.assign(outputs_.size(), 0.0);
    scale_.assign(outputs_.size(), 0.0);
    std::vector<std::string> silent;
    double kept = 0;
    for (size_t o = 0; o < outputs_.size(); ++o) {
      double energy = 0;
      for (size_t k = 0; k < samples; ++k) energy += Energy(Floats(reference_[k][o]));
      if (energy > 0) inverse_energy_[o] = 1 / energy;
      if (output_weights_[o] == 0) continue;
      if (energy > 0) {
        scale_[o] = output_weights_[o] * inverse_energy_[o];
        kept += output_weights_[o];
      } else {
        silent.push_back(model_.proto.graph().output(static_cast<int>(o)).name());
      }
    }
    if (kept > 0) {
      for (double& sc : scale_) sc /= kept;
    }
    if (!silent.empty()) {
      report_->warnings.push_back(absl::StrCat(
          "outputs ", absl::StrJoin(silent, ", "),
          " are 0 on every calibration sample: no relative error can be measured on them, so the other outputs "
          "share their weight"));
    }
    double drift = 0;
    for (size_t k = 0; k < samples; ++k) {
      std::vector<Tensor> clean_outputs(clean_[k].begin(), clean_[k].begin() + outputs_.size());
      drift += WeightedSquaredError(reference_[k], clean_outputs, scale_);
    }
    if (drift > 1e-6) {
      report_->warnings.push_back(
          absl::StrCat("the perturbation graph's unperturbed outputs differ from the model's by a relative ", drift));
    }

    // Every layer's weight runs and every site's activation runs, side by side.
    worker_feeds_.assign(static_cast<size_t>(options_.threads), {});
    const size_t tasks = n + sites_.size();
    std::vector<absl::Status> status(tasks);
    std::mutex progress_mutex;
    size_t done = 0;
    ParallelFor(
        options_.threads, tasks,
        [&](int worker, size_t t) {
          status[t] = t < n ? MeasureWeights(worker, t) : MeasureSite(worker, sites_[t - n]);
          if (!status[t].ok()) failed_ = true;
          std::lock_guard<std::mutex> lock(progress_mutex);
          ++done;
          if (options_.on_progress && status[t].ok()) options_.on_progress(static_cast<double>(done) / tasks);
        },
        [&] { return failed_.load() || Cancelled(); });
    if (Cancelled()) return absl::CancelledError("sensitivity measurement cancelled");
    for (const absl::Status& s : status) {
      if (!s.ok()) return s;
    }
    // A layer's activation error: its input's and its output's.
    for (size_t i = 0; i < n; ++i) {
      const auto [in, out] = layer_sites_[i];
      if (in < 0 || !sites_[static_cast<size_t>(in)].delta.status.ok()) continue;
      LayerSensitivity& l = report_->layers[i];
      const Site& input = sites_[static_cast<size_t>(in)];
      l.input_range = input.range;
      l.activation_error = input.error;
      l.int8_symmetric_activation_error = input.int8_symmetric_error;
      if (out < 0 || !sites_[static_cast<size_t>(out)].delta.status.ok()) continue;
      const Site& output = sites_[static_cast<size_t>(out)];
      for (auto& [bits, error] : l.activation_error) {
        if (auto it = output.error.find(bits); it != output.error.end()) error += it->second;
      }
      if (l.int8_symmetric_activation_error && output.int8_symmetric_error) {
        *l.int8_symmetric_activation_error += *output.int8_symmetric_error;
      }
    }
    return ReprobeSaturated();
  }

 private:
  bool Cancelled() const { return options_.cancelled != nullptr && options_.cancelled->load(); }

  absl::Status ForSamples(const std::function<absl::Status(size_t)>& fn) {
    std::vector<absl::Status> status(calibration_.samples.size());
    ParallelFor(
        options_.threads, status.size(), [&](int, size_t k) { status[k] = fn(k); }, [&] { return Cancelled(); });
    if (Cancelled()) return absl::CancelledError("sensitivity measurement cancelled");
    for (const absl::Status& s : status) {
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // A value an export may quantize, its perturbation point and what was measured at it.
  struct Site {
    model::ValueDelta delta;
    size_t slot = 0;  // the delta's index in the feeds
    ActivationRange range;
    std::map<int, double> error;  // activation bits -> relative output error
    std::optional<double> int8_symmetric_error;
  };

  // A site's unperturbed value in sample k; nullptr when the run did not give it.
  const Tensor* CleanValue(size_t k, const Site& site) const {
    auto exposed = exposed_index_.find(site.delta.value);
    if (exposed != exposed_index_.end()) return &clean_[k][exposed->second];
    for (const Tensor& t : calibration_.samples[k]) {
      if (t.name == site.delta.value) return &t;
    }
    return nullptr;
  }

  // Every site's range as the exports calibrate it (options_.ranges); where that fails (a value
  // with no float values to calibrate on), min/max over the samples, with a warning.
  void Calibrate() {
    std::vector<std::string> names;
    for (const Site& st : sites_) {
      if (st.delta.status.ok()) names.push_back(st.delta.value);
    }
    RangeOptions range_options = options_.ranges;
    range_options.threads = 1;
    absl::StatusOr<std::map<std::string, model::TensorRange>> ranges =
        CalibrateRanges(model_, names, calibration_, range_options);
    if (!ranges.ok()) {
      report_->warnings.push_back(
          absl::StrCat("activation ranges taken as min/max over the samples: ", ranges.status().message()));
    }
    for (Site& st : sites_) {
      if (!st.delta.status.ok()) continue;
      if (ranges.ok()) {
        if (auto it = ranges->find(st.delta.value); it != ranges->end()) {
          st.range = {it->second.min, it->second.max};
          continue;
        }
      }
      float lo = std::numeric_limits<float>::infinity(), hi = -lo;
      for (size_t k = 0; k < calibration_.samples.size(); ++k) {
        const Tensor* x = CleanValue(k, st);
        if (x == nullptr) continue;
        for (float v : Floats(*x)) {
          if (!std::isfinite(v)) continue;
          lo = std::min(lo, v);
          hi = std::max(hi, v);
        }
      }
      if (lo <= hi) st.range = {lo, hi};
    }
  }

  // One sample's perturbed feed, and what its squared output error is multiplied by.
  struct Probe {
    Tensor tensor;
    double gain = 1;
  };

  // Σ over samples of gain · squared output error with feeds[slot] replaced by make(k); samples
  // where make gives no probe are left unperturbed (they add 0).
  absl::StatusOr<double> PerturbedError(std::vector<std::vector<Tensor>>& feeds, size_t slot,
                                        const std::function<std::optional<Probe>(size_t)>& make,
                                        const std::vector<double>& scale) {
    double error = 0;
    for (size_t k = 0; k < feeds.size(); ++k) {
      if (Cancelled()) return absl::CancelledError("sensitivity measurement cancelled");
      std::optional<Probe> probe = make(k);
      if (!probe) continue;
      std::swap(feeds[k][slot], probe->tensor);
      absl::StatusOr<std::vector<Tensor>> out = session_->Run(feeds[k], outputs_);
      std::swap(feeds[k][slot], probe->tensor);
      if (!out.ok()) return out.status();
      error += probe->gain * WeightedSquaredError(*out, reference_[k], scale);
    }
    return error;
  }

  // Σ over samples of the output error (weighed by `scale`, scale_ by default) per unit of
  // relative weight noise, with layer i's weight given Gaussian noise of relative energy `probe`.
  absl::StatusOr<double> WeightResponse(std::vector<std::vector<Tensor>>& feeds, size_t i, double probe,
                                        const std::vector<double>* scale = nullptr) {
    const model::WeightInput& w = weights_[i];
    // Each sample gets its own draw of the relative energy from the layer's stream (a second
    // draw for free, where the samples are more than one); fp16 weights are fed rounded, and
    // the energy that reaches the model is what the error is divided by.
    const size_t n = w.values.size();
    const std::vector<float> noise = StandardNormal(DeriveSeed(options_.seed, i), n * feeds.size());
    const double energy = Energy(w.values);
    return PerturbedError(
        feeds, weight_slot_.at(i),
        [&](size_t k) -> std::optional<Probe> {
          absl::Span<const float> draw = absl::MakeConstSpan(noise).subspan(k * n, n);
          const double gain = std::sqrt(probe * energy / std::max(Energy(draw), 1e-300));
          std::vector<float> noisy(n);
          for (size_t j = 0; j < n; ++j) {
            noisy[j] = static_cast<float>(w.values[j] + gain * draw[j]);
            if (w.elem_type == onnx::TensorProto::FLOAT16) noisy[j] = model::RoundToHalf(noisy[j]);
          }
          const double reached = model::RelativeDistortion(w.values, noisy);
          if (!(reached > 0)) return std::nullopt;
          return Probe{MakeTensor(w.name, TypeOf(w.elem_type), w.dims, noisy), 1 / reached};
        },
        scale != nullptr ? *scale : scale_);
  }

  // Layers whose linear response is far below the model's typical one sit where the calibration
  // inputs saturate them (a squeeze-excitation gate clipped at 0 or 1, a ReLU never on): a tiny
  // probe shows nothing, yet compression errors of real size can push them out of saturation,
  // and inputs the calibration set lacks can wake them. They are probed again at
  // kSaturationNoiseEnergy, keep the larger response, and are floored at kSaturationRatio of the
  // median layer's, so the search never takes a layer for free to compress. One whose response is
  // still exactly 0 never ran on these inputs (LayerSensitivity::exercised), unless its noise
  // reaches outputs that weigh nothing (model/output_weights.h): that one ran, and stays floored.
  absl::Status ReprobeSaturated() {
    std::vector<double> responses;
    for (const LayerSensitivity& l : report_->layers) {
      if (l.measured) responses.push_back(l.weight);
    }
    if (responses.empty()) return absl::OkStatus();
    std::nth_element(responses.begin(), responses.begin() + responses.size() / 2, responses.end());
    const double floor = kSaturationRatio * responses[responses.size() / 2];
    std::vector<size_t> low;
    for (size_t i = 0; i < report_->layers.size(); ++i) {
      const LayerSensitivity& l = report_->layers[i];
      if (l.measured && l.weight < floor) low.push_back(i);
    }
    // Outputs with values that weigh nothing: a layer may reach only those.
    bool some_unweighed = false;
    for (size_t o = 0; o < outputs_.size(); ++o) some_unweighed |= inverse_energy_[o] > 0 && scale_[o] == 0;
    std::vector<absl::Status> status(low.size());
    std::vector<uint8_t> unweighed_only(low.size(), 0);
    ParallelFor(
        options_.threads, low.size(),
        [&](int worker, size_t j) {
          std::vector<std::vector<Tensor>>& feeds = worker_feeds_[static_cast<size_t>(worker)];
          if (feeds.empty()) feeds = base_feeds_;
          absl::StatusOr<double> error = WeightResponse(feeds, low[j], kSaturationNoiseEnergy);
          if (error.ok() && *error == 0 && some_unweighed) {
            absl::StatusOr<double> anywhere = WeightResponse(feeds, low[j], kSaturationNoiseEnergy, &inverse_energy_);
            if (!anywhere.ok()) error = anywhere.status();
            if (anywhere.ok() && *anywhere > 0) unweighed_only[j] = 1;
          }
          if (!error.ok()) {
            status[j] = error.status();
            return;
          }
          LayerSensitivity& l = report_->layers[low[j]];
          l.weight = std::max(l.weight, *error);
        },
        [&] { return Cancelled(); });
    if (Cancelled()) return absl::CancelledError("sensitivity measurement cancelled");
    for (const absl::Status& st : status) {
      if (!st.ok()) return st;
    }
    std::vector<std::string> floored, idle, unweighed;
    for (size_t j = 0; j < low.size(); ++j) {
      LayerSensitivity& l = report_->layers[low[j]];
      if (unweighed_only[j]) {
        unweighed.push_back(l.layer);
      } else if (l.weight == 0) {
        l.exercised = false;
        idle.push_back(l.layer);
      }
      if (l.weight < floor) {
        l.weight = floor;
        if (l.exercised && !unweighed_only[j]) floored.push_back(l.layer);
      }
      // Its quantization and pruning errors reach the outputs as little at the probe's energy:
      // they take what the larger noise showed, and the floor.
      for (auto& [bits, q] : l.quantization) q = std::max(q, l.weight);
      for (auto& [shape, p] : l.pruning) p = std::max(p, l.weight);
    }
    // The same floor on each quantization and pruning shape, from its own median.
    for (int bits : kQuantizationShapes) {
      FloorShape([bits](LayerSensitivity& l) { return Find(l.quantization, bits); });
    }
    for (const PruningShape& shape : kPruningShapes) {
      FloorShape(
          [name = PruningShapeOf(shape.pattern, shape.ratio)](LayerSensitivity& l) { return Find(l.pruning, name); });
    }
    if (!idle.empty()) {
      report_->warnings.push_back(absl::StrCat(
          idle.size(), " layers never ran on the calibration inputs (", absl::StrJoin(idle, ", "),
          "): nothing they compute reaches the outputs there, so their sensitivity is unknown and the search keeps "
          "them at 8-bit weights or more, unpruned; calibrate on inputs that run them (e.g. --input-value for a "
          "mode input) to compress them further"));
    }
    if (!unweighed.empty()) {
      report_->warnings.push_back(absl::StrCat(
          unweighed.size(), " layers reach only outputs that weigh nothing in the error (",
          absl::StrJoin(unweighed, ", "), "): their sensitivity is taken as ", kSaturationRatio,
          " of the median layer's, so the search compresses them hard; name their outputs with --output if they "
          "matter"));
    }
    if (!floored.empty()) {
      report_->warnings.push_back(
          absl::StrCat(floored.size(), " layers barely affect the outputs on the calibration inputs (",
                       absl::StrJoin(floored, ", "), "): their sensitivity is taken as ", kSaturationRatio,
                       " of the median layer's; calibrate on more varied inputs if they matter"));
    }
    return absl::OkStatus();
  }

  template <typename Map, typename Key>
  static double* Find(Map& map, const Key& key) {
    auto it = map.find(key);
    return it == map.end() ? nullptr : &it->second;
  }

  // Raises one shape's responses (`response` of a layer: nullptr where it has none) to
  // kSaturationRatio times their median.
  void FloorShape(const std::function<double*(LayerSensitivity&)>& response) {
    std::vector<double> values;
    for (LayerSensitivity& l : report_->layers) {
      if (const double* r = response(l)) values.push_back(*r);
    }
    if (values.empty()) return;
    std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
    const double floor = kSaturationRatio * values[values.size() / 2];
    for (LayerSensitivity& l : report_->layers) {
      if (double* r = response(l)) *r = std::max(*r, floor);
    }
  }

  std::vector<std::vector<Tensor>>& FeedsOf(int worker) {
    std::vector<std::vector<Tensor>>& feeds = worker_feeds_[static_cast<size_t>(worker)];
    if (feeds.empty()) feeds = base_feeds_;
    return feeds;
  }

  // Layer i's responses to Gaussian noise and to its own quantization errors.
  absl::Status MeasureWeights(int worker, size_t i) {
    std::vector<std::vector<Tensor>>& feeds = FeedsOf(worker);
    LayerSensitivity& out = report_->layers[i];
    const model::WeightInput& w = weights_[i];
    if (!w.status.ok() || !(Energy(w.values) > 0)) return absl::OkStatus();
    // fp16 arithmetic rounds at ~1e-7 relative energy per op: probe fp16 layers well above it.
    const double epsilon = options_.noise_energy;
    const double probe = w.elem_type == onnx::TensorProto::FLOAT16 ? std::max(epsilon, kHalfNoiseEnergy) : epsilon;
    absl::StatusOr<double> error = WeightResponse(feeds, i, probe);
    if (!error.ok()) return error.status();
    out.weight = *error;
    out.measured = true;
    const model::ChannelMatrix rows = model::ToChannelMajor(w.values, model_.analysis.layers[i].weight_layout);
    for (int bits : kQuantizationShapes) {
      absl::StatusOr<std::optional<double>> q =
          ShapeResponse(feeds, i, rows, model::Compress(rows, bits, model::Sparsity::kDense, 0), probe);
      if (!q.ok()) return q.status();
      if (q->has_value()) out.quantization[bits] = **q;
    }
    for (const PruningShape& shape : kPruningShapes) {
      if (shape.pattern == model::Sparsity::kTwoFour && rows.per_channel < 4) continue;
      absl::StatusOr<std::optional<double>> p =
          ShapeResponse(feeds, i, rows, model::Compress(rows, 32, shape.pattern, shape.ratio), probe);
      if (!p.ok()) return p.status();
      if (p->has_value()) out.pruning[PruningShapeOf(shape.pattern, shape.ratio)] = **p;
    }
    return MeasureChannelRemoval(feeds, i, rows);
  }

  // Each channel's energy in `site`'s value (channels on axis 1) over the samples; nullopt when a
  // sample's value is not laid out with `channels` channels there.
  std::optional<std::vector<double>> ChannelEnergy(const Site& site, size_t channels) const {
    std::vector<double> energy(channels, 0.0);
    for (size_t k = 0; k < calibration_.samples.size(); ++k) {
      const Tensor* clean = CleanValue(k, site);
      if (clean == nullptr || clean->shape.size() < 2 || clean->shape[0] < 1 ||
          clean->shape[1] != static_cast<int64_t>(channels)) {
        return std::nullopt;
      }
      const std::vector<float> x = Floats(*clean);
      const size_t inner = x.size() / (static_cast<size_t>(clean->shape[0]) * channels);
      if (inner == 0) return std::nullopt;
      for (size_t j = 0; j < x.size(); ++j) energy[(j / inner) % channels] += static_cast<double>(x[j]) * x[j];
    }
    return energy;
  }

  // Where the exporter takes removed channels out: a value the layers reading them take them in
  // (on axis 1), and their indices there.
  struct Cut {
    const Site* site = nullptr;
    std::vector<int64_t> channels;  // ascending
  };

  // The cuts of pruning output channels `removed_rows` of layer i: the inputs of the ungrouped
  // layers its channels reach, past the depthwise Convs, BatchNormalizations, activations and
  // per-channel constants they pass through — whose biases the exporter removes with them
  // (model::ChannelsRemovedBy). Empty when the exporter removes none of them, or one such input is
  // no value the perturbation model can change.
  std::vector<Cut> CutsOf(size_t i, const std::vector<uint8_t>& removed_rows) const {
    const std::map<std::string, std::set<int64_t>> removed = model::ChannelsRemovedBy(model_, i, removed_rows);
    if (removed.empty()) return {};
    std::vector<Cut> cuts;
    std::set<int> seen;
    const std::vector<model::Layer>& layers = model_.analysis.layers;
    for (size_t j = 0; j < layers.size(); ++j) {
      if (j == i || layers[j].grouped || !layers[j].subgraph.empty()) continue;
      const int s = layer_sites_[j].first;
      if (s < 0) continue;
      const Site& site = sites_[static_cast<size_t>(s)];
      auto it = removed.find(site.delta.value);
      if (it == removed.end() || !seen.insert(s).second) continue;
      if (!site.delta.status.ok()) return {};
      cuts.push_back(Cut{&site, std::vector<int64_t>(it->second.begin(), it->second.end())});
    }
    return cuts;
  }

  // Σ over samples of the weighted squared output error with every cut's channels zeroed;
  // nullopt when a cut's value does not hold its channels on axis 1.
  absl::StatusOr<std::optional<double>> CutError(std::vector<std::vector<Tensor>>& feeds,
                                                 const std::vector<Cut>& cuts) {
    double error = 0;
    for (size_t k = 0; k < feeds.size(); ++k) {
      if (Cancelled()) return absl::CancelledError("sensitivity measurement cancelled");
      std::vector<Tensor> probes;
      for (const Cut& cut : cuts) {
        const Tensor* clean = CleanValue(k, *cut.site);
        if (clean == nullptr || clean->shape.size() < 2 || clean->shape[0] < 1 || cut.channels.empty() ||
            clean->shape[1] <= cut.channels.back()) {
          return std::optional<double>();
        }
        const std::vector<float> x = Floats(*clean);
        const auto count = static_cast<size_t>(clean->shape[1]);
        const size_t inner = x.size() / (static_cast<size_t>(clean->shape[0]) * count);
        if (inner == 0) return std::optional<double>();
        std::vector<float> delta(x.size(), 0.0f);
        for (size_t j = 0; j < x.size(); ++j) {
          const auto c = static_cast<int64_t>((j / inner) % count);
          if (std::binary_search(cut.channels.begin(), cut.channels.end(), c)) delta[j] = -x[j];
        }
        probes.push_back(MakeTensor(cut.site->delta.name, TypeOf(cut.site->delta.elem_type), clean->shape, delta));
      }
      for (size_t n = 0; n < cuts.size(); ++n) std::swap(feeds[k][cuts[n].site->slot], probes[n]);
      absl::StatusOr<std::vector<Tensor>> out = session_->Run(feeds[k], outputs_);
      for (size_t n = 0; n < cuts.size(); ++n) std::swap(feeds[k][cuts[n].site->slot], probes[n]);
      if (!out.ok()) return out.status();
      error += WeightedSquaredError(*out, reference_[k], scale_);
    }
    return std::optional<double>(error);
  }

  // For a Conv (`rows`: its weights by output channel) whose channels the exporter can remove: the
  // channels its magnitude mask removes at each of kChannelRemovalRatios taken out where the
  // exporter takes them out (CutsOf), at their own size; channel_removal is the larger response per
  // unit of energy removed. The energy is each channel's where it is cut, when that is one value
  // carrying the layer's channels as they are (the common Conv → depthwise → Conv); else in the
  // value the export quantizes as the layer's output. Where the exporter would remove nothing (a
  // pinned channel: it stays as zeros), or a cut cannot be probed, the output value is scaled down
  // channel-wise instead, each channel with its own random sign, linearized at ε as activation
  // errors are.
  absl::Status MeasureChannelRemoval(std::vector<std::vector<Tensor>>& feeds, size_t i,
                                     const model::ChannelMatrix& rows) {
    const model::Layer& layer = model_.analysis.layers[i];
    const int out = layer_sites_[i].second;
    if (layer.op_type != "Conv" || layer.grouped || layer.out_channels < 2 || out < 0 ||
        rows.channels != layer.out_channels) {
      return absl::OkStatus();
    }
    const Site& site = sites_[static_cast<size_t>(out)];
    if (!site.delta.status.ok()) return absl::OkStatus();
    const auto channels = static_cast<size_t>(layer.out_channels);
    const std::optional<std::vector<double>> output_energy = ChannelEnergy(site, channels);
    if (!output_energy) return absl::OkStatus();
    LayerSensitivity& l = report_->layers[i];
    auto keep = [&l](const std::vector<double>& energy, double response) {
      const double total = std::accumulate(energy.begin(), energy.end(), 0.0);
      l.channel_energy.resize(energy.size());
      for (size_t c = 0; c < energy.size(); ++c) l.channel_energy[c] = energy[c] / total;
      l.channel_removal = response;
    };

    std::optional<std::vector<double>> energy;
    double response = 0;
    bool as_they_are = false;
    const Site* cut_site = nullptr;
    for (double ratio : kChannelRemovalRatios) {
      const std::vector<int64_t> kept =
          model::KeptChannels(rows, model::PruneMask(rows, model::Sparsity::kOutputChannel, ratio));
      std::vector<uint8_t> removed_rows(channels, 1);
      for (int64_t c : kept) removed_rows[static_cast<size_t>(c)] = 0;
      std::vector<int64_t> removed;
      for (size_t c = 0; c < channels; ++c) {
        if (removed_rows[c]) removed.push_back(static_cast<int64_t>(c));
      }
      // One value carrying the channels as they are at one ratio carries them so at every ratio:
      // the flow is walked once then.
      const std::vector<Cut> cuts = as_they_are ? std::vector<Cut>{Cut{cut_site, removed}} : CutsOf(i, removed_rows);
      if (cuts.empty()) {
        energy.reset();
        break;
      }
      if (!energy) {
        cut_site = cuts[0].site;
        if (cuts.size() == 1 && cuts[0].channels == removed) energy = ChannelEnergy(*cut_site, channels);
        as_they_are = energy.has_value();  // not when the value holds more channels (a Concat's)
        if (!energy) energy = output_energy;
      }
      double removed_energy = 0, total = 0;
      for (size_t c = 0; c < channels; ++c) {
        total += (*energy)[c];
        if (removed_rows[c]) removed_energy += (*energy)[c];
      }
      absl::StatusOr<std::optional<double>> error = CutError(feeds, cuts);
      if (!error.ok()) return error.status();
      if (!error->has_value()) {
        energy.reset();
        break;
      }
      if (removed_energy > 0 && total > 0) response = std::max(response, **error / (removed_energy / total));
    }
    if (energy && response > 0) {
      keep(*energy, response);
      return absl::OkStatus();
    }

    const double total = std::accumulate(output_energy->begin(), output_energy->end(), 0.0);
    if (!(total > 0)) return absl::OkStatus();
    const std::vector<float> signs = StandardNormal(DeriveSeed(options_.seed, kChannelSignStream + i), channels);
    const double alpha = std::sqrt(options_.noise_energy);
    absl::StatusOr<double> error = PerturbedError(
        feeds, site.slot,
        [&](size_t k) -> std::optional<Probe> {
          const Tensor* clean = CleanValue(k, site);
          std::vector<float> delta = Floats(*clean);
          const size_t inner = delta.size() / (static_cast<size_t>(clean->shape[0]) * channels);
          for (size_t j = 0; j < delta.size(); ++j) {
            delta[j] = static_cast<float>((signs[(j / inner) % channels] < 0 ? alpha : -alpha) * delta[j]);
          }
          return Probe{MakeTensor(site.delta.name, TypeOf(site.delta.elem_type), clean->shape, delta),
                       1 / (alpha * alpha)};
        },
        scale_);
    if (!error.ok()) return error.status();
    keep(*output_energy, *error);
    return absl::OkStatus();
  }

  // The output error of each activation width when the site's value alone is quantized.
  absl::Status MeasureSite(int worker, Site& site) {
    if (!site.delta.status.ok()) return absl::OkStatus();
    std::vector<std::vector<Tensor>>& feeds = FeedsOf(worker);
    const model::ActivationQuantizer q =
        model::ActivationQuantizerOf(model::ActivationScheme::kAsymmetricUint8, site.range.min, site.range.max);
    for (int bits : options_.activation_bits) {
      absl::StatusOr<double> error = ActivationResponse(feeds, site, bits, q);
      if (!error.ok()) return error.status();
      site.error[bits] = *error;
    }
    if (options_.int8_symmetric) {
      absl::StatusOr<double> error = ActivationResponse(
          feeds, site, 8,
          model::ActivationQuantizerOf(model::ActivationScheme::kSymmetricInt8, site.range.min, site.range.max));
      if (!error.ok()) return error.status();
      site.int8_symmetric_error = *error;
    }
    return absl::OkStatus();
  }

  // Σ over samples of the output error per unit of relative distortion, with layer i's weight
  // (`rows`: its values by output channel) carrying the error `shaped` − `rows` of one of its own
  // compressions (a quantization, a pruning mask), scaled up to relative energy `probe` where it is
  // smaller; nullopt when the compression changes nothing (every channel already on its grid).
  absl::StatusOr<std::optional<double>> ShapeResponse(std::vector<std::vector<Tensor>>& feeds, size_t i,
                                                      const model::ChannelMatrix& rows,
                                                      const model::ChannelMatrix& shaped, double probe) {
    const model::WeightInput& w = weights_[i];
    const model::ChannelLayout& layout = model_.analysis.layers[i].weight_layout;
    const double distortion = model::RelativeDistortion(rows.values, shaped.values);
    if (!(distortion > 0)) return std::nullopt;
    const double alpha = std::max(1.0, std::sqrt(probe / distortion));
    model::ChannelMatrix perturbed = rows;
    for (size_t j = 0; j < perturbed.values.size(); ++j) {
      perturbed.values[j] = static_cast<float>(rows.values[j] + alpha * (shaped.values[j] - rows.values[j]));
    }
    std::vector<float> values = model::FromChannelMajor(perturbed, layout);
    if (w.elem_type == onnx::TensorProto::FLOAT16) {
      for (float& v : values) v = model::RoundToHalf(v);
    }
    const double reached = model::RelativeDistortion(w.values, values);
    if (!(reached > 0)) return std::nullopt;
    const Tensor tensor = MakeTensor(w.name, TypeOf(w.elem_type), w.dims, values);
    absl::StatusOr<double> error = PerturbedError(
        feeds, weight_slot_.at(i),
        [&](size_t) -> std::optional<Probe> {
          return Probe{tensor, 1 / reached};
        },
        scale_);
    if (!error.ok()) return error.status();
    return std::optional<double>(*error);
  }

  // The output error when the site's value is quantized by `q` at `bits`: the quantization error
  // q(x) − x, fed at most at relative energy ε and scaled back — the linear response, so that
  // activation terms add to each other and to the weight terms as the predictor adds them.
  absl::StatusOr<double> ActivationResponse(std::vector<std::vector<Tensor>>& feeds, const Site& site, int bits,
                                            const model::ActivationQuantizer& q) {
    const double epsilon = options_.noise_energy;
    return PerturbedError(
        feeds, site.slot,
        [&](size_t k) -> std::optional<Probe> {
          const Tensor* clean = CleanValue(k, site);
          if (clean == nullptr) return std::nullopt;
          std::vector<float> delta = Floats(*clean);
          const double signal = Energy(delta);
          for (float& v : delta) v = model::FakeQuantize(v, bits, q) - v;
          const double noise = Energy(delta);
          if (!(noise > 0)) return std::nullopt;
          double gain = 1;
          if (signal > 0 && noise > epsilon * signal) {
            const double alpha = std::sqrt(epsilon * signal / noise);
            for (float& v : delta) v = static_cast<float>(v * alpha);
            gain = 1 / (alpha * alpha);
          }
          return Probe{MakeTensor(site.delta.name, TypeOf(site.delta.elem_type), clean->shape, delta), gain};
        },
        scale_);
  }

  const model::LoadedModel& model_;
  const CalibrationSet& calibration_;
  const SensitivityOptions& options_;
  SensitivityReport* report_;

  std::vector<model::WeightInput> weights_;                     // per layer
  std::vector<Site> sites_;                                     // per value an export may quantize
  std::vector<std::pair<int, int>> layer_sites_;                // per layer: its input's and output's site, -1: none
  std::vector<std::string> outputs_;                            // model::FidelityOutputs
  std::map<std::string, size_t> exposed_index_;                 // site value -> index in clean_[k]
  std::unique_ptr<Session> session_;                            // the perturbation model
  std::vector<std::vector<Tensor>> clean_;                      // per sample: outputs, then exposed values
  std::vector<std::vector<Tensor>> base_feeds_;                 // per sample: inputs, weights, zero deltas
  std::vector<std::vector<std::vector<Tensor>>> worker_feeds_;  // each worker's copy
  std::map<size_t, size_t> weight_slot_;                        // layer -> index in the feeds
  std::vector<std::vector<Tensor>> reference_;                  // per sample: unperturbed outputs
  std::vector<double> output_weights_;                          // per graph output (model::ResolveOutputWeights)
  std::vector<double> inverse_energy_;  // per output: 1 / its reference energy, 0 for an output all 0
  std::vector<double> scale_;           // per output: its share of the weight times inverse_energy_
  std::atomic<bool> failed_{false};
};

}  // namespace

int QuantizationShapeOf(int weight_bits) {
  if (weight_bits >= 16) return 0;
  int shape = 0, narrowest = 0;
  for (int bits : kQuantizationShapes) {
    if (bits <= weight_bits && bits > shape) shape = bits;
    if (narrowest == 0 || bits < narrowest) narrowest = bits;
  }
  return shape == 0 ? narrowest : shape;
}

std::string PruningShapeOf(model::Sparsity pattern, double ratio) {
  if (pattern == model::Sparsity::kTwoFour) return "2:4";
  if (pattern != model::Sparsity::kUnstructured || !(ratio > 0)) return "";
  double shape = 0;
  for (const PruningShape& s : kPruningShapes) {
    if (s.pattern != pattern) continue;
    // Within rounding at or above: an option's ratio is a whole count of the layer's weights.
    if (s.ratio >= ratio - 1e-9 && (shape == 0 || s.ratio < shape)) shape = s.ratio;
  }
  if (shape == 0) {
    for (const PruningShape& s : kPruningShapes) {
      if (s.pattern == pattern) shape = std::max(shape, s.ratio);
    }
  }
  return absl::StrCat("unstructured ", std::lround(shape * 100), "%");
}

double PredictedQuantizationError(const LayerSensitivity* sensitivity, int weight_bits, double quantized) {
  if (sensitivity == nullptr) return quantized;
  double s = sensitivity->weight;
  if (auto it = sensitivity->quantization.find(QuantizationShapeOf(weight_bits));
      it != sensitivity->quantization.end()) {
    s = it->second;
  }
  return s * quantized;
}

double PredictedPruningError(const LayerSensitivity* sensitivity, model::Sparsity pattern, double ratio, double pruned,
                             std::optional<double> removed_energy) {
  if (sensitivity == nullptr) return pruned;
  if (pattern == model::Sparsity::kOutputChannel && removed_energy && sensitivity->channel_removal) {
    return *sensitivity->channel_removal * *removed_energy;
  }
  double s = sensitivity->weight;
  if (auto it = sensitivity->pruning.find(PruningShapeOf(pattern, ratio)); it != sensitivity->pruning.end()) {
    s = it->second;
  }
  return s * pruned;
}

std::optional<double> RemovedEnergyShare(const LayerSensitivity& sensitivity, const std::vector<int64_t>& kept) {
  if (!sensitivity.channel_removal) return std::nullopt;
  double share = 1;
  for (int64_t c : kept) {
    if (c < 0 || static_cast<size_t>(c) >= sensitivity.channel_energy.size()) return std::nullopt;
    share -= sensitivity.channel_energy[static_cast<size_t>(c)];
  }
  return std::max(share, 0.0);
}

absl::StatusOr<SensitivityReport> MeasureSensitivity(const model::LoadedModel& model, const CalibrationSet& calibration,
                                                     const SensitivityOptions& options) {
  if (!(options.noise_energy > 0) || !std::isfinite(options.noise_energy)) {
    return absl::InvalidArgumentError(absl::StrCat("noise_energy ", options.noise_energy, " is not positive"));
  }
  for (int bits : options.activation_bits) {
    if (bits != 8 && bits != 16 && bits != 32) {
      return absl::InvalidArgumentError(absl::StrCat("activation bits ", bits, ": measured are 8, 16 and 32"));
    }
  }
  if (options.threads < 1) return absl::InvalidArgumentError("threads must be at least 1");
  if (calibration.samples.empty()) return absl::InvalidArgumentError("the calibration set has no samples");
  const std::vector<model::GraphOutput> graph_outputs = model::GraphOutputs(model.proto);
  absl::StatusOr<std::vector<double>> output_weights =
      model::ResolveOutputWeights(graph_outputs, options.output_weights);
  if (!output_weights.ok()) return output_weights.status();
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
  report.weighted_over = model::DescribeOutputWeights(graph_outputs, *output_weights, !options.output_weights.empty());
  absl::Status status = Measurement(model, calibration, options, *output_weights, &report).Measure();
  // Out of memory or time says nothing of the model: a table of defaults would hide it.
  if (absl::IsCancelled(status) || absl::IsResourceExhausted(status) || absl::IsDeadlineExceeded(status)) {
    return status;
  }
  if (!status.ok()) {
    // A model ONNX Runtime cannot run still gets a table: every layer at s_i = 1, said so.
    for (LayerSensitivity& l : report.layers) {
      l.weight = 1;
      l.measured = false;
      l.quantization.clear();
      l.pruning.clear();
      l.channel_energy.clear();
      l.channel_removal.reset();
      l.activation_error.clear();
      l.int8_symmetric_activation_error.reset();
    }
    report.warnings.push_back(
        absl::StrCat("sensitivities could not be measured in ONNX Runtime (", status.message(),
                     "); every layer's sensitivity is taken as 1, so predicted errors are weight distortions only"));
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace squeeze::runtime
