#include "device_profiles/profile_file.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace squeeze::device_profiles {

namespace {

// Sanity bounds that catch figures in the wrong units (ms or s written as us, ops counted as
// MACs twice over) without refusing any real device: a CPU past 50 Tops/s or an accelerator past
// 1 Pops/s is a unit error, as is an elementwise op past 1e12 elements/s.
constexpr double kMinLatencyUs = 0.05;
constexpr double kMinModelLatencyUs = 1.0;
constexpr double kMaxCpuOpsPerS = 50e12;
constexpr double kMaxAcceleratorOpsPerS = 1e15;
constexpr double kMaxElementsPerS = 1e12;

Provenance FromProto(v1::Provenance provenance) {
  return provenance == v1::PROVENANCE_MEASURED ? Provenance::kMeasured : Provenance::kSpec;
}

int64_t CeilDiv(int64_t a, int64_t b) { return b > 0 ? (a + b - 1) / b : 0; }

bool IsHexSha256(absl::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) || absl::ascii_isupper(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

absl::Status SampleUnits(const LatencySample& s, bool accelerator) {
  if (s.latency_median_us < kMinLatencyUs) {
    return absl::InvalidArgumentError(absl::StrCat("latency_median_us ", s.latency_median_us, " is below ",
                                                   kMinLatencyUs, " us: latencies are in microseconds"));
  }
  const double seconds = s.latency_median_us * 1e-6;
  if (IsLayerKind(s.op_kind)) {
    const double ops_per_s = 2.0 * static_cast<double>(s.macs) / seconds;
    const double limit = accelerator ? kMaxAcceleratorOpsPerS : kMaxCpuOpsPerS;
    if (ops_per_s > limit) {
      return absl::InvalidArgumentError(absl::StrCat(
          s.macs, " MACs in ", s.latency_median_us, " us is ", ops_per_s / 1e12, " Tops/s, above the ", limit / 1e12,
          " Tops/s any such device reaches: latencies are in microseconds, macs are "
          "multiply-accumulates"));
    }
    const int64_t expected = ShapeMacs(s);
    if (expected <= 0) return absl::InvalidArgumentError("the shape is incomplete (channels, size or kernel is 0)");
    const double ratio = static_cast<double>(s.macs) / static_cast<double>(expected);
    // Convolutions without padding do less work than "same" padding; never more.
    if (ratio > 1.05 || ratio < 0.2) {
      return absl::InvalidArgumentError(
          absl::StrCat("macs ", s.macs, " do not match the shape, which has ", expected, " (padding 'same')"));
    }
  } else if (static_cast<double>(s.elements) / seconds > kMaxElementsPerS) {
    return absl::InvalidArgumentError(absl::StrCat(s.elements, " elements in ", s.latency_median_us,
                                                   " us is above 1e12 elements/s: latencies are in microseconds"));
  }
  if (s.latency_p10_us < 0 || s.latency_p90_us < 0 || !std::isfinite(s.latency_p10_us) ||
      !std::isfinite(s.latency_p90_us)) {
    return absl::InvalidArgumentError("latency_p10_us and latency_p90_us must not be negative");
  }
  if (s.latency_p90_us > 0 && s.latency_p10_us > s.latency_p90_us) {
    return absl::InvalidArgumentError("latency_p10_us is above latency_p90_us");
  }
  return absl::OkStatus();
}

absl::Status ModelLatencyErrors(const ModelLatency& m) {
  if (!IsHexSha256(m.model_sha256)) {
    return absl::InvalidArgumentError("model_sha256 must be 64 lowercase hex digits (sha256sum of the ONNX file)");
  }
  if (!std::isfinite(m.latency_median_us) || m.latency_median_us < kMinModelLatencyUs) {
    return absl::InvalidArgumentError(
        absl::StrCat("latency_median_us ", m.latency_median_us, " is below 1 us: latencies are in microseconds"));
  }
  if (m.latency_p10_us < 0 || m.latency_p90_us < 0) {
    return absl::InvalidArgumentError("latency_p10_us and latency_p90_us must not be negative");
  }
  if (m.repeats < 1 || m.threads < 1) return absl::InvalidArgumentError("repeats and threads must be at least 1");
  return absl::OkStatus();
}

absl::Status Entry(absl::string_view list, size_t index, absl::string_view key, const absl::Status& status) {
  return absl::InvalidArgumentError(absl::StrCat(list, "[", index, "] '", key, "': ", status.message()));
}

}  // namespace

int KeepMeasuredRowsHonest(Device& device, const std::vector<LatencySample>& samples) {
  int downgraded = 0;
  for (Capability& c : device.capabilities) {
    if (c.provenance != Provenance::kMeasured) continue;
    const OpKind kind = c.op_kind.value_or(OpKind::kConv);
    const bool measured = std::any_of(samples.begin(), samples.end(), [&](const LatencySample& s) {
      return s.op_kind == kind && s.weight_bits == c.weight_bits && s.activation_bits == c.activation_bits &&
             s.sparsity == c.sparsity;
    });
    if (measured) continue;
    c.provenance = Provenance::kSpec;
    absl::StrAppend(&c.derivation, c.derivation.empty() ? "" : "; ",
                    "uploaded as measured, but no sample of the profile measured it: kept as spec");
    ++downgraded;
  }
  return downgraded;
}

int64_t ShapeMacs(const LatencySample& s) {
  switch (s.op_kind) {
    case OpKind::kConv:
    case OpKind::kDepthwiseConv: {
      if (s.groups < 1 || s.stride < 1) return 0;
      return s.batch * s.out_channels * CeilDiv(s.height, s.stride) * CeilDiv(s.width, s.stride) *
             (s.in_channels / s.groups) * s.kernel * s.kernel;
    }
    case OpKind::kConvTranspose:
      // Every input pixel scatters a k×k patch to each output channel of its group.
      if (s.groups < 1) return 0;
      return s.batch * s.in_channels * s.height * s.width * (s.out_channels / s.groups) * s.kernel * s.kernel;
    case OpKind::kGemm:
      return s.gemm_m * s.gemm_k * s.gemm_n;
    default:
      return 0;
  }
}

absl::Status ValidateProfile(const Profile& profile, bool require_device) {
  if (profile.format_version != kProfileFormatVersion) {
    return absl::InvalidArgumentError(absl::StrCat("format_version ", profile.format_version,
                                                   " is not supported; this build reads version ",
                                                   kProfileFormatVersion));
  }
  if (require_device) {
    if (absl::Status s = ValidateDevice(profile.device); !s.ok()) return s;
  }
  if (profile.samples.empty() && profile.model_latencies.empty()) {
    return absl::InvalidArgumentError("the profile has neither latency samples nor model latencies");
  }
  const bool accelerator = !profile.device.accelerator.empty();
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < profile.samples.size(); ++i) {
    const LatencySample& s = profile.samples[i];
    if (s.key.empty()) return Entry("samples", i, s.key, absl::InvalidArgumentError("id is empty"));
    if (auto [it, fresh] = seen.emplace(s.key, i); !fresh) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate sample id '", s.key, "' (samples[", it->second, "] and samples[", i, "])"));
    }
    if (absl::Status st = ValidateSample(s); !st.ok()) return Entry("samples", i, s.key, st);
    if (absl::Status st = SampleUnits(s, accelerator); !st.ok()) return Entry("samples", i, s.key, st);
  }
  seen.clear();
  for (size_t i = 0; i < profile.model_latencies.size(); ++i) {
    const ModelLatency& m = profile.model_latencies[i];
    if (m.key.empty()) return Entry("model_latencies", i, m.key, absl::InvalidArgumentError("id is empty"));
    if (auto [it, fresh] = seen.emplace(m.key, i); !fresh) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate model latency id '", m.key, "' (model_latencies[",
                                                     it->second, "] and model_latencies[", i, "])"));
    }
    if (absl::Status st = ModelLatencyErrors(m); !st.ok()) return Entry("model_latencies", i, m.key, st);
  }
  return absl::OkStatus();
}

