// The access table and key checks, without a network: what each method needs, and what a call's
// metadata gets.
#include "server/auth.h"

#include <catch2/catch.hpp>

#include "common/sha256.h"
#include "server/proto_conversion.h"
#include "server/server.h"
#include "tests/testing/temp_dir.h"

namespace squeeze::server {
namespace {

using Catch::Matchers::Contains;

TEST_CASE("Methods need a member key unless the access table says otherwise", "[auth]") {
  CHECK(RequiredAccess("/grpc.health.v1.Health/Check") == Access::kPublic);
  CHECK(RequiredAccess("/grpc.health.v1.Health/Watch") == Access::kPublic);
  CHECK(RequiredAccess("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo") == Access::kPublic);
  CHECK(RequiredAccess("/squeeze.v1.DeviceService/PutDeviceProfile") == Access::kAdmin);
  CHECK(RequiredAccess("/squeeze.v1.ServerService/CreateApiKey") == Access::kAdmin);
  CHECK(RequiredAccess("/squeeze.v1.ServerService/GetServerStatus") == Access::kMember);
  CHECK(RequiredAccess("/squeeze.v1.ModelService/UploadModel") == Access::kMember);
  // A service this table has never heard of is covered too.
  CHECK(RequiredAccess("/squeeze.v1.ExportService/ExportModel") == Access::kMember);
  CHECK(RequiredAccess("/grpc.health.v1.HealthX/Check") == Access::kMember);
}

TEST_CASE("A call's key is checked against state.db for its method's access", "[auth]") {
  testing::TempDir dir;
  auto state = StateStore::Open(dir.File("state.db"));
  REQUIRE(state.ok());
  absl::StatusOr<NewApiKey> member = (*state)->CreateApiKey("vision", Role::kMember);
  absl::StatusOr<NewApiKey> admin = (*state)->CreateApiKey("ops", Role::kAdmin);
  REQUIRE(member.ok());
  REQUIRE(admin.ok());
  Authenticator auth(**state);
  auto check = [&](const std::string& value, Access access) {
    std::multimap<grpc::string_ref, grpc::string_ref> metadata;
    if (!value.empty()) metadata.emplace("authorization", value);
    return auth.Authenticate(metadata, "/squeeze.v1.X/Y", access);
  };
  absl::StatusOr<Caller> caller = check("Bearer " + member->key, Access::kMember);
  REQUIRE(caller.ok());
  CHECK(caller->team == "vision");
  CHECK(caller->role == Role::kMember);
  CHECK(caller->key_id == member->record.id);
  CHECK(check("bearer " + member->key, Access::kMember).ok());  // the scheme is case-insensitive

  CHECK(check("", Access::kMember).status().code() == absl::StatusCode::kUnauthenticated);
  CHECK(check(member->key, Access::kMember).status().code() == absl::StatusCode::kUnauthenticated);
  CHECK(check("Bearer ", Access::kMember).status().code() == absl::StatusCode::kUnauthenticated);
  CHECK(check("Bearer sqz_nope", Access::kMember).status().code() == absl::StatusCode::kUnauthenticated);
  absl::StatusOr<Caller> denied = check("Bearer " + member->key, Access::kAdmin);
  CHECK(denied.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK_THAT(std::string(denied.status().message()), Contains("admin") && Contains("vision"));
  CHECK(check("Bearer " + admin->key, Access::kAdmin).ok());

  REQUIRE((*state)->RevokeApiKey(member->record.id).ok());
  CHECK(check("Bearer " + member->key, Access::kMember).status().code() == absl::StatusCode::kUnauthenticated);
}

TEST_CASE("API keys convert to proto without their secret", "[auth][proto]") {
  ApiKeyRecord key;
  key.id = "k-1";
  key.team = "vision";
  key.role = Role::kAdmin;
  key.prefix = "sqz_abcd1234";
  const v1::ApiKey proto = ToProto(key);
  CHECK(proto.id() == "k-1");
  CHECK(proto.role() == v1::KEY_ROLE_ADMIN);
  CHECK(proto.prefix() == "sqz_abcd1234");
  CHECK(*FromProto(v1::KEY_ROLE_UNSPECIFIED) == Role::kMember);
  CHECK(*FromProto(v1::KEY_ROLE_ADMIN) == Role::kAdmin);
  CHECK(FromProto(static_cast<v1::KeyRole>(9)).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Plaintext is allowed only on loopback addresses", "[auth][tls]") {
  CHECK(IsLoopbackHost("127.0.0.1"));
  CHECK(IsLoopbackHost("127.0.1.1"));
  CHECK(IsLoopbackHost("localhost"));
  CHECK(IsLoopbackHost("[::1]"));
  CHECK_FALSE(IsLoopbackHost("0.0.0.0"));
  CHECK_FALSE(IsLoopbackHost("[::]"));
  CHECK_FALSE(IsLoopbackHost("10.0.0.7"));
  CHECK_FALSE(IsLoopbackHost("squeeze.example.com"));
}

}  // namespace
}  // namespace squeeze::server
