#include "server/device_service.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "device_profiles/profile_file.h"
#include "server/caller.h"
#include "server/proto_conversion.h"
#include "server/status.h"

namespace squeeze::server {

grpc::ServerUnaryReactor* DeviceService::ListDevices(grpc::CallbackServerContext* context,
                                                     const v1::ListDevicesRequest* request,
                                                     v1::ListDevicesResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::StatusOr<Caller> caller = CallerOf(*context); !caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  absl::StatusOr<std::vector<device_profiles::Device>> devices = profiles_.ListDevices();
  if (!devices.ok()) {
    reactor->Finish(ToGrpcStatus(devices.status()));
    return reactor;
  }
  for (const device_profiles::Device& device : *devices) *response->add_devices() = ToProto(device);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* DeviceService::GetDevice(grpc::CallbackServerContext* context,
                                                   const v1::GetDeviceRequest* request, v1::Device* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::StatusOr<Caller> caller = CallerOf(*context); !caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  if (request->id().empty()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "id is empty: name a device ('squeeze devices list' shows them)"));
    return reactor;
  }
  if (request->version() < 0) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 absl::StrCat("version ", request->version(), " is negative; 0 means newest")));
    return reactor;
  }
  absl::StatusOr<device_profiles::Device> device = profiles_.GetDevice(request->id(), request->version());
  if (!device.ok()) {
    reactor->Finish(ToGrpcStatus(device.status()));
    return reactor;
  }
  *response = ToProto(*device);
  if (request->include_samples()) {
    absl::StatusOr<std::vector<device_profiles::LatencySample>> samples =
        profiles_.GetSamples(device->id, device->version);
    if (!samples.ok()) {
      reactor->Finish(ToGrpcStatus(samples.status()));
      return reactor;
    }
    for (const device_profiles::LatencySample& s : *samples) *response->add_samples() = ToProto(s);
    absl::StatusOr<std::vector<device_profiles::ModelLatency>> latencies =
        profiles_.GetModelLatencies(device->id, device->version);
    if (!latencies.ok()) {
      reactor->Finish(ToGrpcStatus(latencies.status()));
      return reactor;
    }
    for (const device_profiles::ModelLatency& m : *latencies) *response->add_model_latencies() = ToProto(m);
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

absl::StatusOr<v1::Device> DeviceService::Put(const v1::PutDeviceProfileRequest& request) {
  namespace dp = device_profiles;
  if (request.id().empty()) {
    return absl::InvalidArgumentError("id is empty: name the device the profile is for, e.g. 'host'");
  }
  if (!request.has_profile()) {
    return absl::InvalidArgumentError("profile is missing: send the file squeeze-profile wrote");
  }
  // A merge may carry only samples or model latencies; a whole upload must describe the device.
  const bool has_device = request.profile().has_device();
  absl::StatusOr<dp::Profile> profile = dp::FromProto(request.profile(), /*require_device=*/false);
  if (!profile.ok()) return absl::InvalidArgumentError(absl::StrCat("profile: ", profile.status().message()));
  for (dp::LatencySample& s : profile->samples) {
    s.provenance = dp::Provenance::kMeasured;
    s.runtime_version = profile->conditions.runtime_version;
    s.source =
        absl::StrCat("measured by ", profile->conditions.tool.empty() ? "the uploader" : profile->conditions.tool,
                     profile->conditions.host.empty() ? "" : absl::StrCat(" on ", profile->conditions.host));
  }
  std::optional<dp::Device> device;
  if (has_device) {
    dp::Device d = profile->device;
    d.id = request.id();
    if (!request.name().empty()) d.name = request.name();
    d.provenance = dp::Provenance::kMeasured;
    // Rows keep the provenance the file gives them; `measured` only where its samples measured it.
    const int downgraded = dp::KeepMeasuredRowsHonest(d, profile->samples);
    if (downgraded > 0) {
      common::LogInfo("device {}: {} capability rows uploaded as measured without samples kept as spec", request.id(),
                      downgraded);
    }
    if (!profile->conditions.tool.empty()) d.conditions = profile->conditions;
    if (absl::Status s = dp::ValidateDevice(d); !s.ok())
      return absl::InvalidArgumentError(absl::StrCat("profile: ", s.message()));
    device = std::move(d);
  }
  absl::StatusOr<int64_t> version;
  if (request.merge()) {
    version = profiles_.MergeDevice(request.id(), device, profile->samples, profile->model_latencies);
  } else if (!device.has_value()) {
    return absl::InvalidArgumentError(
        "profile has no device: a new version needs one (or use merge to add samples and model latencies "
        "to the stored device)");
  } else {
    version = profiles_.PutDevice(*device, profile->samples, profile->model_latencies);
  }
  if (!version.ok()) return version.status();
  absl::StatusOr<dp::Device> stored = profiles_.GetDevice(request.id(), *version);
  if (!stored.ok()) return stored.status();
  return ToProto(*stored);
}

grpc::ServerUnaryReactor* DeviceService::PutDeviceProfile(grpc::CallbackServerContext* context,
                                                          const v1::PutDeviceProfileRequest* request,
                                                          v1::Device* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::StatusOr<Caller> caller = CallerOf(*context); !caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  absl::StatusOr<v1::Device> device = Put(*request);
  if (!device.ok()) {
    reactor->Finish(ToGrpcStatus(device.status()));
    return reactor;
  }
  *response = *std::move(device);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace squeeze::server