v1::OpKind ToProto(OpKind kind) {
  switch (kind) {
    case OpKind::kConv:
      return v1::OP_KIND_CONV;
    case OpKind::kDepthwiseConv:
      return v1::OP_KIND_DEPTHWISE_CONV;
    case OpKind::kConvTranspose:
      return v1::OP_KIND_CONV_TRANSPOSE;
    case OpKind::kGemm:
      return v1::OP_KIND_GEMM;
    case OpKind::kQuantizeLinear:
      return v1::OP_KIND_QUANTIZE_LINEAR;
    case OpKind::kDequantizeLinear:
      return v1::OP_KIND_DEQUANTIZE_LINEAR;
    case OpKind::kElementwise:
      return v1::OP_KIND_ELEMENTWISE;
    case OpKind::kTranspose:
      return v1::OP_KIND_TRANSPOSE;
    case OpKind::kMaxPool:
      return v1::OP_KIND_MAX_POOL;
  }
  return v1::OP_KIND_UNSPECIFIED;
}

v1::SparsityPattern ToProto(Sparsity sparsity) {
  switch (sparsity) {
    case Sparsity::kDense:
      return v1::SPARSITY_PATTERN_DENSE;
    case Sparsity::kUnstructured:
      return v1::SPARSITY_PATTERN_UNSTRUCTURED;
    case Sparsity::kTwoFour:
      return v1::SPARSITY_PATTERN_TWO_FOUR;
    case Sparsity::kOutputChannel:
      return v1::SPARSITY_PATTERN_OUTPUT_CHANNEL;
  }
  return v1::SPARSITY_PATTERN_UNSPECIFIED;
}

