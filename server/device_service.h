// squeeze.v1.DeviceService: reads the shared device-profile database.
#ifndef SQUEEZE_SERVER_DEVICE_SERVICE_H_
#define SQUEEZE_SERVER_DEVICE_SERVICE_H_

#include "device_profiles/profile_store.h"
#include "squeeze/v1/device.grpc.pb.h"

namespace squeeze::server {

// Handlers answer from the profile store, a small local SQLite file read in well under a
// millisecond, so they complete on the reaction thread.
class DeviceService final : public v1::DeviceService::CallbackService {
 public:
  explicit DeviceService(device_profiles::ProfileStore& profiles) : profiles_(profiles) {}

  grpc::ServerUnaryReactor* ListDevices(grpc::CallbackServerContext* context,
                                        const v1::ListDevicesRequest* request,
                                        v1::ListDevicesResponse* response) override;
  grpc::ServerUnaryReactor* GetDevice(grpc::CallbackServerContext* context,
                                      const v1::GetDeviceRequest* request,
                                      v1::Device* response) override;

 private:
  device_profiles::ProfileStore& profiles_;
};

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_DEVICE_SERVICE_H_
