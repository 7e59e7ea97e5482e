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
inline constexpr int kProfileSchemaVersion = 1;

struct ProfileStoreOptions {
  // Seed a new database with the devices shipped in seed.sql.
  bool seed = true;
  // Added as a new database's `host` device (see host.h); ignored for an existing database.
  std::optional<Device> host;
};

class ProfileStore {
 public:
  // Opens `path`, creating and seeding it when it does not exist or is empty. Fails with
  // FailedPrecondition when the file is not a profile database or has a newer schema version.
  static absl::StatusOr<std::unique_ptr<ProfileStore>> Open(const std::string& path,
                                                            const ProfileStoreOptions& options = {});

  // The newest version of every device, ordered by id, with capabilities and sample counts.
  absl::StatusOr<std::vector<Device>> ListDevices() const;

  // One device: the newest version when `version` is 0. NotFound names the id (and version).
  absl::StatusOr<Device> GetDevice(absl::string_view id, int64_t version = 0) const;

  // The measured latency samples of one device version.
  absl::StatusOr<std::vector<LatencySample>> GetSamples(absl::string_view id, int64_t version) const;

  // Stores `device` (with its capabilities) and `samples` as a new version of device.id, all in
  // one transaction, and returns that version (1 for a new id). Older versions stay readable.
  // InvalidArgument for a malformed device or sample; nothing is stored then.
  absl::StatusOr<int64_t> PutDevice(const Device& device, const std::vector<LatencySample>& samples);

  const std::string& path() const { return path_; }

 private:
  ProfileStore(common::Database db, std::string path) : db_(std::move(db)), path_(std::move(path)) {}
  absl::Status Initialize(const ProfileStoreOptions& options) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::StatusOr<Device> ReadDevice(absl::string_view id, int64_t version) const
      ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  absl::StatusOr<int64_t> InsertDevice(const Device& device, const std::vector<LatencySample>& samples)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  mutable absl::Mutex mutex_;
  mutable common::Database db_ ABSL_GUARDED_BY(mutex_);
  std::string path_;
};

// The SQL shipped in the binary: the schema and the seed devices.
absl::string_view ProfileSchemaSql();
absl::string_view ProfileSeedSql();

}  // namespace squeeze::device_profiles

#endif  // SQUEEZE_DEVICE_PROFILES_PROFILE_STORE_H_