v1::Provenance ToProto(Provenance provenance) {
  return provenance == Provenance::kMeasured ? v1::PROVENANCE_MEASURED : v1::PROVENANCE_SPEC;
}

absl::StatusOr<OpKind> FromProto(v1::OpKind kind) {
  switch (kind) {
    case v1::OP_KIND_CONV:
      return OpKind::kConv;
    case v1::OP_KIND_DEPTHWISE_CONV:
      return OpKind::kDepthwiseConv;
    case v1::OP_KIND_CONV_TRANSPOSE:
      return OpKind::kConvTranspose;
    case v1::OP_KIND_GEMM:
      return OpKind::kGemm;
    case v1::OP_KIND_QUANTIZE_LINEAR:
      return OpKind::kQuantizeLinear;
    case v1::OP_KIND_DEQUANTIZE_LINEAR:
      return OpKind::kDequantizeLinear;
    case v1::OP_KIND_ELEMENTWISE:
      return OpKind::kElementwise;
    case v1::OP_KIND_TRANSPOSE:
      return OpKind::kTranspose;
    case v1::OP_KIND_MAX_POOL:
      return OpKind::kMaxPool;
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("op_kind ", static_cast<int>(kind),
                   " is not one of CONV, DEPTHWISE_CONV, CONV_TRANSPOSE, GEMM, "
                   "QUANTIZE_LINEAR, DEQUANTIZE_LINEAR, ELEMENTWISE, TRANSPOSE, MAX_POOL"));
}

absl::StatusOr<Sparsity> FromProto(v1::SparsityPattern sparsity) {
  switch (sparsity) {
    case v1::SPARSITY_PATTERN_DENSE:
      return Sparsity::kDense;
    case v1::SPARSITY_PATTERN_UNSTRUCTURED:
      return Sparsity::kUnstructured;
    case v1::SPARSITY_PATTERN_TWO_FOUR:
      return Sparsity::kTwoFour;
    case v1::SPARSITY_PATTERN_OUTPUT_CHANNEL:
      return Sparsity::kOutputChannel;
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("sparsity ", static_cast<int>(sparsity),
                                                 " is not one of DENSE, UNSTRUCTURED, TWO_FOUR, OUTPUT_CHANNEL"));
}

v1::Capability ToProto(const Capability& c) {
  v1::Capability out;
  out.set_op_kind(c.op_kind ? ToProto(*c.op_kind) : v1::OP_KIND_UNSPECIFIED);
  out.set_weight_bits(c.weight_bits);
  out.set_activation_bits(c.activation_bits);
  out.set_sparsity(ToProto(c.sparsity));
  out.set_native(c.native);
  out.set_peak_ops_per_second(c.peak_ops_per_s);
  out.set_efficiency(c.efficiency);
  out.set_source(c.source);
  out.set_derivation(c.derivation);
  out.set_provenance(ToProto(c.provenance));
  return out;
}

