#include "server/state_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"

namespace squeeze::server {
namespace {

using common::Database;
using common::Statement;
using common::Transaction;

// Migrations, applied in order: migration i brings user_version from i to i + 1.
constexpr const char* kMigrations[] = {
    R"sql(
    CREATE TABLE models (
      id           TEXT    PRIMARY KEY,
      team         TEXT    NOT NULL,
      name         TEXT    NOT NULL,
      sha256       TEXT    NOT NULL CHECK (length(sha256) = 64),
      size_bytes   INTEGER NOT NULL CHECK (size_bytes > 0),
      input_shapes TEXT    NOT NULL,
      analysis     BLOB    NOT NULL,
      created_at   TEXT    NOT NULL
    );
    CREATE INDEX models_by_team ON models (team, created_at);
    CREATE INDEX models_by_blob ON models (sha256);
    )sql",
    R"sql(
    CREATE TABLE sensitivities (
      model_sha256     TEXT NOT NULL,
      calibration_hash TEXT NOT NULL,
      options_key      TEXT NOT NULL,
      report           BLOB NOT NULL,
      created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
      PRIMARY KEY (model_sha256, calibration_hash, options_key)
    );
    )sql",
    R"sql(
    CREATE TABLE jobs (
      id          TEXT    PRIMARY KEY,
      team        TEXT    NOT NULL,
      model_id    TEXT    NOT NULL,
      cache_key   TEXT    NOT NULL,
      state       INTEGER NOT NULL,
      phase       INTEGER NOT NULL,
      fraction    REAL    NOT NULL DEFAULT 0,
      error       TEXT    NOT NULL DEFAULT '',
      spec        BLOB    NOT NULL,
      result      BLOB    NOT NULL DEFAULT x'',
      created_at  TEXT    NOT NULL,
      started_at  TEXT    NOT NULL DEFAULT '',
      finished_at TEXT    NOT NULL DEFAULT ''
    );
    CREATE INDEX jobs_by_team ON jobs (team, created_at);
    CREATE INDEX jobs_by_key ON jobs (team, cache_key, state);
    CREATE INDEX jobs_by_state ON jobs (state);
    )sql",
    R"sql(
    CREATE TABLE exports (
      team        TEXT    NOT NULL,
      job_id      TEXT    NOT NULL,
      device_id   TEXT    NOT NULL,
      candidate   INTEGER NOT NULL,
      cache_key   TEXT    NOT NULL,
      blob_sha256 TEXT    NOT NULL CHECK (length(blob_sha256) = 64),
      report      BLOB    NOT NULL,
      created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
      PRIMARY KEY (team, job_id, device_id, candidate)
    );
    CREATE INDEX exports_by_key ON exports (team, cache_key, created_at);
    )sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kStateSchemaVersion);

constexpr char kModelColumns[] = "id, team, name, sha256, size_bytes, input_shapes, analysis, created_at";

ModelRecord ModelFromRow(const Statement& row) {
  ModelRecord m;
  m.id = row.ColumnText(0);
  m.team = row.ColumnText(1);
  m.name = row.ColumnText(2);
  m.sha256 = row.ColumnText(3);
  m.size_bytes = row.ColumnInt(4);
  m.input_shapes = row.ColumnText(5);
  m.analysis = row.ColumnBlob(6);
  m.created_at = row.ColumnText(7);
  return m;
}

// Runs a SELECT of kModelColumns and collects the rows.
absl::StatusOr<std::vector<ModelRecord>> Collect(Statement& stmt) { return common::CollectRows(stmt, ModelFromRow); }

