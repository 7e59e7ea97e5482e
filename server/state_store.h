// StateStore: the server's own state in <data_dir>/state.db (SQLite, WAL): teams and API keys
// (hashes only), models, jobs with their fronts, cached sensitivities. Domain calls only; the SQL
// lives in state_store.cc. Thread safe: one connection behind a mutex. Other processes may open
// the same file at the same time (`squeezed keys` does, while a server runs): every call reads
// the database afresh, so what they commit is seen by the next call.
//
// Every row belongs to a team; a call for another team's row answers NotFound, exactly as for a
// row that does not exist.
#ifndef SQUEEZE_SERVER_STATE_STORE_H_
#define SQUEEZE_SERVER_STATE_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/sqlite.h"

namespace squeeze::server {

inline constexpr int kStateSchemaVersion = 7;

// The SQL of the frozen migration server/migrations/NNNN_name.sql that brings state.db's
// user_version to `to_version` (embedded at build time); empty for any other version.
absl::string_view StateMigrationSql(int to_version);
inline constexpr char kDefaultTeam[] = "default";

struct ModelRecord {
  std::string id;
  std::string team = kDefaultTeam;
  std::string name;
  std::string sha256;
  int64_t size_bytes = 0;
  std::string input_shapes;  // canonical "name=d0,d1;name2=..." (sorted by name)
  std::string analysis;      // serialized squeeze.v1.ModelAnalysis
  std::string created_at;
};

// A search job as stored. spec and result are serialized squeeze.v1 messages (SearchSpec and
// SearchJob with its fronts); state and phase are squeeze.v1.JobState / Phase values, stored as
// words ("queued", "running", "succeeded", "failed", "cancelled"; "queued", "analyzing", ...,
// "done").
struct JobRecord {
  std::string id;
  std::string team = kDefaultTeam;
  std::string model_id;
  std::string cache_key;  // sha256 of (model bytes, device profile versions, spec)
  int state = 1;          // JOB_STATE_QUEUED
  int phase = 1;          // PHASE_QUEUED
  double fraction = 0;
  std::string error;
  std::string spec;
  std::string result;
  std::string created_at, started_at, finished_at;
  bool from_cache = false;  // answered from a stored result; costs no quota
  int attempts = 0;         // runs begun and not ended by the job or a clean shutdown
};

// Roles of API keys, in increasing power. An admin is an administrator of the server: it may do
// everything a member may (for its own team), manage the keys of every team and put device
// profiles, which all teams share.
enum class Role { kMember = 1, kAdmin = 2 };

// An API key as stored: never the key itself, only its SHA-256.
struct ApiKeyRecord {
  std::string id;  // "k-" + 8 hex digits: names the key in lists and revocations
  std::string team;
  Role role = Role::kMember;
  std::string prefix;  // the key's first characters, to recognise it
  std::string created_at;
  std::string revoked_at;  // empty while the key works
};

// A new key: the record and the key itself, which exists only here and is shown once.
struct NewApiKey {
  ApiKeyRecord record;
  std::string key;
};

// Per-team limits; 0 means no limit.
struct TeamQuota {
  int64_t max_stored_bytes = 0;
  int max_concurrent_searches = 0;
  int max_searches_per_hour = 0;
};

// Team names: 1-63 of [a-z0-9_-], starting with a letter or digit. InvalidArgument otherwise.
absl::Status ValidateTeamName(const std::string& team);

// An export of a search candidate as stored: the file in the blob store, the report a serialized
// squeeze.v1.ExportReport. cache_key names (model bytes, plan, calibration, export options).
struct ExportRecord {
  std::string team = kDefaultTeam;
  std::string job_id;
  std::string device_id;
  int candidate = 0;
  std::string cache_key;
  std::string blob_sha256;
  std::string report;
  std::string created_at;
};

class StateStore {
 public:
  // Opens or creates state.db at `path`, migrating older schema versions. FailedPrecondition for a
  // file that is not ours or is newer than this build.
  static absl::StatusOr<std::unique_ptr<StateStore>> Open(const std::string& path);

  // API keys. CreateApiKey makes a random key for `team` (created when new); InvalidArgument for
  // a bad team name.
  absl::StatusOr<NewApiKey> CreateApiKey(const std::string& team, Role role);
  // Every key ever made (revoked ones too), oldest first.
  absl::StatusOr<std::vector<ApiKeyRecord>> ListApiKeys();
  // Revokes the key with this id (or key prefix) and returns it; NotFound when there is none,
  // FailedPrecondition when it is already revoked.
  absl::StatusOr<ApiKeyRecord> RevokeApiKey(const std::string& id);
  // The working key whose SHA-256 is `key_sha256`; NotFound when there is none or it is revoked.
  absl::StatusOr<ApiKeyRecord> LookupApiKey(const std::string& key_sha256);
  // How many keys were ever made, revoked ones included.
  absl::StatusOr<int64_t> CountApiKeys();