v1::ProfileConditions ToProto(const ProfileConditions& c) {
  v1::ProfileConditions out;
  out.set_tool(c.tool);
  out.set_mode(c.mode);
  out.set_measured_at(c.measured_at);
  out.set_duration_seconds(c.duration_seconds);
  out.set_threads(c.threads);
  out.set_warmup_runs(c.warmup_runs);
  out.set_repeats(c.repeats);
  out.set_cpu_governor(c.cpu_governor);
  out.set_cpu_frequency_khz(c.cpu_frequency_khz);
  out.set_cpu_max_frequency_khz(c.cpu_max_frequency_khz);
  out.set_runtime_version(c.runtime_version);
  out.set_host(c.host);
  return out;
}

ProfileConditions FromProto(const v1::ProfileConditions& in) {
  ProfileConditions c;
  c.tool = in.tool();
  c.mode = in.mode();
  c.measured_at = in.measured_at();
  c.duration_seconds = in.duration_seconds();
  c.threads = in.threads();
  c.warmup_runs = in.warmup_runs();
  c.repeats = in.repeats();
  c.cpu_governor = in.cpu_governor();
  c.cpu_frequency_khz = in.cpu_frequency_khz();
  c.cpu_max_frequency_khz = in.cpu_max_frequency_khz();
  c.runtime_version = in.runtime_version();
  c.host = in.host();
  return c;
}

v1::Device ToProto(const Device& d) {
  v1::Device out;
  out.set_id(d.id);
  out.set_version(d.version);
  out.set_name(d.name);
  out.set_vendor(d.vendor);
  out.set_soc(d.soc);
  out.set_os(d.os);
  out.set_cpu(d.cpu);
  out.set_cpu_cores(d.cpu_cores);
  for (const std::string& f : d.simd_features) out.add_simd_features(f);
  out.set_accelerator(d.accelerator);
  out.set_ram_bytes(d.ram_bytes);
  out.set_app_memory_budget_bytes(d.app_memory_budget_bytes);
  out.set_memory_bandwidth_bytes_per_second(d.memory_bandwidth_bytes_per_s);
  out.set_runtime(d.runtime);
  out.set_runtime_version(d.runtime_version);
  out.set_threads(d.threads);
  out.set_op_overhead_us(d.op_overhead_us);
  out.set_source(d.source);
  out.set_derivation(d.derivation);
  out.set_provenance(ToProto(d.provenance));
  out.set_created_at(d.created_at);
  for (const Capability& c : d.capabilities) *out.add_capabilities() = ToProto(c);
  out.set_latency_sample_count(d.latency_sample_count);
  out.set_model_latency_count(d.model_latency_count);
  if (d.conditions) *out.mutable_conditions() = ToProto(*d.conditions);
  return out;
}

absl::StatusOr<Device> FromProto(const v1::Device& in) {
  Device d;
  d.id = in.id();
  d.version = in.version();
  d.name = in.name();
  d.vendor = in.vendor();
  d.soc = in.soc();
  d.os = in.os();
  d.cpu = in.cpu();
  d.cpu_cores = in.cpu_cores();
  d.simd_features.assign(in.simd_features().begin(), in.simd_features().end());
  d.accelerator = in.accelerator();
  d.ram_bytes = in.ram_bytes();
  d.app_memory_budget_bytes = in.app_memory_budget_bytes();
  d.memory_bandwidth_bytes_per_s = in.memory_bandwidth_bytes_per_second();
  d.runtime = in.runtime();
  d.runtime_version = in.runtime_version();
  d.threads = in.threads();
  d.op_overhead_us = in.op_overhead_us();
  d.source = in.source();
  d.derivation = in.derivation();
  d.provenance = FromProto(in.provenance());
  d.created_at = in.created_at();
  for (int i = 0; i < in.capabilities_size(); ++i) {
    const v1::Capability& c = in.capabilities(i);
    Capability cap;
    if (c.op_kind() != v1::OP_KIND_UNSPECIFIED) {
      absl::StatusOr<OpKind> kind = FromProto(c.op_kind());
      if (!kind.ok())
        return absl::InvalidArgumentError(absl::StrCat("capabilities[", i, "]: ", kind.status().message()));
      if (!IsLayerKind(*kind)) {
        return absl::InvalidArgumentError(
            absl::StrCat("capabilities[", i, "]: capabilities are for layers (conv, depthwise, conv transpose, gemm)"));
      }
      cap.op_kind = *kind;
    }
    absl::StatusOr<Sparsity> sparsity = FromProto(c.sparsity());
    if (!sparsity.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("capabilities[", i, "]: ", sparsity.status().message()));
    }
    cap.sparsity = *sparsity;
    cap.weight_bits = c.weight_bits();
    cap.activation_bits = c.activation_bits();
    cap.native = c.native();
    cap.peak_ops_per_s = c.peak_ops_per_second();
    cap.efficiency = c.efficiency();
    cap.source = c.source();
    cap.derivation = c.derivation();
    cap.provenance = FromProto(c.provenance());
    d.capabilities.push_back(std::move(cap));
  }
  d.latency_sample_count = in.latency_sample_count();
  d.model_latency_count = in.model_latency_count();
  if (in.has_conditions()) d.conditions = FromProto(in.conditions());
  return d;
}

