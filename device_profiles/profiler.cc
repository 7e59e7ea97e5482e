#include "device_profiles/profiler.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "common/sha256.h"
#include "device_profiles/host.h"
#include "device_profiles/single_op.h"
#include "model/channel_pruning.h"
#include "model/export.h"
#include "model/export_flavour.h"
#include "model/loader.h"
#include "runtime/calibration.h"
#include "runtime/shape_probe.h"
#include "runtime/verify.h"

namespace squeeze::device_profiles {
namespace {

using Clock = std::chrono::steady_clock;

std::string Rfc3339(absl::Time t) { return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone()); }

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(buffer.str()));
}

// FNV-1a: a seed per sample from its key, the same in every build and run.
uint64_t KeySeed(uint64_t seed, const std::string& key) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
  return h;
}

// The shape of a layer sample without its precision: samples of one shape at two precisions.
std::string ShapeKey(const LatencySample& s) {
  return absl::StrCat(s.in_channels, ">", s.out_channels, " ", s.height, "x", s.width, " k", s.kernel, " s", s.stride,
                      " g", s.groups, " ", s.gemm_m, "x", s.gemm_k, ">", s.gemm_n);
}

double Seconds(const LatencySample& s) { return s.latency_median_us * 1e-6; }

// Ops per second of a layer sample: 2 per MAC, on kept weights only when sparse.
double Rate(const LatencySample& s) {
  const double kept = s.sparsity == Sparsity::kDense ? 1 : 1 - s.sparsity_ratio;
  return 2.0 * static_cast<double>(s.macs) * kept / Seconds(s);
}

std::string FormatRate(double ops) { return absl::StrFormat("%.2f Gops/s", ops / 1e9); }

// options.channel_alignment, else the host's as detected (8 when detection fails): RunProfile
// sets it from the device it detected once; a direct TimeModel caller may leave it to this.
int ChannelAlignmentFor(const ProfilerOptions& options) {
  if (options.channel_alignment > 0) return options.channel_alignment;
  absl::StatusOr<Device> host = HostDevice(ReadHostFacts(runtime::OrtVersion()));
  return model::ChannelAlignment(model::ExportFlavour::kOrtCpu,
                                 host.ok() ? host->simd_features : std::vector<std::string>{});
}

// The uniform variants of a model as the export for ONNX Runtime's CPU provider writes them (fp16
// weights; int8 weights; int8 weights with uint8 activations; fp32 with half the output channels
// pruned, kept at multiples of `channel_alignment`), labelled as UniformVariantLabel, with
// activation ranges calibrated on `inputs`. What LoadModel or the exporter refuses comes back; a
// model with no channel the exporter can remove has no pruned variant.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> UniformVariants(
    absl::string_view bytes, const std::vector<runtime::Tensor>& inputs, int threads, int channel_alignment) {
  model::AnalyzeOptions analyze;
  for (const runtime::Tensor& t : inputs) analyze.input_shapes[t.name] = t.shape;
  analyze.shape_probe = runtime::OnnxRuntimeShapeProbe();
  absl::StatusOr<model::LoadedModel> loaded = model::LoadModel(bytes, analyze);
  if (!loaded.ok()) return loaded.status();
  runtime::CalibrationSet calibration;
  calibration.samples = {inputs};
  calibration.synthetic = true;
  const std::vector<model::ChannelPruningReach> reach = model::AnalyzeChannelPruning(*loaded);
  std::vector<std::pair<UniformVariant, std::vector<model::LayerPlan>>> plans;
  for (const auto& [w, a] : {std::make_pair(16, 32), std::make_pair(8, 32), std::make_pair(8, 8)}) {
    if (!model::Realizes(model::ExportFlavour::kOrtCpu, w, a)) continue;
    plans.emplace_back(UniformVariant{w, a, 0},
                       std::vector<model::LayerPlan>(loaded->analysis.layers.size(), model::LayerPlan{w, a}));
  }
  constexpr double kPrunedRatio = 0.5;
  std::vector<model::LayerPlan> pruned =
      model::UniformChannelPlan(reach, *loaded, model::LayerPlan{32, 32}, kPrunedRatio, channel_alignment);
  if (std::any_of(pruned.begin(), pruned.end(), [](const model::LayerPlan& p) { return p.prune_ratio > 0; })) {
    plans.emplace_back(UniformVariant{32, 32, kPrunedRatio}, std::move(pruned));
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [variant, plan] : plans) {
    runtime::RangeOptions range_options;
    range_options.threads = threads;
    model::ExportOptions export_options;
    export_options.shape_probe = analyze.shape_probe;
    absl::StatusOr<model::ExportedModel> exported =
        runtime::ExportCalibrated(*loaded, plan, calibration, range_options, export_options);
    if (!exported.ok()) return exported.status();
    out.emplace_back(UniformVariantLabel(variant.weight_bits, variant.activation_bits, variant.channel_ratio),
                     std::move(exported->bytes));
  }
  return out;
}

