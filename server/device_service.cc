#include "server/device_service.h"

#include "absl/strings/str_cat.h"
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
                                                   const v1::GetDeviceRequest* request,
                                                   v1::Device* response) {
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
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace squeeze::server