v1::LatencySample ToProto(const LatencySample& s) {
  v1::LatencySample out;
  out.set_id(s.key);
  out.set_op_kind(ToProto(s.op_kind));
  out.set_batch(s.batch);
  out.set_in_channels(s.in_channels);
  out.set_out_channels(s.out_channels);
  out.set_height(s.height);
  out.set_width(s.width);
  out.set_kernel(s.kernel);
  out.set_stride(s.stride);
  out.set_groups(s.groups);
  out.set_gemm_m(s.gemm_m);
  out.set_gemm_k(s.gemm_k);
  out.set_gemm_n(s.gemm_n);
  out.set_elements(s.elements);
  out.set_weight_bits(s.weight_bits);
  out.set_activation_bits(s.activation_bits);
  out.set_sparsity(ToProto(s.sparsity));
  out.set_sparsity_ratio(s.sparsity_ratio);
  out.set_macs(s.macs);
  out.set_weight_bytes(s.weight_bytes);
  out.set_activation_bytes(s.activation_bytes);
  out.set_latency_median_us(s.latency_median_us);
  out.set_latency_mean_us(s.latency_mean_us);
  out.set_latency_stddev_us(s.latency_stddev_us);
  out.set_latency_p10_us(s.latency_p10_us);
  out.set_latency_p90_us(s.latency_p90_us);
  out.set_repeats(s.repeats);
  out.set_threads(s.threads);
  out.set_measured_at(s.measured_at);
  return out;
}

absl::StatusOr<LatencySample> FromProto(const v1::LatencySample& in) {
  LatencySample s;
  s.key = in.id();
  absl::StatusOr<OpKind> kind = FromProto(in.op_kind());
  if (!kind.ok()) return kind.status();
  s.op_kind = *kind;
  absl::StatusOr<Sparsity> sparsity = FromProto(in.sparsity());
  if (!sparsity.ok()) return sparsity.status();
  s.sparsity = *sparsity;
  s.batch = in.batch();
  s.in_channels = in.in_channels();
  s.out_channels = in.out_channels();
  s.height = in.height();
  s.width = in.width();
  s.kernel = in.kernel();
  s.stride = in.stride();
  s.groups = in.groups();
  s.gemm_m = in.gemm_m();
  s.gemm_k = in.gemm_k();
  s.gemm_n = in.gemm_n();
  s.elements = in.elements();
  s.weight_bits = in.weight_bits();
  s.activation_bits = in.activation_bits();
  s.sparsity_ratio = in.sparsity_ratio();
  s.macs = in.macs();
  s.weight_bytes = in.weight_bytes();
  s.activation_bytes = in.activation_bytes();
  s.latency_median_us = in.latency_median_us();
  s.latency_mean_us = in.latency_mean_us();
  s.latency_stddev_us = in.latency_stddev_us();
  s.latency_p10_us = in.latency_p10_us();
  s.latency_p90_us = in.latency_p90_us();
  s.repeats = in.repeats();
  s.threads = in.threads();
  s.measured_at = in.measured_at();
  s.provenance = Provenance::kMeasured;
  return s;
}