// A whole model's inputs: declared shapes with symbolic dims from `given` (a leading symbolic
// dim defaults to 1), values from N(0, 1) for floats, zeros otherwise.
absl::StatusOr<std::vector<runtime::Tensor>> ModelInputs(const runtime::Session& session, const ModelToTime& model,
                                                         std::mt19937_64* rng) {
  std::vector<runtime::Tensor> inputs;
  for (const runtime::TensorInfo& info : session.inputs()) {
    std::vector<int64_t> shape = info.shape;
    auto given = model.input_shapes.find(info.name);
    if (given != model.input_shapes.end()) {
      if (given->second.size() != shape.size()) {
        return absl::InvalidArgumentError(absl::StrCat(model.path, ": input '", info.name, "' has ", shape.size(),
                                                       " dims, --input-shape gives ", given->second.size()));
      }
      for (size_t d = 0; d < shape.size(); ++d) {
        if (shape[d] >= 0 && shape[d] != given->second[d]) {
          return absl::InvalidArgumentError(absl::StrCat(model.path, ": input '", info.name, "' dim ", d, " is ",
                                                         shape[d], ", --input-shape gives ", given->second[d]));
        }
        shape[d] = given->second[d];
      }
    }
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] >= 0) continue;
      if (d == 0) {
        shape[d] = 1;
        continue;
      }
      return absl::InvalidArgumentError(absl::StrCat(model.path, ": input '", info.name, "' dim ", d,
                                                     " is symbolic; give --input-shape ", info.name, "=D0,D1,..."));
    }
    if (info.type == runtime::ElementType::kUnsupported) {
      return absl::InvalidArgumentError(
          absl::StrCat(model.path, ": input '", info.name, "' has an element type not fed here"));
    }
    runtime::Tensor t;
    t.name = info.name;
    t.type = info.type;
    t.shape = shape;
    t.bytes.assign(static_cast<size_t>(t.ElementCount()) * runtime::ElementSize(t.type), '\0');
    if (t.type == runtime::ElementType::kFloat32) {
      // As the server's synthetic calibration draws them: a model's speed can depend on its values
      // (denormals deep in the network), so it is timed on what its searches run it on.
      std::normal_distribution<float> normal(0.f, 1.f);
      for (float& v : t.mutable_floats()) v = normal(*rng);
    }
    inputs.push_back(std::move(t));
  }
  return inputs;
}

std::string ShapesText(const std::map<std::string, std::vector<int64_t>>& shapes) {
  std::vector<std::string> parts;
  for (const auto& [name, dims] : shapes) parts.push_back(absl::StrCat(name, "=", absl::StrJoin(dims, ",")));
  return absl::StrJoin(parts, " ");
}

