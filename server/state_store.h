// StateStore: the server's own state in <data_dir>/state.db (SQLite, WAL): models now; jobs,
// fronts, sensitivities, teams and keys as their features land. Domain calls only; the SQL lives
// in state_store.cc. Thread safe: one connection behind a mutex.
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

inline constexpr int kStateSchemaVersion = 4;
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
// SearchJob with its fronts); state and phase are squeeze.v1.JobState / Phase values.
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
};

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

  // Inserts `record` (id and created_at assigned here) and returns it as stored.
  absl::StatusOr<ModelRecord> InsertModel(ModelRecord record);
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

  // Jobs. InsertJob assigns id and created_at.
  absl::StatusOr<JobRecord> InsertJob(JobRecord record);
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
  explicit StateStore(common::Database db) : db_(std::move(db)) {}
  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  absl::Mutex mutex_;
  common::Database db_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_STATE_STORE_H_
