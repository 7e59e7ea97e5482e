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
absl::StatusOr<std::vector<ModelRecord>> Collect(Statement& stmt) {
  std::vector<ModelRecord> out;
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    out.push_back(ModelFromRow(stmt));
  }
}

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
  absl::StatusOr<int> version = db_.UserVersion();
  if (!version.ok()) return version.status();
  if (*version > kStateSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(db_.path(), " has state schema version ", *version,
                                                      " but this build knows up to ", kStateSchemaVersion,
                                                      ": upgrade squeezed"));
  }
  if (*version == 0) {
    absl::StatusOr<Statement> tables = db_.Prepare("SELECT count(*) FROM sqlite_schema");
    if (!tables.ok()) return tables.status();
    absl::StatusOr<bool> row = tables->Step();
    if (!row.ok()) return row.status();
    if (tables->ColumnInt(0) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(db_.path(), " holds tables but is not a Squeeze state database"));
    }
  }
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

absl::StatusOr<std::set<std::string>> StateStore::ReferencedBlobs() {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare("SELECT DISTINCT sha256 FROM models");
  if (!stmt.ok()) return stmt.status();
  std::set<std::string> out;
  while (true) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    out.insert(stmt->ColumnText(0));
  }
}

}  // namespace squeeze::server
