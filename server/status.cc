#include "server/status.h"

#include <string>

namespace squeeze::server {

// absl::StatusCode and grpc::StatusCode share their numbering (both follow google.rpc.Code).
// A message crosses the wire at most this long: the status of a call that echoed a huge value
// stays a status, not a copy of the value.
constexpr size_t kMaxStatusMessageBytes = 2048;

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  std::string message(status.message().substr(0, kMaxStatusMessageBytes));
  if (status.message().size() > kMaxStatusMessageBytes) {
    message += "... (message cut at " + std::to_string(kMaxStatusMessageBytes) + " of " +
               std::to_string(status.message().size()) + " bytes)";
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), message);
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace squeeze::server
