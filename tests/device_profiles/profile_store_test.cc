#include "device_profiles/profile_store.h"

#include <catch2/catch.hpp>

#include "common/sqlite.h"
#include "tests/device_profiles/test_device.h"
#include "tests/testing/temp_dir.h"

namespace squeeze::device_profiles {
namespace {

std::unique_ptr<ProfileStore> OpenStore(const std::string& path, const ProfileStoreOptions& options = {}) {
  absl::StatusOr<std::unique_ptr<ProfileStore>> store = ProfileStore::Open(path, options);
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  return *std::move(store);
}

TEST_CASE("A new profile database is seeded with real devices that cite their sources", "[profiles]") {
  testing::TempDir dir;
  ProfileStoreOptions options;
  options.host = TestDevice("host");
  auto store = OpenStore(dir.File("profiles.db"), options);
  absl::StatusOr<std::vector<Device>> devices = store->ListDevices();
  REQUIRE(devices.ok());
  CHECK(devices->size() >= 9);
  bool has_host = false;
  for (const Device& d : *devices) {
    INFO(d.id);
    CHECK(d.version == 1);
    CHECK_FALSE(d.source.empty());
    CHECK_FALSE(d.derivation.empty());
    CHECK(d.provenance == Provenance::kSpec);
    CHECK_FALSE(d.capabilities.empty());
    CHECK(ValidateDevice(d).ok());
    for (const Capability& c : d.capabilities) {
      CHECK_FALSE(c.derivation.empty());
      CHECK(c.provenance == Provenance::kSpec);
    }
    has_host = has_host || d.id == "host";
  }
  CHECK(has_host);
  absl::StatusOr<common::Database> db = common::Database::Open(dir.File("profiles.db"));
  REQUIRE(db.ok());
  CHECK(*db->UserVersion() == kProfileSchemaVersion);
}

TEST_CASE("Reopening keeps user data and does not re-seed", "[profiles]") {
  testing::TempDir dir;
  const std::string path = dir.File("profiles.db");
  size_t seeded = 0;
  {
    auto store = OpenStore(path);
    seeded = store->ListDevices()->size();
    REQUIRE(store->PutDevice(TestDevice("my-board"), {}).ok());
  }
  auto store = OpenStore(path);
  absl::StatusOr<std::vector<Device>> devices = store->ListDevices();
  REQUIRE(devices.ok());
  CHECK(devices->size() == seeded + 1);
  CHECK(store->GetDevice("my-board").ok());
}

TEST_CASE("Putting a device again adds a version and keeps the old one", "[profiles]") {
  testing::TempDir dir;
  ProfileStoreOptions options;
  options.seed = false;
  auto store = OpenStore(dir.File("profiles.db"), options);
  Device d = TestDevice("board");
  LatencySample s;
  s.op_kind = OpKind::kConv;
  s.macs = 1000;
  s.latency_mean_us = 12.5;
  s.weight_bits = 8;
  s.activation_bits = 8;
  s.source = "test";
  REQUIRE(*store->PutDevice(d, {s}) == 1);
  d.memory_bandwidth_bytes_per_s = 20e9;
  d.provenance = Provenance::kMeasured;
  REQUIRE(*store->PutDevice(d, {s, s}) == 2);

  absl::StatusOr<Device> newest = store->GetDevice("board");
  REQUIRE(newest.ok());
  CHECK(newest->version == 2);
  CHECK(newest->memory_bandwidth_bytes_per_s == 20e9);
  CHECK(newest->latency_sample_count == 2);
  absl::StatusOr<Device> first = store->GetDevice("board", 1);
  REQUIRE(first.ok());
  CHECK(first->memory_bandwidth_bytes_per_s == 10e9);
  CHECK(first->latency_sample_count == 1);
  absl::StatusOr<std::vector<LatencySample>> samples = store->GetSamples("board", 1);
  REQUIRE(samples.ok());
  REQUIRE(samples->size() == 1);
  CHECK((*samples)[0].latency_mean_us == 12.5);
  CHECK(store->ListDevices()->size() == 1);
}

TEST_CASE("Unknown devices and versions are NotFound naming the id", "[profiles]") {
  testing::TempDir dir;
  auto store = OpenStore(dir.File("profiles.db"));
  absl::StatusOr<Device> missing = store->GetDevice("no-such-phone");
  REQUIRE(missing.status().code() == absl::StatusCode::kNotFound);
  CHECK(missing.status().message().find("no-such-phone") != absl::string_view::npos);
  REQUIRE(store->PutDevice(TestDevice("board"), {}).ok());
  CHECK(store->GetDevice("board", 7).status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("A bad device or sample is refused and nothing is stored", "[profiles]") {
  testing::TempDir dir;
  ProfileStoreOptions options;
  options.seed = false;
  auto store = OpenStore(dir.File("profiles.db"), options);

  SECTION("bad id") {
    Device d = TestDevice("Not A Slug");
    CHECK(store->PutDevice(d, {}).status().code() == absl::StatusCode::kInvalidArgument);
  }
  SECTION("negative latency in the last sample") {
    LatencySample good;
    good.macs = 10;
    good.latency_mean_us = 1;
    LatencySample bad = good;
    bad.latency_mean_us = -3;
    CHECK(store->PutDevice(TestDevice("board"), {good, bad}).status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
  SECTION("a capability listed twice") {
    Device d = TestDevice("board");
    d.capabilities.push_back(d.capabilities[0]);
    absl::StatusOr<int64_t> put = store->PutDevice(d, {});
    CHECK(put.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(put.status().message().find("twice") != absl::string_view::npos);
  }
  CHECK(store->ListDevices()->empty());
}

TEST_CASE("Databases that are not ours or are newer are refused", "[profiles]") {
  testing::TempDir dir;
  {
    absl::StatusOr<common::Database> db = common::Database::Open(dir.File("other.db"));
    REQUIRE(db.ok());
    REQUIRE(db->Exec("CREATE TABLE accounts (id INTEGER)").ok());
    absl::StatusOr<common::Database> newer = common::Database::Open(dir.File("newer.db"));
    REQUIRE(newer.ok());
    REQUIRE(newer->Exec("PRAGMA user_version = 99").ok());
  }
  CHECK(ProfileStore::Open(dir.File("other.db")).status().code() == absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<std::unique_ptr<ProfileStore>> newer = ProfileStore::Open(dir.File("newer.db"));
  REQUIRE(newer.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(newer.status().message().find("99") != absl::string_view::npos);
}

}  // namespace
}  // namespace squeeze::device_profiles