// Times `model` (built for `spec`) and fills the sample: shape, MACs (checked against the model's
// analysis), bytes, latency figures and how they were measured.
absl::StatusOr<LatencySample> MeasureSample(const OpSpec& spec, const SingleOpModel& model,
                                            const runtime::SessionOptions& session_options,
                                            const ProfilerOptions& options, const std::string& ort_version) {
  absl::StatusOr<std::unique_ptr<runtime::Session>> session = runtime::Session::Create(model.bytes, session_options);
  if (!session.ok()) return session.status();
  absl::StatusOr<runtime::Timing> timing = (*session)->Time(model.inputs, options.timing);
  if (!timing.ok()) return timing.status();
  LatencySample sample = SampleOf(spec);
  sample.macs = ShapeMacs(sample);
  if (IsLayerKind(spec.kind) && sample.macs != model.macs) {
    return absl::InternalError(
        absl::StrCat("the model's analysis counts ", model.macs, " MACs, the sample's shape ", sample.macs));
  }
  sample.weight_bytes = model.weight_bytes;
  sample.activation_bytes = model.activation_bytes;
  sample.latency_median_us = timing->median_s * 1e6;
  sample.latency_mean_us = timing->mean_s * 1e6;
  sample.latency_stddev_us = timing->stddev_s * 1e6;
  sample.latency_p10_us = timing->p10_s * 1e6;
  sample.latency_p90_us = timing->p90_s * 1e6;
  sample.repeats = timing->repeats;
  sample.threads = options.threads;
  sample.runtime_version = ort_version;
  sample.measured_at = Rfc3339(absl::Now());
  sample.source = absl::StrCat(kProfilerTool, " ", kProfilerVersion, ": single-op model (",
                               absl::StrJoin(model.op_types, ", "), ")");
  sample.provenance = Provenance::kMeasured;
  return sample;
}

}  // namespace

OpSpec ReferenceOp() {
  OpSpec s;
  s.kind = OpKind::kConv;
  s.in_channels = s.out_channels = 64;
  s.height = s.width = 20;
  s.kernel = 3;
  return s;
}

std::string GroupKey(OpKind kind, int weight_bits, int activation_bits, Sparsity sparsity) {
  return absl::StrCat(OpKindName(kind), " ", PrecisionLabel(weight_bits, activation_bits), " ", SparsityName(sparsity));
}

MachineState ReadMachineState(int cpu) {
  MachineState m;
  const std::string dir = absl::StrCat("/sys/devices/system/cpu/cpu", cpu, "/cpufreq/");
  m.cpu_governor = Slurp(dir + "scaling_governor");
  (void)absl::SimpleAtoi(Slurp(dir + "scaling_cur_freq"), &m.cpu_frequency_khz);
  (void)absl::SimpleAtoi(Slurp(dir + "cpuinfo_max_freq"), &m.cpu_max_frequency_khz);
  if (m.cpu_frequency_khz <= 0) {
    // No cpufreq (most VMs): the clock /proc/cpuinfo reports for that processor.
    int current = -1;
    for (absl::string_view line : absl::StrSplit(Slurp("/proc/cpuinfo"), '\n')) {
      std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, absl::MaxSplits(':', 1));
      const absl::string_view key = absl::StripAsciiWhitespace(kv.first);
      if (key == "processor") (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(kv.second), &current);
      double mhz = 0;
      if (key == "cpu MHz" && current == cpu && absl::SimpleAtod(absl::StripAsciiWhitespace(kv.second), &mhz)) {
        m.cpu_frequency_khz = static_cast<int64_t>(std::llround(mhz * 1000));
      }
    }
  }
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0) m.hostname = host;
  return m;
}

