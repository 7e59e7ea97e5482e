// The one place absl::Status and grpc::Status meet.
#ifndef SQUEEZE_SERVER_STATUS_H_
#define SQUEEZE_SERVER_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace squeeze::server {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_STATUS_H_