absl::Status NoSuchModel(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("no model '", id, "'; 'squeeze models list' shows your models"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<StateStore>> StateStore::Open(const std::string& path) {
  absl::StatusOr<Database> db = Database::Open(path);
  if (!db.ok()) return db.status();
  std::unique_ptr<StateStore> store(new StateStore(*std::move(db)));
  absl::MutexLock lock(&store->mutex_);
  absl::Status status = store->Migrate();
  if (!status.ok()) return status;
  return store;
}

absl::Status StateStore::Migrate() {
  absl::StatusOr<int> version = common::CheckSchemaVersion(db_, kStateSchemaVersion, "state database");
  if (!version.ok()) return version.status();
  for (int v = *version; v < kStateSchemaVersion; ++v) {
    absl::StatusOr<Transaction> txn = Transaction::Begin(db_);
    if (!txn.ok()) return txn.status();
    absl::Status status = db_.Exec(kMigrations[v]);
    if (status.ok()) status = db_.Exec(absl::StrCat("PRAGMA user_version = ", v + 1));
    if (status.ok()) status = txn->Commit();
    if (!status.ok()) return absl::InternalError(absl::StrCat("state.db migration ", v + 1, ": ", status.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelRecord> StateStore::InsertModel(ModelRecord record) {
  absl::MutexLock lock(&mutex_);
  record.id = absl::StrCat("m-", common::RandomHex(8));
  absl::StatusOr<Statement> stmt = db_.Prepare(
      absl::StrCat("INSERT INTO models (", kModelColumns,
                   ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, strftime('%Y-%m-%dT%H:%M:%SZ', 'now')) "
                   "RETURNING created_at"));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, record.id)
      .Bind(2, record.team)
      .Bind(3, record.name)
      .Bind(4, record.sha256)
      .Bind(5, record.size_bytes)
      .Bind(6, record.input_shapes)
      .BindBlob(7, record.analysis);
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  record.created_at = stmt->ColumnText(0);
  return record;
}

absl::StatusOr<std::optional<ModelRecord>> StateStore::FindModel(const std::string& team,
                                                                 const std::string& sha256,
                                                                 const std::string& input_shapes) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare(absl::StrCat(
      "SELECT ", kModelColumns, " FROM models WHERE team = ?1 AND sha256 = ?2 AND input_shapes = ?3 LIMIT 1"));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, team).Bind(2, sha256).Bind(3, input_shapes);
  absl::StatusOr<std::vector<ModelRecord>> rows = Collect(*stmt);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<ModelRecord>();
  return std::optional<ModelRecord>(std::move(rows->front()));
}

absl::StatusOr<ModelRecord> StateStore::GetModel(const std::string& team, const std::string& id) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt =
      db_.Prepare(absl::StrCat("SELECT ", kModelColumns, " FROM models WHERE team = ?1 AND id = ?2"));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, team).Bind(2, id);
  absl::StatusOr<std::vector<ModelRecord>> rows = Collect(*stmt);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return NoSuchModel(id);
  return std::move(rows->front());
}

absl::StatusOr<std::vector<ModelRecord>> StateStore::ListModels(const std::string& team) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare(
      absl::StrCat("SELECT ", kModelColumns, " FROM models WHERE team = ?1 ORDER BY created_at DESC, rowid DESC"));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, team);
  return Collect(*stmt);
}

absl::StatusOr<ModelRecord> StateStore::DeleteModel(const std::string& team, const std::string& id) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare(
      absl::StrCat("DELETE FROM models WHERE team = ?1 AND id = ?2 RETURNING ", kModelColumns));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, team).Bind(2, id);
  absl::StatusOr<std::vector<ModelRecord>> rows = Collect(*stmt);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return NoSuchModel(id);
  return std::move(rows->front());
}

absl::StatusOr<int64_t> StateStore::CountModelsWithBlob(const std::string& sha256) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare("SELECT count(*) FROM models WHERE sha256 = ?1");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, sha256);
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  return stmt->ColumnInt(0);
}

absl::Status StateStore::PutSensitivity(const std::string& model_sha256, const std::string& calibration_hash,
                                        const std::string& options_key, const std::string& report) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare(
      "INSERT OR REPLACE INTO sensitivities (model_sha256, calibration_hash, options_key, report) "
      "VALUES (?1, ?2, ?3, ?4)");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, model_sha256).Bind(2, calibration_hash).Bind(3, options_key).BindBlob(4, report);
  return stmt->Run();
}