std::vector<Capability> MeasuredCapabilities(const std::vector<LatencySample>& samples,
                                             const std::map<std::string, std::string>& kernels,
                                             const std::string& source) {
  struct Group {
    OpKind kind;
    int w, a;
    Sparsity sparsity;
    std::vector<const LatencySample*> samples;
  };
  std::vector<Group> groups;
  std::map<std::string, size_t> index;
  for (const LatencySample& s : samples) {
    if (!IsLayerKind(s.op_kind) || s.macs <= 0 || s.latency_median_us <= 0) continue;
    const std::string key = GroupKey(s.op_kind, s.weight_bits, s.activation_bits, s.sparsity);
    auto [it, added] = index.emplace(key, groups.size());
    if (added) groups.push_back(Group{s.op_kind, s.weight_bits, s.activation_bits, s.sparsity, {}});
    groups[it->second].samples.push_back(&s);
  }
  auto find = [&](OpKind kind, int w, int a, Sparsity sp) -> const Group* {
    auto it = index.find(GroupKey(kind, w, a, sp));
    return it == index.end() ? nullptr : &groups[it->second];
  };

  std::vector<Capability> rows;
  for (const Group& g : groups) {
    std::vector<double> rates;
    const LatencySample* fastest = nullptr;
    for (const LatencySample* s : g.samples) {
      rates.push_back(Rate(*s));
      if (fastest == nullptr || Rate(*s) > Rate(*fastest)) fastest = s;
    }
    std::sort(rates.begin(), rates.end());
    const double peak = rates.back();
    const double median = rates[rates.size() / 2];

    // What this row stands for, and how much faster than that it is.
    const Group* reference = nullptr;
    std::string against;
    if (g.sparsity != Sparsity::kDense) {
      reference = find(g.kind, g.w, g.a, Sparsity::kDense);
      against = absl::StrCat(PrecisionLabel(g.w, g.a), " dense");
    } else if (g.w != 32 || g.a != 32) {
      reference = find(g.kind, 32, 32, Sparsity::kDense);
      against = "fp32 dense";
    }
    bool native = true;
    std::string speed;
    if (reference != nullptr) {
      std::map<std::string, const LatencySample*> by_shape;
      for (const LatencySample* s : reference->samples) by_shape[ShapeKey(*s)] = s;
      double log_sum = 0;
      int shared = 0;
      for (const LatencySample* s : g.samples) {
        auto it = by_shape.find(ShapeKey(*s));
        if (it == by_shape.end()) continue;
        log_sum += std::log(Seconds(*it->second) / Seconds(*s));
        ++shared;
      }
      if (shared > 0) {
        const double speedup = std::exp(log_sum / shared);
        native = speedup >= 1.1;
        speed = absl::StrFormat("%.2fx the speed of %s over %d shared shapes (geometric mean of latency ratios); %s",
                                speedup, against, shared,
                                native ? "faster: native" : "not 1.1x faster: emulated, no kernel of its own");
      } else {
        speed = absl::StrCat("no shape shared with ", against, " to compare");
      }
    } else if (g.w == 32 && g.a == 32 && g.sparsity == Sparsity::kDense) {
      speed = "the baseline";
    }
    const std::string group_key = GroupKey(g.kind, g.w, g.a, g.sparsity);
    auto kernel = kernels.find(group_key);

    Capability c;
    c.op_kind = g.kind;
    c.weight_bits = g.w;
    c.activation_bits = g.a;
    c.sparsity = g.sparsity;
    c.native = native;
    c.peak_ops_per_s = peak;
    c.efficiency = std::clamp(median / peak, 1e-6, 1.0);
    c.source = source;
    c.provenance = Provenance::kMeasured;
    c.derivation = absl::StrFormat(
        "%zu single-op samples; peak = fastest sample ('%s'): 2 x MACs%s / median latency = %s; efficiency = "
        "median sample's rate %s / peak = %.2f; %s%s",
        g.samples.size(), fastest->key, g.sparsity == Sparsity::kDense ? "" : " x kept share", FormatRate(peak),
        FormatRate(median), c.efficiency, speed,
        kernel == kernels.end() ? "" : absl::StrCat("; ONNX Runtime ran it as ", kernel->second));
    rows.push_back(c);
  }

  // All-kinds rows from the conv rows. Weights of 2..7 bits need no row: the cost model runs them
  // as the measured integer container that holds them (the exporter stores them in int8).
  std::vector<Capability> extra;
  for (const Capability& c : rows) {
    if (c.op_kind != OpKind::kConv) continue;
    Capability all = c;
    all.op_kind = std::nullopt;
    all.derivation = absl::StrCat("as conv (kinds without a row of their own): ", c.derivation);
    extra.push_back(all);
  }
  rows.insert(rows.end(), extra.begin(), extra.end());
  return rows;
}

