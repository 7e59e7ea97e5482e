// ProfileStore: the device-profile database (profiles.db, schema.sql) behind domain calls.
//
// A new database is created from the schema and the seed devices shipped with Squeeze, plus the
// machine the server runs on (`host`) when one is given. An existing database is never re-seeded:
// what users put there stays. Thread safe: one connection behind a mutex.
#ifndef SQUEEZE_DEVICE_PROFILES_PROFILE_STORE_H_
#define SQUEEZE_DEVICE_PROFILES_PROFILE_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/sqlite.h"
#include "device_profiles/device.h"

namespace squeeze::device_profiles {

// The schema version this build reads and writes (PRAGMA user_version).
inline constexpr int kProfileSchemaVersion = 5;

struct ProfileStoreOptions {
  // Seed a new database with the devices shipped in seed.sql.
  bool seed = true;
  // Added as a new database's `host` device (see host.h); ignored for an existing database.
  std::optional<Device> host;
};

class ProfileStore {
 public:
  // Opens `path`, creating and seeding it when it does not exist or is empty, migrating a version 1
  // database in place. Fails with FailedPrecondition when the file is not a profile database or has
  // a newer schema version.
  static absl::StatusOr<std::unique_ptr<ProfileStore>> Open(const std::string& path,
                                                            const ProfileStoreOptions& options = {});

  // The newest version of every device, ordered by id, with capabilities and sample counts.
  absl::StatusOr<std::vector<Device>> ListDevices() const;

  // One device: the newest version when `version` is 0. NotFound names the id (and version).
  absl::StatusOr<Device> GetDevice(absl::string_view id, int64_t version = 0) const;

  // The measured latency samples of one device version, in the order they were put.
  absl::StatusOr<std::vector<LatencySample>> GetSamples(absl::string_view id, int64_t version) const;
  // The measured whole-model latencies of one device version.
  absl::StatusOr<std::vector<ModelLatency>> GetModelLatencies(absl::string_view id, int64_t version) const;

  // Stores `device` (with its capabilities and conditions), `samples` and `model_latencies` as a
  // new version of device.id, all in one transaction, and returns that version (1 for a new id).
  // Older versions stay readable. InvalidArgument for a malformed device or sample or a repeated
  // key; nothing is stored then.
  absl::StatusOr<int64_t> PutDevice(const Device& device, const std::vector<LatencySample>& samples,
                                    const std::vector<ModelLatency>& model_latencies = {});

  // A new version of the stored device `id` holding its newest version's samples and model
  // latencies with `samples` and `model_latencies` merged in (an entry with a stored key replaces
  // it). The description and capabilities are `device` when given, else the newest version's.
  // One transaction; NotFound when `id` has no version yet.
  absl::StatusOr<int64_t> MergeDevice(absl::string_view id, const std::optional<Device>& device,
                                      const std::vector<LatencySample>& samples,
                                      const std::vector<ModelLatency>& model_latencies);

  const std::string& path() const { return path_; }

 private:
  ProfileStore(common::Database db, std::string path) : db_(std::move(db)), path_(std::move(path)) {}
  absl::Status Initialize(const ProfileStoreOptions& options) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::StatusOr<Device> ReadDevice(absl::string_view id, int64_t version) const ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  absl::StatusOr<std::vector<LatencySample>> ReadSamples(absl::string_view id, int64_t version) const
      ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  absl::StatusOr<std::vector<ModelLatency>> ReadModelLatencies(absl::string_view id, int64_t version) const
      ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  absl::StatusOr<int64_t> InsertDevice(const Device& device, const std::vector<LatencySample>& samples,
                                       const std::vector<ModelLatency>& model_latencies)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  mutable absl::Mutex mutex_;
  mutable common::Database db_ ABSL_GUARDED_BY(mutex_);
  std::string path_;
};

// The SQL shipped in the binary: the schema and the seed devices.
absl::string_view ProfileSchemaSql();
// The frozen migration (device_profiles/migrations/NNNN_*.sql) that brings a database from schema
// version to_version - 1 to to_version; empty when there is none.
absl::string_view ProfileMigrationSql(int to_version);
absl::string_view ProfileSeedSql();
// The migrations named NNNN_seed_*.sql: device rows added after seed.sql was frozen, each guarded
// to change only a database seeded with the spec rows it builds on. A new database runs them
// after seed.sql.
std::vector<int> ProfileSeedMigrations();

}  // namespace squeeze::device_profiles

#endif  // SQUEEZE_DEVICE_PROFILES_PROFILE_STORE_H_
