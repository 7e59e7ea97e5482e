// The profile file: what squeeze-profile writes, `squeeze devices put` uploads and
// DeviceService.PutDeviceProfile stores. On disk it is squeeze.v1.DeviceProfile in protobuf's JSON
// mapping; here it is the domain form, its validation, and the one device-profile proto mapping
// (the server's proto_conversion calls through to these).
#ifndef SQUEEZE_DEVICE_PROFILES_PROFILE_FILE_H_
#define SQUEEZE_DEVICE_PROFILES_PROFILE_FILE_H_

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "device_profiles/device.h"
#include "squeeze/v1/device.pb.h"

namespace squeeze::device_profiles {

inline constexpr int kProfileFormatVersion = 1;

// A measured device: its description and capabilities, how it was measured, single-op samples and
// whole-model latencies.
struct Profile {
  int format_version = kProfileFormatVersion;
  Device device;
  ProfileConditions conditions;
  std::vector<LatencySample> samples;
  std::vector<ModelLatency> model_latencies;
};

// InvalidArgument naming the first bad entry: an unknown format version, a bad device, a sample
// ValidateSample refuses, MACs that do not match the sample's shape, figures in the wrong units
// (latencies below 0.05 us or implying more than 50 Tops/s on a CPU, element rates above 1e12/s),
// whole-model latencies below 1 us or without a 64-hex-digit model sha256, duplicate sample or
// model-latency ids, and a profile with neither samples nor model latencies. Without
// `require_device` the device part is not checked: an upload merged into a stored device may carry
// samples or model latencies only.
absl::Status ValidateProfile(const Profile& profile, bool require_device = true);

// Provenance is never upgraded (DESIGN.md §4): a capability row of `device` stays `measured` only
// when `samples` measured it (its kind, or conv for the all-kinds row, at its weight and
// activation bits and sparsity); any other row is `spec`, and a row that claimed `measured`
// without such samples says so in its derivation. Returns how many rows were downgraded.
int KeepMeasuredRowsHonest(Device& device, const std::vector<LatencySample>& samples);

// Dense multiply-accumulates of a layer sample's shape (conv: padding "same"; gemm: m·k·n);
// 0 for the non-layer kinds.
int64_t ShapeMacs(const LatencySample& sample);

// The proto mapping. FromProto: InvalidArgument naming the field for unspecified enums.
v1::OpKind ToProto(OpKind kind);
v1::SparsityPattern ToProto(Sparsity sparsity);
v1::Provenance ToProto(Provenance provenance);
v1::Capability ToProto(const Capability& capability);
v1::Device ToProto(const Device& device);
v1::LatencySample ToProto(const LatencySample& sample);
v1::ModelLatency ToProto(const ModelLatency& latency);
v1::ProfileConditions ToProto(const ProfileConditions& conditions);
v1::DeviceProfile ToProto(const Profile& profile);

absl::StatusOr<OpKind> FromProto(v1::OpKind kind);
absl::StatusOr<Sparsity> FromProto(v1::SparsityPattern sparsity);
absl::StatusOr<Device> FromProto(const v1::Device& device);
absl::StatusOr<LatencySample> FromProto(const v1::LatencySample& sample);
ModelLatency FromProto(const v1::ModelLatency& latency);
ProfileConditions FromProto(const v1::ProfileConditions& conditions);
// Converts and validates.
absl::StatusOr<Profile> FromProto(const v1::DeviceProfile& profile, bool require_device = true);

// JSON text (protobuf's JSON mapping, proto field names, pretty-printed) and files. Parsing
// validates; a file that is not JSON, has unknown fields or fails validation is InvalidArgument
// naming the path. Writing is atomic.
absl::StatusOr<std::string> ProfileToJson(const Profile& profile);
absl::StatusOr<Profile> ProfileFromJson(absl::string_view json, bool require_device = true);
absl::StatusOr<Profile> ReadProfileFile(const std::filesystem::path& path, bool require_device = true);
absl::Status WriteProfileFile(const std::filesystem::path& path, const Profile& profile);

}  // namespace squeeze::device_profiles

#endif  // SQUEEZE_DEVICE_PROFILES_PROFILE_FILE_H_