absl::StatusOr<std::vector<ModelLatency>> TimeModel(const ModelToTime& m, absl::string_view bytes,
                                                    const std::string& name, const std::string& sha256,
                                                    const runtime::SessionOptions& session_options,
                                                    const ProfilerOptions& options, std::mt19937_64* rng,
                                                    std::vector<std::string>* notes) {
  absl::StatusOr<std::unique_ptr<runtime::Session>> session = runtime::Session::Create(bytes, session_options);
  if (!session.ok())
    return absl::Status(session.status().code(), absl::StrCat(m.path, ": ", session.status().message()));
  absl::StatusOr<std::vector<runtime::Tensor>> inputs =
      m.inputs.empty() ? ModelInputs(**session, m, rng) : absl::StatusOr<std::vector<runtime::Tensor>>(m.inputs);
  if (!inputs.ok()) return inputs.status();
  // The model as it is and, where the exporter can write them, its uniform variants, timed in
  // turns so the machine's drift weighs on all alike.
  std::vector<std::pair<std::string, std::string>> variants;  // label, bytes
  if (options.model_variants) {
    absl::StatusOr<std::vector<std::pair<std::string, std::string>>> exported =
        UniformVariants(bytes, *inputs, options.threads, ChannelAlignmentFor(options));
    if (exported.ok()) {
      variants = *std::move(exported);
    } else if (notes != nullptr) {
      notes->push_back(absl::StrCat("uniform variants of ", name, " not measured: ", exported.status().message()));
    }
  }
  std::vector<std::unique_ptr<runtime::Session>> variant_sessions;
  std::vector<const runtime::Session*> timed = {session->get()};
  for (const auto& [label, variant_bytes] : variants) {
    absl::StatusOr<std::unique_ptr<runtime::Session>> vs = runtime::Session::Create(variant_bytes, session_options);
    if (!vs.ok())
      return absl::Status(vs.status().code(), absl::StrCat(m.path, " ", label, ": ", vs.status().message()));
    timed.push_back(vs->get());
    variant_sessions.push_back(*std::move(vs));
  }
  runtime::InterleavedTiming turns;
  turns.warmup = options.model_timing.warmup;
  turns.rounds = std::max(9, options.model_timing.min_repeats);  // many short turns: the drift evens out
  turns.round_time_s = options.model_timing.min_time_s / std::max(1, turns.rounds);
  turns.min_time_s = options.model_timing.min_time_s;
  absl::StatusOr<std::vector<runtime::Timing>> timings = runtime::TimeInterleaved(timed, *inputs, turns);
  if (!timings.ok())
    return absl::Status(timings.status().code(), absl::StrCat(m.path, ": ", timings.status().message()));
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const runtime::Tensor& t : *inputs) shapes[t.name] = t.shape;
  std::vector<ModelLatency> out;
  for (size_t v = 0; v < timed.size(); ++v) {
    const runtime::Timing& timing = (*timings)[v];
    const std::string variant = v == 0 ? "" : variants[v - 1].first;
    ModelLatency latency;
    latency.key = absl::StrCat(name, " ", ShapesText(shapes), variant.empty() ? "" : " ", variant);
    latency.model_sha256 = sha256;
    latency.model_name = name;
    latency.variant = variant;
    latency.latency_median_us = timing.median_s * 1e6;
    latency.latency_p10_us = timing.p10_s * 1e6;
    latency.latency_p90_us = timing.p90_s * 1e6;
    latency.repeats = timing.repeats;
    latency.threads = options.threads;
    latency.measured_at = Rfc3339(absl::Now());
    latency.source =
        absl::StrCat(kProfilerTool, " ", kProfilerVersion, ": ",
                     variant.empty() ? "the model as given (fp32)"
                                     : absl::StrCat("the model exported with every layer ", variant.substr(8),
                                                    " for ONNX Runtime's CPU provider (ranges from the timing inputs)"),
                     ", inputs ", ShapesText(shapes), m.inputs.empty() ? " from N(0, 1)" : " as given", "; median of ",
                     timing.repeats, " rounds timed in turns with ", timed.size() - 1, " other variants");
    out.push_back(std::move(latency));
  }
  return out;
}

