// squeeze.v1.DeviceService: the shared device-profile database, read by every team and written
// by admins uploading measured profiles (PutDeviceProfile).
#ifndef SQUEEZE_SERVER_DEVICE_SERVICE_H_
#define SQUEEZE_SERVER_DEVICE_SERVICE_H_

#include "device_profiles/profile_store.h"
#include "squeeze/v1/device.grpc.pb.h"

namespace squeeze::server {

// Handlers answer from the profile store, a small local SQLite file read in well under a
// millisecond (a full profile of ~2,000 samples is written in one transaction of a few ms), so
// they complete on the reaction thread.
class DeviceService final : public v1::DeviceService::CallbackService {
 public:
  explicit DeviceService(device_profiles::ProfileStore& profiles) : profiles_(profiles) {}

  grpc::ServerUnaryReactor* ListDevices(grpc::CallbackServerContext* context, const v1::ListDevicesRequest* request,
                                        v1::ListDevicesResponse* response) override;
  grpc::ServerUnaryReactor* GetDevice(grpc::CallbackServerContext* context, const v1::GetDeviceRequest* request,
                                      v1::Device* response) override;
  // A measured profile becomes a new version of the device: all of it, or (merge) merged into the
  // newest version by sample and model-latency id. Validated before anything is written; one
  // transaction.
  grpc::ServerUnaryReactor* PutDeviceProfile(grpc::CallbackServerContext* context,
                                             const v1::PutDeviceProfileRequest* request, v1::Device* response) override;

 private:
  absl::StatusOr<v1::Device> Put(const v1::PutDeviceProfileRequest& request);

  device_profiles::ProfileStore& profiles_;
};

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_DEVICE_SERVICE_H_
