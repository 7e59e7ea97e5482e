#include "server/proto_conversion.h"

#include "absl/strings/str_cat.h"

namespace squeeze::server {

namespace dp = device_profiles;

v1::OpKind ToProto(dp::OpKind kind) {
  switch (kind) {
    case dp::OpKind::kConv: return v1::OP_KIND_CONV;
    case dp::OpKind::kDepthwiseConv: return v1::OP_KIND_DEPTHWISE_CONV;
    case dp::OpKind::kConvTranspose: return v1::OP_KIND_CONV_TRANSPOSE;
    case dp::OpKind::kGemm: return v1::OP_KIND_GEMM;
  }
  return v1::OP_KIND_UNSPECIFIED;
}

v1::SparsityPattern ToProto(dp::Sparsity sparsity) {
  switch (sparsity) {
    case dp::Sparsity::kDense: return v1::SPARSITY_PATTERN_DENSE;
    case dp::Sparsity::kUnstructured: return v1::SPARSITY_PATTERN_UNSTRUCTURED;
    case dp::Sparsity::kTwoFour: return v1::SPARSITY_PATTERN_TWO_FOUR;
    case dp::Sparsity::kOutputChannel: return v1::SPARSITY_PATTERN_OUTPUT_CHANNEL;
  }
  return v1::SPARSITY_PATTERN_UNSPECIFIED;
}

v1::Provenance ToProto(dp::Provenance provenance) {
  return provenance == dp::Provenance::kMeasured ? v1::PROVENANCE_MEASURED : v1::PROVENANCE_SPEC;
}

absl::StatusOr<dp::OpKind> FromProto(v1::OpKind kind) {
  switch (kind) {
    case v1::OP_KIND_CONV: return dp::OpKind::kConv;
    case v1::OP_KIND_DEPTHWISE_CONV: return dp::OpKind::kDepthwiseConv;
    case v1::OP_KIND_CONV_TRANSPOSE: return dp::OpKind::kConvTranspose;
    case v1::OP_KIND_GEMM: return dp::OpKind::kGemm;
    default: break;
  }
  return absl::InvalidArgumentError(absl::StrCat("op_kind ", static_cast<int>(kind),
                                                 " is not one of CONV, DEPTHWISE_CONV, CONV_TRANSPOSE, GEMM"));
}

absl::StatusOr<dp::Sparsity> FromProto(v1::SparsityPattern sparsity) {
  switch (sparsity) {
    case v1::SPARSITY_PATTERN_DENSE: return dp::Sparsity::kDense;
    case v1::SPARSITY_PATTERN_UNSTRUCTURED: return dp::Sparsity::kUnstructured;
    case v1::SPARSITY_PATTERN_TWO_FOUR: return dp::Sparsity::kTwoFour;
    case v1::SPARSITY_PATTERN_OUTPUT_CHANNEL: return dp::Sparsity::kOutputChannel;
    default: break;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "sparsity ", static_cast<int>(sparsity), " is not one of DENSE, UNSTRUCTURED, TWO_FOUR, OUTPUT_CHANNEL"));
}

v1::Capability ToProto(const dp::Capability& c) {
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

v1::Device ToProto(const dp::Device& d) {
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
  for (const dp::Capability& c : d.capabilities) *out.add_capabilities() = ToProto(c);
  out.set_latency_sample_count(d.latency_sample_count);
  return out;
}

absl::StatusOr<dp::Device> FromProto(const v1::Device& in) {
  dp::Device d;
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
  d.provenance = in.provenance() == v1::PROVENANCE_MEASURED ? dp::Provenance::kMeasured : dp::Provenance::kSpec;
  d.created_at = in.created_at();
  for (int i = 0; i < in.capabilities_size(); ++i) {
    const v1::Capability& c = in.capabilities(i);
    dp::Capability cap;
    if (c.op_kind() != v1::OP_KIND_UNSPECIFIED) {
      absl::StatusOr<dp::OpKind> kind = FromProto(c.op_kind());
      if (!kind.ok()) return absl::InvalidArgumentError(absl::StrCat("capabilities[", i, "]: ", kind.status().message()));
      cap.op_kind = *kind;
    }
    absl::StatusOr<dp::Sparsity> sparsity = FromProto(c.sparsity());
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
    cap.provenance = c.provenance() == v1::PROVENANCE_MEASURED ? dp::Provenance::kMeasured : dp::Provenance::kSpec;
    d.capabilities.push_back(std::move(cap));
  }
  d.latency_sample_count = in.latency_sample_count();
  return d;
}

}  // namespace squeeze::server
