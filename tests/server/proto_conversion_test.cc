#include "server/proto_conversion.h"

#include <catch2/catch.hpp>

#include "server/status.h"
#include "tests/device_profiles/test_device.h"

namespace squeeze::server {
namespace {

namespace dp = device_profiles;

TEST_CASE("A device survives the round trip through its proto", "[proto_conversion]") {
  dp::Device d = dp::TestDevice();
  dp::Capability dw = d.capabilities[0];
  dw.op_kind = dp::OpKind::kDepthwiseConv;
  dw.sparsity = dp::Sparsity::kTwoFour;
  dw.provenance = dp::Provenance::kMeasured;
  d.capabilities.push_back(dw);
  d.latency_sample_count = 42;

  v1::Device proto = ToProto(d);
  CHECK(proto.capabilities(0).op_kind() == v1::OP_KIND_UNSPECIFIED);
  CHECK(proto.capabilities(2).op_kind() == v1::OP_KIND_DEPTHWISE_CONV);
  CHECK(proto.capabilities(2).sparsity() == v1::SPARSITY_PATTERN_TWO_FOUR);
  CHECK(proto.simd_features_size() == 2);

  absl::StatusOr<dp::Device> back = FromProto(proto);
  REQUIRE(back.ok());
  CHECK(back->id == d.id);
  CHECK(back->memory_bandwidth_bytes_per_s == d.memory_bandwidth_bytes_per_s);
  CHECK(back->simd_features == d.simd_features);
  REQUIRE(back->capabilities.size() == 3);
  CHECK_FALSE(back->capabilities[0].op_kind.has_value());
  CHECK(back->capabilities[2].op_kind == dp::OpKind::kDepthwiseConv);
  CHECK(back->capabilities[2].provenance == dp::Provenance::kMeasured);
  CHECK(back->latency_sample_count == 42);
}

TEST_CASE("An unspecified sparsity is InvalidArgument naming the capability", "[proto_conversion]") {
  v1::Device proto = ToProto(dp::TestDevice());
  proto.mutable_capabilities(1)->set_sparsity(v1::SPARSITY_PATTERN_UNSPECIFIED);
  absl::StatusOr<dp::Device> back = FromProto(proto);
  REQUIRE(back.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(back.status().message().find("capabilities[1]") != absl::string_view::npos);
}

TEST_CASE("Status codes keep their meaning across the gRPC boundary", "[status]") {
  grpc::Status s = ToGrpcStatus(absl::NotFoundError("no device 'x'"));
  CHECK(s.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(s.error_message() == "no device 'x'");
  CHECK(ToGrpcStatus(absl::ResourceExhaustedError("quota")).error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "key")).code() ==
        absl::StatusCode::kUnauthenticated);
  CHECK(ToGrpcStatus(absl::OkStatus()).ok());
}

}  // namespace
}  // namespace squeeze::server