absl::StatusOr<std::optional<std::string>> StateStore::GetSensitivity(const std::string& model_sha256,
                                                                      const std::string& calibration_hash,
                                                                      const std::string& options_key) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare(
      "SELECT report FROM sensitivities WHERE model_sha256 = ?1 AND calibration_hash = ?2 AND options_key = ?3");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, model_sha256).Bind(2, calibration_hash).Bind(3, options_key);
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>(stmt->ColumnBlob(0));
}

namespace {

constexpr char kJobColumns[] =
    "id, team, model_id, cache_key, state, phase, fraction, error, spec, result, created_at, started_at, "
    "finished_at";
constexpr int kJobRunning = 2;  // squeeze.v1.JOB_STATE_RUNNING; higher values are final

absl::StatusOr<std::vector<JobRecord>> CollectJobs(Statement& stmt) {
  return common::CollectRows(stmt, [](const Statement& row) {
    JobRecord j;
    j.id = row.ColumnText(0);
    j.team = row.ColumnText(1);
    j.model_id = row.ColumnText(2);
    j.cache_key = row.ColumnText(3);
    j.state = static_cast<int>(row.ColumnInt(4));
    j.phase = static_cast<int>(row.ColumnInt(5));
    j.fraction = row.ColumnDouble(6);
    j.error = row.ColumnText(7);
    j.spec = row.ColumnBlob(8);
    j.result = row.ColumnBlob(9);
    j.created_at = row.ColumnText(10);
    j.started_at = row.ColumnText(11);
    j.finished_at = row.ColumnText(12);
    return j;
  });
}

}  // namespace

absl::StatusOr<JobRecord> StateStore::InsertJob(JobRecord record) {
  absl::MutexLock lock(&mutex_);
  record.id = absl::StrCat("s-", common::RandomHex(8));
  absl::StatusOr<Statement> stmt = db_.Prepare(
      "INSERT INTO jobs (id, team, model_id, cache_key, state, phase, fraction, error, spec, result, created_at, "
      "started_at, finished_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
      "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?11, ?12) RETURNING created_at");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, record.id)
      .Bind(2, record.team)
      .Bind(3, record.model_id)
      .Bind(4, record.cache_key)
      .Bind(5, record.state)
      .Bind(6, record.phase)
      .Bind(7, record.fraction)
      .Bind(8, record.error)
      .BindBlob(9, record.spec)
      .BindBlob(10, record.result)
      .Bind(11, record.started_at)
      .Bind(12, record.finished_at);
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  record.created_at = stmt->ColumnText(0);
  return record;
}

absl::Status StateStore::UpdateJob(const JobRecord& r) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare(
      "UPDATE jobs SET state = ?2, phase = ?3, fraction = ?4, error = ?5, result = ?6, "
      "started_at = CASE WHEN started_at = '' AND ?2 >= ?7 THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
      "ELSE started_at END, "
      "finished_at = CASE WHEN ?2 > ?7 THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now') ELSE '' END "
      "WHERE id = ?1");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, r.id).Bind(2, r.state).Bind(3, r.phase).Bind(4, r.fraction).Bind(5, r.error).BindBlob(6, r.result)
      .Bind(7, kJobRunning);
  absl::Status status = stmt->Run();
  if (!status.ok()) return status;
  if (db_.Changes() == 0) return absl::NotFoundError(absl::StrCat("no search job '", r.id, "'"));
  return absl::OkStatus();
}

absl::StatusOr<JobRecord> StateStore::GetJob(const std::string& team, const std::string& id) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt =
      db_.Prepare(absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE team = ?1 AND id = ?2"));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, team).Bind(2, id);
  absl::StatusOr<std::vector<JobRecord>> rows = CollectJobs(*stmt);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) {
    return absl::NotFoundError(absl::StrCat("no search job '", id, "'; 'squeeze search list' shows your searches"));
  }
  return std::move(rows->front());
}