  // Inserts `record` (id and created_at assigned here) and returns it as stored. When the team's
  // models would then hold more than quota.max_stored_bytes, ResourceExhausted naming the limit.
  absl::StatusOr<ModelRecord> InsertModel(ModelRecord record, const TeamQuota& quota = {});
  // Bytes the team's models hold.
  absl::StatusOr<int64_t> TeamStoredBytes(const std::string& team);
  // The team's model with these bytes and input shapes, if one was uploaded before.
  absl::StatusOr<std::optional<ModelRecord>> FindModel(const std::string& team, const std::string& sha256,
                                                       const std::string& input_shapes);
  absl::StatusOr<ModelRecord> GetModel(const std::string& team, const std::string& id);
  // The team's models, newest first.
  absl::StatusOr<std::vector<ModelRecord>> ListModels(const std::string& team);
  // Deletes the team's model and returns it; NotFound when it is not the team's.
  absl::StatusOr<ModelRecord> DeleteModel(const std::string& team, const std::string& id);
  // How many models (of any team) use these bytes.
  absl::StatusOr<int64_t> CountModelsWithBlob(const std::string& sha256);
  // Sensitivities measured for a model's bytes on a calibration set with given measurement
  // options, shared by every team that has the same bytes (they are facts of the bytes, not of
  // the team). `report` is a serialized squeeze.v1.SensitivityReport.
  absl::Status PutSensitivity(const std::string& model_sha256, const std::string& calibration_hash,
                              const std::string& options_key, const std::string& report);
  absl::StatusOr<std::optional<std::string>> GetSensitivity(const std::string& model_sha256,
                                                            const std::string& calibration_hash,
                                                            const std::string& options_key);

  // Jobs. InsertJob assigns id and created_at. Unless the job is answered from cache, it checks
  // the team's concurrent-search and searches-per-hour quotas in the same step as the insert,
  // with ResourceExhausted naming the limit.
  absl::StatusOr<JobRecord> InsertJob(JobRecord record, const TeamQuota& quota = {});
  // Counts of every team's jobs queued and running.
  struct JobCounts {
    int64_t queued = 0, running = 0, succeeded = 0, failed = 0, cancelled = 0;
  };
  absl::StatusOr<JobCounts> CountJobs();
  // Writes state, phase, fraction, error and result; sets started_at / finished_at when the job
  // starts running / ends. NotFound for an unknown id.
  absl::Status UpdateJob(const JobRecord& record);
  absl::StatusOr<JobRecord> GetJob(const std::string& team, const std::string& id);
  // The team's jobs, newest first, at most `limit`.
  absl::StatusOr<std::vector<JobRecord>> ListJobs(const std::string& team, int limit);
  // The newest succeeded job of the team with this cache key, if any.
  absl::StatusOr<std::optional<JobRecord>> FindFinishedJob(const std::string& team, const std::string& cache_key);
  // Jobs of every team left queued or running (by a process that died), oldest first.
  absl::StatusOr<std::vector<JobRecord>> UnfinishedJobs();

  // Exports. PutExport replaces the row of the same (team, job, device, candidate).
  absl::Status PutExport(const ExportRecord& record);
  // The team's newest export with this cache key, if any.
  absl::StatusOr<std::optional<ExportRecord>> FindExport(const std::string& team, const std::string& cache_key);
  // The team's exports of one job, oldest first.
  absl::StatusOr<std::vector<ExportRecord>> ListExports(const std::string& team, const std::string& job_id);

  // Every blob any row refers to (models and exports).
  absl::StatusOr<std::set<std::string>> ReferencedBlobs();

 private:
  StateStore(common::Database db, common::Database keys_db) : db_(std::move(db)), keys_db_(std::move(keys_db)) {}
  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  absl::Mutex mutex_;
  common::Database db_ ABSL_GUARDED_BY(mutex_);
  // Key lookups run on every call, on gRPC threads: they have a connection of their own, so they
  // never wait behind the jobs' and models' queries (WAL readers do not block on the writer).
  absl::Mutex keys_mutex_;
  common::Database keys_db_ ABSL_GUARDED_BY(keys_mutex_);
};

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_STATE_STORE_H_
