// The one place each squeeze.v1 message is converted to and from its domain type. Pure functions,
// tested without a network.
#ifndef SQUEEZE_SERVER_PROTO_CONVERSION_H_
#define SQUEEZE_SERVER_PROTO_CONVERSION_H_

#include "absl/status/statusor.h"
#include "device_profiles/device.h"
#include "squeeze/v1/device.pb.h"

namespace squeeze::server {

v1::Device ToProto(const device_profiles::Device& device);
v1::Capability ToProto(const device_profiles::Capability& capability);
v1::OpKind ToProto(device_profiles::OpKind kind);
v1::SparsityPattern ToProto(device_profiles::Sparsity sparsity);
v1::Provenance ToProto(device_profiles::Provenance provenance);

// InvalidArgument naming the field when an enum is unspecified or unknown.
absl::StatusOr<device_profiles::Device> FromProto(const v1::Device& device);
absl::StatusOr<device_profiles::OpKind> FromProto(v1::OpKind kind);
absl::StatusOr<device_profiles::Sparsity> FromProto(v1::SparsityPattern sparsity);

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_PROTO_CONVERSION_H_