absl::StatusOr<std::vector<JobRecord>> StateStore::ListJobs(const std::string& team, int limit) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare(absl::StrCat(
      "SELECT ", kJobColumns, " FROM jobs WHERE team = ?1 ORDER BY created_at DESC, rowid DESC LIMIT ?2"));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, team).Bind(2, limit);
  return CollectJobs(*stmt);
}

absl::StatusOr<std::optional<JobRecord>> StateStore::FindFinishedJob(const std::string& team,
                                                                     const std::string& cache_key) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare(absl::StrCat(
      "SELECT ", kJobColumns,
      " FROM jobs WHERE team = ?1 AND cache_key = ?2 AND state = 3 ORDER BY created_at DESC LIMIT 1"));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, team).Bind(2, cache_key);
  absl::StatusOr<std::vector<JobRecord>> rows = CollectJobs(*stmt);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<JobRecord>();
  return std::optional<JobRecord>(std::move(rows->front()));
}

absl::StatusOr<std::vector<JobRecord>> StateStore::UnfinishedJobs() {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare(
      absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE state <= ?1 ORDER BY created_at, rowid"));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, kJobRunning);
  return CollectJobs(*stmt);
}

namespace {

constexpr char kExportColumns[] = "team, job_id, device_id, candidate, cache_key, blob_sha256, report, created_at";

ExportRecord ExportFromRow(const Statement& row) {
  ExportRecord e;
  e.team = row.ColumnText(0);
  e.job_id = row.ColumnText(1);
  e.device_id = row.ColumnText(2);
  e.candidate = static_cast<int>(row.ColumnInt(3));
  e.cache_key = row.ColumnText(4);
  e.blob_sha256 = row.ColumnText(5);
  e.report = row.ColumnBlob(6);
  e.created_at = row.ColumnText(7);
  return e;
}

}  // namespace

absl::Status StateStore::PutExport(const ExportRecord& record) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare(
      "INSERT OR REPLACE INTO exports (team, job_id, device_id, candidate, cache_key, blob_sha256, report) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, record.team)
      .Bind(2, record.job_id)
      .Bind(3, record.device_id)
      .Bind(4, static_cast<int64_t>(record.candidate))
      .Bind(5, record.cache_key)
      .Bind(6, record.blob_sha256)
      .BindBlob(7, record.report);
  return stmt->Run();
}

absl::StatusOr<std::optional<ExportRecord>> StateStore::FindExport(const std::string& team,
                                                                   const std::string& cache_key) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare(absl::StrCat(
      "SELECT ", kExportColumns, " FROM exports WHERE team = ?1 AND cache_key = ?2 ORDER BY created_at DESC LIMIT 1"));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, team).Bind(2, cache_key);
  absl::StatusOr<std::vector<ExportRecord>> rows = common::CollectRows(*stmt, ExportFromRow);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<ExportRecord>();
  return std::optional<ExportRecord>(std::move(rows->front()));
}

absl::StatusOr<std::vector<ExportRecord>> StateStore::ListExports(const std::string& team, const std::string& job_id) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare(absl::StrCat(
      "SELECT ", kExportColumns, " FROM exports WHERE team = ?1 AND job_id = ?2 ORDER BY created_at, rowid"));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, team).Bind(2, job_id);
  return common::CollectRows(*stmt, ExportFromRow);
}

absl::StatusOr<std::set<std::string>> StateStore::ReferencedBlobs() {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt =
      db_.Prepare("SELECT sha256 FROM models UNION SELECT blob_sha256 FROM exports");
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<std::vector<std::string>> rows =
      common::CollectRows(*stmt, [](const Statement& row) { return row.ColumnText(0); });
  if (!rows.ok()) return rows.status();
  return std::set<std::string>(rows->begin(), rows->end());
}

}  // namespace squeeze::server