v1::ModelLatency ToProto(const ModelLatency& m) {
  v1::ModelLatency out;
  out.set_id(m.key);
  out.set_model_sha256(m.model_sha256);
  out.set_model_name(m.model_name);
  out.set_variant(m.variant);
  out.set_latency_median_us(m.latency_median_us);
  out.set_latency_p10_us(m.latency_p10_us);
  out.set_latency_p90_us(m.latency_p90_us);
  out.set_repeats(m.repeats);
  out.set_threads(m.threads);
  out.set_measured_at(m.measured_at);
  out.set_source(m.source);
  return out;
}

ModelLatency FromProto(const v1::ModelLatency& in) {
  ModelLatency m;
  m.key = in.id();
  m.model_sha256 = in.model_sha256();
  m.model_name = in.model_name();
  m.variant = in.variant();
  m.latency_median_us = in.latency_median_us();
  m.latency_p10_us = in.latency_p10_us();
  m.latency_p90_us = in.latency_p90_us();
  m.repeats = in.repeats();
  m.threads = in.threads();
  m.measured_at = in.measured_at();
  m.source = in.source();
  return m;
}

v1::DeviceProfile ToProto(const Profile& p) {
  v1::DeviceProfile out;
  out.set_format_version(p.format_version);
  *out.mutable_device() = ToProto(p.device);
  *out.mutable_conditions() = ToProto(p.conditions);
  for (const LatencySample& s : p.samples) *out.add_samples() = ToProto(s);
  for (const ModelLatency& m : p.model_latencies) *out.add_model_latencies() = ToProto(m);
  return out;
}

absl::StatusOr<Profile> FromProto(const v1::DeviceProfile& in, bool require_device) {
  Profile p;
  p.format_version = in.format_version();
  if (in.has_device()) {
    absl::StatusOr<Device> device = FromProto(in.device());
    if (!device.ok()) return absl::InvalidArgumentError(absl::StrCat("device: ", device.status().message()));
    p.device = *std::move(device);
  } else if (require_device) {
    return absl::InvalidArgumentError("the profile has no device");
  }
  p.conditions = FromProto(in.conditions());
  p.samples.reserve(in.samples_size());
  for (int i = 0; i < in.samples_size(); ++i) {
    absl::StatusOr<LatencySample> s = FromProto(in.samples(i));
    if (!s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("samples[", i, "] '", in.samples(i).id(), "': ", s.status().message()));
    }
    p.samples.push_back(*std::move(s));
  }
  for (const v1::ModelLatency& m : in.model_latencies()) p.model_latencies.push_back(FromProto(m));
  if (absl::Status s = ValidateProfile(p, require_device); !s.ok()) return s;
  return p;
}

absl::StatusOr<std::string> ProfileToJson(const Profile& profile) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string out;
  google::protobuf::util::Status status = google::protobuf::util::MessageToJsonString(ToProto(profile), &out, options);
  if (!status.ok()) return absl::InternalError(absl::StrCat("profile to JSON: ", status.ToString()));
  return out;
}

absl::StatusOr<Profile> ProfileFromJson(absl::string_view json, bool require_device) {
  v1::DeviceProfile proto;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  google::protobuf::util::Status status =
      google::protobuf::util::JsonStringToMessage(std::string(json), &proto, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a squeeze.v1.DeviceProfile in JSON: ", status.message().as_string()));
  }
  return FromProto(proto, require_device);
}

absl::StatusOr<Profile> ReadProfileFile(const std::filesystem::path& path, bool require_device) {
  absl::StatusOr<std::string> text = common::ReadFile(path.string());
  if (!text.ok()) return text.status();
  absl::StatusOr<Profile> profile = ProfileFromJson(*text, require_device);
  if (!profile.ok()) {
    return absl::Status(profile.status().code(), absl::StrCat(path.string(), ": ", profile.status().message()));
  }
  return profile;
}

absl::Status WriteProfileFile(const std::filesystem::path& path, const Profile& profile) {
  if (absl::Status s = ValidateProfile(profile); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("not writing ", path.string(), ": ", s.message()));
  }
  absl::StatusOr<std::string> json = ProfileToJson(profile);
  if (!json.ok()) return json.status();
  return common::WriteFileAtomically(path.string(), *json + "\n");
}

}  // namespace squeeze::device_profiles
