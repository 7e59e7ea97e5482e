#include "device_profiles/profile_store.h"

#include <catch2/catch.hpp>

#include "common/files.h"
#include "common/sqlite.h"
#include "tests/device_profiles/test_device.h"
#include "tests/testing/temp_dir.h"

namespace squeeze::device_profiles {
namespace {

using Catch::Matchers::Contains;

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
    // Version 1 each, but for the rows a seed migration (NNNN_seed_*.sql) gave a newer version.
    CHECK(d.version == (d.id == "iphone-15-pro" ? 2 : 1));
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

// What the seed migration 0005 gives: the iPhone as ONNX Runtime's CoreML provider runs it (fp16
// only), and the Galaxy S24's Hexagon NPU through the QNN provider.
void CheckCoreMlAndNpuRows(ProfileStore& store) {
  const absl::StatusOr<Device> iphone = store.GetDevice("iphone-15-pro");
  REQUIRE(iphone.ok());
  CHECK(iphone->version == 2);
  CHECK(iphone->runtime == "onnxruntime-coreml");
  REQUIRE(iphone->capabilities.size() == 1);
  CHECK(iphone->capabilities[0].weight_bits == 16);
  CHECK(iphone->capabilities[0].activation_bits == 16);
  CHECK_THAT(iphone->derivation, Contains("no QuantizeLinear, DequantizeLinear or quantized op"));
  CHECK(store.GetDevice("iphone-15-pro", 1)->runtime == "coreml");  // version 1 stays, as searched
  const absl::StatusOr<Device> npu = store.GetDevice("galaxy-s24-npu");
  REQUIRE(npu.ok());
  CHECK(npu->runtime == "onnxruntime-qnn");
  CHECK(npu->memory_bandwidth_bytes_per_s == store.GetDevice("galaxy-s24")->memory_bandwidth_bytes_per_s);
  CHECK(npu->capabilities.size() == 3);
  for (const Capability& c : npu->capabilities) CHECK_THAT(c.derivation, Contains("ASSUMED"));
  CHECK(ValidateDevice(*npu).ok());
}

TEST_CASE("A new database holds the seed migrations' rows", "[profiles]") {
  testing::TempDir dir;
  auto store = OpenStore(dir.File("profiles.db"));
  CheckCoreMlAndNpuRows(*store);
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
  LatencySample s = TestSample("a", 12.5);
  REQUIRE(*store->PutDevice(d, {s}) == 1);
  d.memory_bandwidth_bytes_per_s = 20e9;
  d.provenance = Provenance::kMeasured;
  REQUIRE(*store->PutDevice(d, {s, TestSample("b")}) == 2);

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
  CHECK((*samples)[0].key == "a");
  CHECK((*samples)[0].latency_median_us == 12.5);
  CHECK((*samples)[0].latency_p90_us == s.latency_p90_us);
  CHECK((*samples)[0].macs == s.macs);
  CHECK(store->ListDevices()->size() == 1);
}

TEST_CASE("Model latencies are stored per version and a merge replaces entries by id", "[profiles]") {
  testing::TempDir dir;
  ProfileStoreOptions options;
  options.seed = false;
  auto store = OpenStore(dir.File("profiles.db"), options);
  Device d = TestDevice("board");
  d.provenance = Provenance::kMeasured;
  ProfileConditions conditions;
  conditions.tool = "squeeze-profile 0.1";
  conditions.mode = "quick";
  conditions.threads = 1;
  conditions.cpu_governor = "performance";
  d.conditions = conditions;
  REQUIRE(*store->PutDevice(d, {TestSample("a", 10), TestSample("b", 20)}, {TestModelLatency("det")}) == 1);

  // Merge: "b" re-measured, "c" new, a model latency added; the description kept.
  absl::StatusOr<int64_t> merged = store->MergeDevice("board", std::nullopt, {TestSample("b", 25), TestSample("c", 30)},
                                                      {TestModelLatency("cls", 900)});
  REQUIRE(merged.ok());
  CHECK(*merged == 2);
  absl::StatusOr<Device> newest = store->GetDevice("board");
  REQUIRE(newest.ok());
  CHECK(newest->latency_sample_count == 3);
  CHECK(newest->model_latency_count == 2);
  REQUIRE(newest->conditions.has_value());
  CHECK(newest->conditions->cpu_governor == "performance");
  CHECK(newest->name == d.name);
  absl::StatusOr<std::vector<LatencySample>> samples = store->GetSamples("board", 2);
  REQUIRE(samples.ok());
  REQUIRE(samples->size() == 3);
  CHECK((*samples)[0].latency_median_us == 10);
  CHECK((*samples)[1].key == "b");
  CHECK((*samples)[1].latency_median_us == 25);
  CHECK((*samples)[2].key == "c");
  absl::StatusOr<std::vector<ModelLatency>> latencies = store->GetModelLatencies("board", 2);
  REQUIRE(latencies.ok());
  REQUIRE(latencies->size() == 2);
  CHECK((*latencies)[1].latency_median_us == 900);
  // Version 1 is as it was.
  CHECK(store->GetSamples("board", 1)->at(1).latency_median_us == 20);
  CHECK(store->GetModelLatencies("board", 1)->size() == 1);

  CHECK(store->MergeDevice("no-such-board", std::nullopt, {TestSample("a")}, {}).status().code() ==
        absl::StatusCode::kNotFound);
  CHECK(store->GetDevice("board")->version == 2);
}

TEST_CASE("A version 1 database is migrated in place and keeps its samples", "[profiles]") {
  testing::TempDir dir;
  const std::string path = dir.File("profiles.db");
  {
    absl::StatusOr<std::string> v1 =
        common::ReadFile(SQUEEZE_SOURCE_DIR "/tests/device_profiles/testdata/profiles_schema_v1.sql");
    REQUIRE(v1.ok());
    absl::StatusOr<common::Database> db = common::Database::Open(path);
    REQUIRE(db.ok());
    REQUIRE(db->Exec(*v1).ok());
    REQUIRE(
        db->Exec(
              "INSERT INTO devices (id, version, name, vendor, soc, os, cpu, cpu_cores, simd, ram_bytes, "
              "app_memory_budget_bytes, memory_bandwidth_bytes_per_s, runtime, runtime_version, threads, "
              "op_overhead_us, "
              "source, derivation, provenance) VALUES ('old-board', 1, 'Old board', 'Acme', 'A1', 'Linux', '4x A53', "
              "4, "
              "'neon', 4000000000, 1000000000, 4e9, 'onnxruntime-cpu', '1.16', 4, 8, 'test', 'test', 'measured');"
              "INSERT INTO capabilities VALUES ('old-board', 1, '*', 32, 32, 'dense', 1, 20e9, 0.5, 'test', 'test', "
              "'measured');"
              "INSERT INTO latency_samples (device_id, device_version, op_kind, in_channels, out_channels, height, "
              "width, "
              "kernel, weight_bits, activation_bits, sparsity, macs, weight_bytes, activation_bytes, latency_mean_us, "
              "latency_stddev_us, repeats, threads, runtime_version, measured_at, source, provenance) VALUES "
              "('old-board', 1, 'conv', 16, 32, 20, 20, 3, 32, 32, 'dense', 1843200, 18432, 76800, 120.5, 3, 10, 4, "
              "'1.16', '2026-01-01T00:00:00Z', 'test', 'measured');")
            .ok());
    REQUIRE(*db->UserVersion() == 1);
  }
  auto store = OpenStore(path);
  absl::StatusOr<std::vector<LatencySample>> samples = store->GetSamples("old-board", 1);
  REQUIRE(samples.ok());
  REQUIRE(samples->size() == 1);
  CHECK((*samples)[0].latency_median_us == 120.5);
  CHECK((*samples)[0].latency_mean_us == 120.5);
  CHECK_FALSE((*samples)[0].key.empty());
  CHECK(store->GetModelLatencies("old-board", 1)->empty());
  // The migrated database takes new-kind samples and model latencies.
  Device d = *store->GetDevice("old-board");
  LatencySample q = TestSample("q");
  q.op_kind = OpKind::kQuantizeLinear;
  q.macs = 0;
  q.elements = 100000;
  LatencySample t = q;
  t.key = "t";
  t.op_kind = OpKind::kTranspose;
  REQUIRE(store->PutDevice(d, {q, t}, {TestModelLatency("det")}).ok());
  absl::StatusOr<common::Database> db = common::Database::Open(path);
  REQUIRE(db.ok());
  CHECK(*db->UserVersion() == kProfileSchemaVersion);
}

// A database as version `version` of the schema left it: version 1's schema (kept as it was),
// then the frozen migrations up to `version`.
void CreateAtVersion(const std::string& path, int version) {
  absl::StatusOr<std::string> v1 =
      common::ReadFile(SQUEEZE_SOURCE_DIR "/tests/device_profiles/testdata/profiles_schema_v1.sql");
  REQUIRE(v1.ok());
  absl::StatusOr<common::Database> db = common::Database::Open(path);
  REQUIRE(db.ok());
  REQUIRE(db->Exec(*v1).ok());
  for (int v = 2; v <= version; ++v) REQUIRE(db->Exec(ProfileMigrationSql(v)).ok());
  REQUIRE(*db->UserVersion() == version);
}

TEST_CASE("A version 2 database is migrated in place, keeps every sample and takes transposes", "[profiles]") {
  testing::TempDir dir;
  const std::string path = dir.File("profiles.db");
  CreateAtVersion(path, 2);
  {
    absl::StatusOr<common::Database> db = common::Database::Open(path);
    REQUIRE(db.ok());
    // A transpose sample is what version 2 could not hold.
    CHECK_FALSE(db->Exec("INSERT INTO devices (id, version, name, vendor, soc, os, cpu, cpu_cores, simd, ram_bytes, "
                         "app_memory_budget_bytes, memory_bandwidth_bytes_per_s, runtime, runtime_version, threads, "
                         "op_overhead_us, source, derivation, provenance) VALUES ('b', 1, 'B', 'Acme', 'A1', 'Linux', "
                         "'4x A53', 4, 'neon', 4000000000, 1000000000, 4e9, 'onnxruntime-cpu', '1.29', 4, 8, 't', 't', "
                         "'measured');"
                         "INSERT INTO latency_samples (device_id, device_version, sample_key, op_kind, elements, "
                         "weight_bits, activation_bits, sparsity, macs, weight_bytes, activation_bytes, "
                         "latency_median_us, latency_mean_us, latency_stddev_us, repeats, threads, runtime_version, "
                         "measured_at, source, provenance) VALUES ('b', 1, 'transpose 1x32x32x32', 'transpose', 32768, "
                         "32, 8, 'dense', 0, 0, 65536, 9.5, 9.7, 0.2, 100, 1, '1.29', '2026-12-01T00:00:00Z', 't', "
                         "'measured');")
                    .ok());
    REQUIRE(db->Exec("DELETE FROM latency_samples; DELETE FROM devices;").ok());
  }
  {
    // Written by the version 2 store of this build's predecessor: a device and its conv sample.
    absl::StatusOr<common::Database> db = common::Database::Open(path);
    REQUIRE(db.ok());
    REQUIRE(db->Exec("INSERT INTO devices (id, version, name, vendor, soc, os, cpu, cpu_cores, simd, ram_bytes, "
                     "app_memory_budget_bytes, memory_bandwidth_bytes_per_s, runtime, runtime_version, threads, "
                     "op_overhead_us, source, derivation, provenance) VALUES ('board', 1, 'Board', 'Acme', 'A1', "
                     "'Linux', '4x A53', 4, 'neon', 4000000000, 1000000000, 4e9, 'onnxruntime-cpu', '1.29', 4, 8, "
                     "'test', 'test', 'measured');"
                     "INSERT INTO capabilities VALUES ('board', 1, '*', 32, 32, 'dense', 1, 20e9, 0.5, 'test', 'test', "
                     "'spec');"
                     "INSERT INTO latency_samples (device_id, device_version, sample_key, op_kind, in_channels, "
                     "out_channels, height, width, kernel, weight_bits, activation_bits, sparsity, macs, weight_bytes, "
                     "activation_bytes, latency_median_us, latency_mean_us, latency_stddev_us, repeats, threads, "
                     "runtime_version, measured_at, source, provenance) VALUES ('board', 1, 'conv k3 s1 16>32 20x20 "
                     "w8a8', 'conv', 16, 32, 20, 20, 3, 8, 8, 'dense', 1843200, 4608, 19200, 50.5, 52, 2, 20, 1, "
                     "'1.29', '2026-12-01T00:00:00Z', 'test', 'measured');")
                .ok());
  }
  auto store = OpenStore(path);
  absl::StatusOr<std::vector<LatencySample>> samples = store->GetSamples("board", 1);
  REQUIRE(samples.ok());
  REQUIRE(samples->size() == 1);
  CHECK((*samples)[0].key == "conv k3 s1 16>32 20x20 w8a8");
  CHECK((*samples)[0].latency_median_us == 50.5);
  LatencySample t = TestSample("transpose 1x32x32x32");
  t.op_kind = OpKind::kTranspose;
  t.macs = 0;
  t.elements = 32768;
  const absl::StatusOr<int64_t> put = store->PutDevice(*store->GetDevice("board"), {(*samples)[0], t});
  INFO(put.status().ToString());
  REQUIRE(put.ok());
  CHECK(store->GetSamples("board", 2)->size() == 2);
  absl::StatusOr<common::Database> db = common::Database::Open(path);
  REQUIRE(db.ok());
  CHECK(*db->UserVersion() == kProfileSchemaVersion);
}

TEST_CASE("A seeded version 4 database gains the seed migration's rows, an unseeded one or an uploaded version stays",
          "[profiles]") {
  testing::TempDir dir;
  // Seeded at version 4: seed.sql as it was then (its rows are unchanged since).
  const std::string seeded = dir.File("seeded.db");
  CreateAtVersion(seeded, 4);
  {
    absl::StatusOr<common::Database> db = common::Database::Open(seeded);
    REQUIRE(db.ok());
    REQUIRE(db->Exec(std::string(ProfileSeedSql())).ok());
  }
  {
    auto store = OpenStore(seeded);
    CheckCoreMlAndNpuRows(*store);
  }
  // Not seeded: the migration adds nothing.
  const std::string bare = dir.File("bare.db");
  CreateAtVersion(bare, 4);
  {
    ProfileStoreOptions options;
    options.seed = false;
    auto store = OpenStore(bare, options);
    CHECK(store->ListDevices()->empty());
  }
  // Someone uploaded an iPhone version 2 of their own: it stays the newest, and no NPU row is
  // added twice when the migration meets one already there.
  const std::string uploaded = dir.File("uploaded.db");
  CreateAtVersion(uploaded, 4);
  {
    absl::StatusOr<common::Database> db = common::Database::Open(uploaded);
    REQUIRE(db.ok());
    REQUIRE(db->Exec(std::string(ProfileSeedSql())).ok());
    REQUIRE(db->Exec("INSERT INTO devices (id, version, name, vendor, soc, os, cpu, cpu_cores, simd, ram_bytes, "
                     "app_memory_budget_bytes, memory_bandwidth_bytes_per_s, runtime, runtime_version, threads, "
                     "op_overhead_us, source, derivation, provenance) SELECT id, 2, name, vendor, soc, os, cpu, "
                     "cpu_cores, simd, ram_bytes, app_memory_budget_bytes, memory_bandwidth_bytes_per_s, runtime, "
                     "runtime_version, threads, op_overhead_us, source, derivation, 'measured' FROM devices WHERE id = "
                     "'iphone-15-pro' AND version = 1;")
                .ok());
  }
  {
    auto store = OpenStore(uploaded);
    const absl::StatusOr<Device> iphone = store->GetDevice("iphone-15-pro");
    REQUIRE(iphone.ok());
    CHECK(iphone->version == 2);
    CHECK(iphone->provenance == Provenance::kMeasured);
    CHECK(iphone->runtime == "coreml");
    CHECK(store->GetDevice("galaxy-s24-npu").ok());
  }
}

// Every table's columns (name, type, not null, default, key position) and every index's name, one
// line each, in name order: what a database's schema is, whatever text created it.
std::vector<std::string> SchemaOf(const std::string& path) {
  absl::StatusOr<common::Database> db = common::Database::Open(path);
  REQUIRE(db.ok());
  std::vector<std::string> lines;
  absl::StatusOr<common::Statement> objects =
      db->Prepare("SELECT type, name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name");
  REQUIRE(objects.ok());
  std::vector<std::pair<std::string, std::string>> names;
  while (*objects->Step()) names.emplace_back(objects->ColumnText(0), objects->ColumnText(1));
  for (const auto& [type, name] : names) {
    lines.push_back(type + " " + name);
    if (type != "table") continue;
    absl::StatusOr<common::Statement> columns = db->Prepare(
        "SELECT name, type, \"notnull\", ifnull(dflt_value, ''), pk FROM pragma_table_info(?) ORDER BY cid");
    REQUIRE(columns.ok());
    columns->Bind(1, name);
    while (*columns->Step()) {
      lines.push_back(name + "." + columns->ColumnText(0) + " " + columns->ColumnText(1) + " " +
                      columns->ColumnText(2) + " " + columns->ColumnText(3) + " " + columns->ColumnText(4));
    }
  }
  return lines;
}

TEST_CASE("Every migration path ends at the schema a new database gets", "[profiles]") {
  testing::TempDir dir;
  ProfileStoreOptions options;
  options.seed = false;
  const std::string fresh = dir.File("fresh.db");
  OpenStore(fresh, options);
  REQUIRE(SchemaOf(fresh).size() > 80);  // devices, capabilities, samples, model latencies
  for (int old = 1; old < kProfileSchemaVersion; ++old) {
    INFO("from version " << old);
    const std::string path = dir.File("v" + std::to_string(old) + ".db");
    CreateAtVersion(path, old);
    OpenStore(path, options);
    CHECK(SchemaOf(path) == SchemaOf(fresh));
  }
  // Each version's migration is built in, and none beyond the current one.
  for (int v = 2; v <= kProfileSchemaVersion; ++v) CHECK_FALSE(ProfileMigrationSql(v).empty());
  CHECK(ProfileMigrationSql(kProfileSchemaVersion + 1).empty());
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
    LatencySample bad = TestSample("b");
    bad.latency_median_us = -3;
    CHECK(store->PutDevice(TestDevice("board"), {TestSample("a"), bad}).status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
  SECTION("a sample id twice") {
    absl::StatusOr<int64_t> put = store->PutDevice(TestDevice("board"), {TestSample("a"), TestSample("a")});
    CHECK(put.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(put.status().message().find("'a'") != absl::string_view::npos);
  }
  SECTION("a model latency id twice") {
    absl::StatusOr<int64_t> put =
        store->PutDevice(TestDevice("board"), {TestSample("a")}, {TestModelLatency("m"), TestModelLatency("m")});
    CHECK(put.status().code() == absl::StatusCode::kInvalidArgument);
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