absl::StatusOr<Profile> RunProfile(const ProfilerOptions& options) {
  const std::vector<int> allowed = runtime::AllowedCpus();
  if (options.threads < 1) return absl::InvalidArgumentError("threads must be at least 1");
  if (options.pin_threads && options.threads > static_cast<int>(allowed.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.threads, " threads to pin, but this process may run on ", allowed.size(), " CPUs"));
  }
  absl::flat_hash_set<std::string> keys;
  for (const OpSpec& spec : options.grid) {
    if (!keys.insert(OpSpecKey(spec)).second) {
      return absl::InvalidArgumentError(absl::StrCat("the grid has '", OpSpecKey(spec), "' twice"));
    }
  }
  if (options.grid.empty() && options.models.empty()) {
    return absl::InvalidArgumentError("nothing to measure: no grid and no model");
  }

  // The device as detected, checked before anything is measured.
  const std::string ort_version = runtime::OrtVersion();
  absl::StatusOr<Device> detected = HostDevice(ReadHostFacts(ort_version));
  if (!detected.ok()) return detected.status();
  Device device = *std::move(detected);
  device.id = options.device_id;
  if (!options.device_name.empty()) device.name = options.device_name;
  device.threads = options.threads;
  device.provenance = Provenance::kMeasured;
  if (absl::Status valid = ValidateDevice(device); !valid.ok()) return valid;

  struct ModelBytes {
    std::string bytes, sha256, name;
  };
  std::vector<ModelBytes> models;
  for (const ModelToTime& m : options.models) {
    absl::StatusOr<std::string> bytes = common::ReadFile(m.path);
    if (!bytes.ok()) return bytes.status();
    models.push_back({*bytes, common::Sha256Hex(*bytes), std::filesystem::path(m.path).stem().string()});
  }

  std::vector<int> cpus;
  if (options.pin_threads) cpus.assign(allowed.begin(), allowed.begin() + options.threads);
  runtime::SessionOptions session_options;
  session_options.intra_op_threads = options.threads;
  session_options.pinned_cpus = cpus;

  Profile profile;
  std::vector<std::string> variant_notes;  // models whose uniform variants could not be exported
  std::map<std::string, std::string> kernels;
  const absl::Time started = absl::Now();
  const Clock::time_point start = Clock::now();
  const int total = static_cast<int>(options.grid.size() + models.size());
  int done = 0;
  // The reference op, timed before the grid, every 5% of it, after it and after the models: how
  // much the machine's speed moved while it was measured (a VM's neighbours, a governor, heat).
  std::vector<double> reference_us;
  auto drift = [&reference_us] {
    if (reference_us.empty()) return 1.0;
    return *std::max_element(reference_us.begin(), reference_us.end()) /
           *std::min_element(reference_us.begin(), reference_us.end());
  };
  auto report = [&](const std::string& key) {
    ++done;
    if (!options.progress) return;
    ProfileProgress p;
    p.done = done;
    p.total = total;
    p.elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
    p.eta_s = p.elapsed_s / done * (total - done);
    p.current = key;
    p.drift = drift();
    options.progress(p);
  };

  // The measurement, on a thread of its own so pinning it leaves the caller's thread alone.
  absl::Status status;
  std::thread worker([&] {
    if (!cpus.empty()) {
      status = runtime::PinCurrentThread(cpus[0]);
      if (!status.ok()) return;
    }
    std::unique_ptr<runtime::Session> reference;
    std::vector<runtime::Tensor> reference_inputs;
    if (options.reference_checks > 0 && !options.grid.empty()) {
      absl::StatusOr<SingleOpModel> model = BuildSingleOpModel(ReferenceOp(), options.seed);
      if (!model.ok()) {
        status = model.status();
        return;
      }
      absl::StatusOr<std::unique_ptr<runtime::Session>> session =
          runtime::Session::Create(model->bytes, session_options);
      if (!session.ok()) {
        status = session.status();
        return;
      }
      reference = *std::move(session);
      reference_inputs = model->inputs;
    }
    auto time_reference = [&]() -> absl::Status {
      if (reference == nullptr) return absl::OkStatus();
      runtime::TimingOptions timing;
      timing.warmup = 2;
      timing.min_repeats = 5;
      timing.min_time_s = 0.02;
      absl::StatusOr<runtime::Timing> t = reference->Time(reference_inputs, timing);
      if (!t.ok()) return t.status();
      reference_us.push_back(t->median_s * 1e6);
      return absl::OkStatus();
    };
    const size_t every = std::max<size_t>(1, options.grid.size() / std::max(1, options.reference_checks));
    if (status = time_reference(); !status.ok()) return;
    for (size_t index = 0; index < options.grid.size(); ++index) {
      const OpSpec& spec = options.grid[index];
      if (index > 0 && index % every == 0) {
        if (status = time_reference(); !status.ok()) return;
      }
      const std::string key = OpSpecKey(spec);
      absl::StatusOr<SingleOpModel> model = BuildSingleOpModel(spec, KeySeed(options.seed, key));
      absl::StatusOr<LatencySample> sample = model.ok()
                                                 ? MeasureSample(spec, *model, session_options, options, ort_version)
                                                 : absl::StatusOr<LatencySample>(model.status());
      if (!sample.ok()) {
        status = absl::Status(sample.status().code(), absl::StrCat("sample '", key, "': ", sample.status().message()));
        return;
      }
      // What ONNX Runtime made of the first model of each kind and precision.
      const std::string group = GroupKey(spec.kind, spec.weight_bits, spec.activation_bits, spec.sparsity);
      if (!kernels.count(group)) {
        absl::StatusOr<std::vector<std::string>> ops = OptimizedOpTypes(model->bytes, session_options);
        kernels[group] = ops.ok() ? absl::StrJoin(*ops, ", ") : absl::StrCat("(unknown: ", ops.status().message(), ")");
      }
      profile.samples.push_back(*std::move(sample));
      report(key);
    }
    if (status = time_reference(); !status.ok()) return;
    std::mt19937_64 rng(options.seed);
    // The pruned variant keeps the channel counts the search will offer the device just detected.
    ProfilerOptions model_options = options;
    if (model_options.channel_alignment <= 0) {
      model_options.channel_alignment =
          model::ChannelAlignment(model::FlavourForRuntime(device.runtime), device.simd_features);
    }
    for (size_t i = 0; i < models.size(); ++i) {
      absl::StatusOr<std::vector<ModelLatency>> latencies =
          TimeModel(options.models[i], models[i].bytes, models[i].name, models[i].sha256, session_options,
                    model_options, &rng, &variant_notes);
      if (!latencies.ok()) {
        status = latencies.status();
        return;
      }
      for (ModelLatency& latency : *latencies) {
        const std::string base = latency.key;
        for (int n = 2; std::any_of(profile.model_latencies.begin(), profile.model_latencies.end(),
                                    [&](const ModelLatency& l) { return l.key == latency.key; });
             ++n) {
          latency.key = absl::StrCat(base, " #", n);
        }
        profile.model_latencies.push_back(std::move(latency));
      }
      if (i + 1 == models.size()) {
        if (status = time_reference(); !status.ok()) return;
      }
      report(profile.model_latencies.back().key);
    }
  });
  worker.join();
  if (!status.ok()) return status;
  const double duration = std::chrono::duration<double>(Clock::now() - start).count();

  const MachineState machine = ReadMachineState(cpus.empty() ? allowed.front() : cpus.front());
  ProfileConditions& c = profile.conditions;
  c.tool = absl::StrCat(kProfilerTool, " ", kProfilerVersion);
  c.mode = options.mode;
  c.measured_at = Rfc3339(started);
  c.duration_seconds = duration;
  c.threads = options.threads;
  c.warmup_runs = options.timing.warmup;
  c.repeats = options.timing.min_repeats;
  c.cpu_governor = machine.cpu_governor;
  c.cpu_frequency_khz = machine.cpu_frequency_khz;
  c.cpu_max_frequency_khz = machine.cpu_max_frequency_khz;
  c.runtime_version = ort_version;
  c.host = machine.hostname;

  const std::string source =
      absl::StrFormat("%s %s on %s, ONNX Runtime %s, %d thread%s%s, %s", kProfilerTool, kProfilerVersion,
                      machine.hostname, ort_version, options.threads, options.threads == 1 ? "" : "s",
                      cpus.empty() ? "" : absl::StrCat(" pinned to CPU ", absl::StrJoin(cpus, ",")), c.measured_at);
  // A measured device's capabilities come only from its samples: a precision the grid did not
  // measure is not offered on it (the detected spec rows, e.g. an fp16 rate read off a CPU flag,
  // describe no file the exporter writes for this runtime).
  device.capabilities = MeasuredCapabilities(profile.samples, kernels, source);

  // Per-op overhead: the fastest elementwise op over the fewest elements, a run of almost nothing.
  const LatencySample* smallest = nullptr;
  for (const LatencySample& s : profile.samples) {
    if (s.op_kind != OpKind::kElementwise) continue;
    if (smallest == nullptr || s.elements < smallest->elements ||
        (s.elements == smallest->elements && s.latency_median_us < smallest->latency_median_us)) {
      smallest = &s;
    }
  }
  std::string overhead = "op overhead 5 us (assumed ONNX Runtime CPU dispatch cost: no elementwise sample measured)";
  if (smallest != nullptr) {
    device.op_overhead_us = smallest->latency_median_us;
    overhead = absl::StrFormat(
        "op overhead = median latency of '%s' = %.2f us (a whole run of a near-empty "
        "model: an upper bound)",
        smallest->key, smallest->latency_median_us);
  }
  std::string stability;
  if (!reference_us.empty()) {
    std::vector<double> sorted = reference_us;
    std::sort(sorted.begin(), sorted.end());
    stability = absl::StrFormat(
        "; machine speed through the run: '%s' timed %zu times, median %.1f us, slowest / fastest = %.2f%s",
        OpSpecKey(ReferenceOp()), sorted.size(), sorted[sorted.size() / 2], drift(),
        drift() > 1.1 ? " (the machine's speed moved: figures measured at different times differ by that much)" : "");
  }
  device.source = source;
  device.derivation = absl::StrFormat(
      "measured by %s %s (%s mode): %zu single-op samples and %zu model latencies in %.0f s; the CPU, RAM and SIMD "
      "features from /proc/cpuinfo and /proc/meminfo; memory bandwidth = best of 4 memcpy passes over 64 MiB, read + "
      "write bytes = %.1f GB/s; app memory budget = RAM / 2 (assumed); %s; capabilities from the samples (each row "
      "says how)%s%s",
      kProfilerTool, kProfilerVersion, options.mode, profile.samples.size(), profile.model_latencies.size(), duration,
      device.memory_bandwidth_bytes_per_s / 1e9, overhead, stability,
      variant_notes.empty() ? "" : absl::StrCat("; ", absl::StrJoin(variant_notes, "; ")));
  device.runtime_version = ort_version;
  device.created_at = c.measured_at;
  device.latency_sample_count = static_cast<int64_t>(profile.samples.size());
  device.model_latency_count = static_cast<int64_t>(profile.model_latencies.size());
  device.conditions = c;
  profile.device = std::move(device);
  if (absl::Status valid = ValidateProfile(profile); !valid.ok()) {
    return absl::InternalError(absl::StrCat("the measured profile does not validate: ", valid.message()));
  }
  return profile;
}

}  // namespace squeeze::device_profiles
