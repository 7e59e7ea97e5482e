#include "server/state_store.h"

#include <array>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/sha256.h"

namespace squeeze::server {
namespace {

using common::Database;
using common::Statement;
using common::Transaction;

constexpr char kModelColumns[] = "id, team, name, sha256, size_bytes, input_shapes, analysis, created_at";

ModelRecord ModelFromRow(const Statement& row) {
  ModelRecord m;
  m.id = row.ColumnText("id");
  m.team = row.ColumnText("team");
  m.name = row.ColumnText("name");
  m.sha256 = row.ColumnText("sha256");
  m.size_bytes = row.ColumnInt("size_bytes");
  m.input_shapes = row.ColumnText("input_shapes");
  m.analysis = row.ColumnBlob("analysis");
  m.created_at = row.ColumnText("created_at");
  return m;
}

// Runs a SELECT of kModelColumns and collects the rows.
absl::StatusOr<std::vector<ModelRecord>> Collect(Statement& stmt) { return common::CollectRows(stmt, ModelFromRow); }

// Ids are the server's own (or a key's): a value that cannot be one is refused before any lookup,
// and never echoed whole.
constexpr size_t kMaxIdBytes = 128;

absl::Status CheckId(absl::string_view what, const std::string& id) {
  bool printable = !id.empty() && id.size() <= kMaxIdBytes;
  for (char c : id) printable = printable && c > 0x20 && c < 0x7f && c != '\'' && c != '"' && c != '\\';
  if (printable) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, " id \"", common::Printable(id, 48),
                                                 "\" is not one: ids are 1 to ", kMaxIdBytes,
                                                 " printable characters without spaces or quotes"));
}

absl::Status NoSuchModel(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("no model '", id, "'; 'squeeze models list' shows your models"));
}

constexpr char kKeyColumns[] = "id, team, role, prefix, created_at, revoked_at";

absl::StatusOr<std::vector<ApiKeyRecord>> CollectKeys(Statement& stmt) {
  return common::CollectRows(stmt, [](const Statement& row) {
    ApiKeyRecord k;
    k.id = row.ColumnText("id");
    k.team = row.ColumnText("team");
    k.role = row.ColumnInt("role") == static_cast<int>(Role::kAdmin) ? Role::kAdmin : Role::kMember;
    k.prefix = row.ColumnText("prefix");
    k.created_at = row.ColumnText("created_at");
    k.revoked_at = row.ColumnText("revoked_at");
    return k;
  });
}

// A single integer from a one-row query.
absl::StatusOr<int64_t> ScalarInt(Statement& stmt) {
  absl::StatusOr<bool> row = stmt.Step();
  if (!row.ok()) return row.status();
  return *row ? stmt.ColumnInt(0) : 0;
}

}  // namespace

absl::Status ValidateTeamName(const std::string& team) {
  bool ok = !team.empty() && team.size() <= 63 && team[0] != '-' && team[0] != '_';
  for (char c : team) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_');
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "team name '", team, "' is not 1-63 characters of a-z, 0-9, '-' and '_' starting with a letter or digit"));
  }
  return absl::OkStatus();
}

absl::StatusOr<NewApiKey> StateStore::CreateApiKey(const std::string& team, Role role) {
  if (absl::Status s = ValidateTeamName(team); !s.ok()) return s;
  NewApiKey out;
  // 256 random bits: a hash without salt or stretching is enough for keys nobody can guess.
  out.key = absl::StrCat("sqz_", common::RandomHex(32));
  out.record.id = absl::StrCat("k-", common::RandomHex(4));
  out.record.team = team;
  out.record.role = role;
  out.record.prefix = out.key.substr(0, 12);
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Transaction> txn = Transaction::Begin(db_);
  if (!txn.ok()) return txn.status();
  absl::StatusOr<Statement> team_stmt = db_.Prepare("INSERT OR IGNORE INTO teams (name) VALUES (?1)");
  if (!team_stmt.ok()) return team_stmt.status();
  team_stmt->Bind(1, team);
  if (absl::Status s = team_stmt->Run(); !s.ok()) return s;
  {
    // Scoped: the statement must be finished before the transaction commits.
    absl::StatusOr<Statement> stmt = db_.Prepare(
        "INSERT INTO api_keys (id, team, role, key_sha256, prefix) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING created_at");
    if (!stmt.ok()) return stmt.status();
    stmt->Bind(1, out.record.id)
        .Bind(2, team)
        .Bind(3, static_cast<int>(role))
        .Bind(4, common::Sha256Hex(out.key))
        .Bind(5, out.record.prefix);
    absl::StatusOr<std::string> returned = common::ReturnedText(*stmt);
    if (!returned.ok()) return returned.status();
    out.record.created_at = *std::move(returned);
  }
  if (absl::Status s = txn->Commit(); !s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<ApiKeyRecord>> StateStore::ListApiKeys() {
  absl::MutexLock lock(&mutex_);
  return common::Query(db_, absl::StrCat("SELECT ", kKeyColumns, " FROM api_keys ORDER BY created_at, rowid"),
                       CollectKeys);
}

absl::StatusOr<ApiKeyRecord> StateStore::RevokeApiKey(const std::string& id) {
  if (absl::Status s = CheckId("API key", id); !s.ok()) return s;
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<std::vector<ApiKeyRecord>> rows = common::Query(
      db_, absl::StrCat("SELECT ", kKeyColumns, " FROM api_keys WHERE id = ?1 OR (length(?1) >= 8 AND prefix = ?1)"),
      CollectKeys, id);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) {
    return absl::NotFoundError(absl::StrCat("no API key '", id, "'; 'squeezed keys list' shows them"));
  }
  if (rows->size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat("'", id, "' names more than one key; give its id (k-...)"));
  }
  ApiKeyRecord key = std::move(rows->front());
  if (!key.revoked_at.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("API key ", key.id, " was already revoked at ", key.revoked_at));
  }
  absl::StatusOr<Statement> stmt = db_.Prepare(
      "UPDATE api_keys SET revoked_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?1 RETURNING revoked_at");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, key.id);
  absl::StatusOr<std::string> returned = common::ReturnedText(*stmt);
  if (!returned.ok()) return returned.status();
  key.revoked_at = *std::move(returned);
  return key;
}

absl::StatusOr<ApiKeyRecord> StateStore::LookupApiKey(const std::string& key_sha256) {
  absl::MutexLock lock(&keys_mutex_);
  absl::StatusOr<Statement> stmt = keys_db_.Prepare(
      absl::StrCat("SELECT ", kKeyColumns, " FROM api_keys WHERE key_sha256 = ?1 AND revoked_at = ''"));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, key_sha256);
  absl::StatusOr<std::vector<ApiKeyRecord>> rows = CollectKeys(*stmt);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return absl::NotFoundError("no such key");
  return std::move(rows->front());
}

absl::StatusOr<int64_t> StateStore::CountApiKeys() {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare("SELECT count(*) FROM api_keys");
  if (!stmt.ok()) return stmt.status();
  return ScalarInt(*stmt);
}

absl::StatusOr<std::unique_ptr<StateStore>> StateStore::Open(const std::string& path) {
  absl::StatusOr<Database> db = Database::Open(path);
  if (!db.ok()) return db.status();
  // SQLite notices the migration's schema change on the second connection by itself.
  absl::StatusOr<Database> keys_db = Database::Open(path);
  if (!keys_db.ok()) return keys_db.status();
  std::unique_ptr<StateStore> store(new StateStore(*std::move(db), *std::move(keys_db)));
  absl::MutexLock lock(&store->mutex_);
  if (absl::Status status = store->Migrate(); !status.ok()) return status;
  return store;
}

absl::Status StateStore::Migrate() {
  absl::StatusOr<int> version = common::CheckSchemaVersion(db_, kStateSchemaVersion, "state database");
  if (!version.ok()) return version.status();
  for (int v = *version; v < kStateSchemaVersion; ++v) {
    absl::StatusOr<Transaction> txn = Transaction::Begin(db_);
    if (!txn.ok()) return txn.status();
    const absl::string_view sql = StateMigrationSql(v + 1);
    if (sql.empty())
      return absl::InternalError(absl::StrCat("this build has no state.db migration to version ", v + 1));
    absl::Status status = db_.Exec(sql);
    if (status.ok()) status = db_.Exec(absl::StrCat("PRAGMA user_version = ", v + 1));
    if (status.ok()) status = txn->Commit();
    if (!status.ok()) return absl::InternalError(absl::StrCat("state.db migration ", v + 1, ": ", status.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelRecord> StateStore::InsertModel(ModelRecord record, const TeamQuota& quota) {
  absl::MutexLock lock(&mutex_);
  if (quota.max_stored_bytes > 0) {
    absl::StatusOr<Statement> sum = db_.Prepare("SELECT coalesce(sum(size_bytes), 0) FROM models WHERE team = ?1");
    if (!sum.ok()) return sum.status();
    sum->Bind(1, record.team);
    absl::StatusOr<int64_t> stored = ScalarInt(*sum);
    if (!stored.ok()) return stored.status();
    if (*stored + record.size_bytes > quota.max_stored_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("team '", record.team, "' stores ", *stored, " bytes of models; this one (", record.size_bytes,
                       " bytes) would pass the team's quota of ", quota.max_stored_bytes,
                       " stored bytes (squeezed --quota-stored-bytes): delete a model first"));
    }
  }
  record.id = absl::StrCat("m-", common::RandomHex(8));
  absl::StatusOr<Statement> stmt =
      db_.Prepare(absl::StrCat("INSERT INTO models (", kModelColumns,
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
  absl::StatusOr<std::string> returned = common::ReturnedText(*stmt);
  if (!returned.ok()) return returned.status();
  record.created_at = *std::move(returned);
  return record;
}

absl::StatusOr<std::optional<ModelRecord>> StateStore::FindModel(const std::string& team, const std::string& sha256,
                                                                 const std::string& input_shapes) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<std::vector<ModelRecord>> rows =
      common::Query(db_,
                    absl::StrCat("SELECT ", kModelColumns,
                                 " FROM models WHERE team = ?1 AND sha256 = ?2 AND input_shapes = ?3 LIMIT 1"),
                    Collect, team, sha256, input_shapes);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<ModelRecord>();
  return std::optional<ModelRecord>(std::move(rows->front()));
}

absl::StatusOr<ModelRecord> StateStore::GetModel(const std::string& team, const std::string& id) {
  if (absl::Status s = CheckId("model", id); !s.ok()) return s;
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<std::vector<ModelRecord>> rows = common::Query(
      db_, absl::StrCat("SELECT ", kModelColumns, " FROM models WHERE team = ?1 AND id = ?2"), Collect, team, id);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return NoSuchModel(id);
  return std::move(rows->front());
}

absl::StatusOr<std::vector<ModelRecord>> StateStore::ListModels(const std::string& team) {
  absl::MutexLock lock(&mutex_);
  return common::Query(
      db_, absl::StrCat("SELECT ", kModelColumns, " FROM models WHERE team = ?1 ORDER BY created_at DESC, rowid DESC"),
      Collect, team);
}

absl::StatusOr<ModelRecord> StateStore::DeleteModel(const std::string& team, const std::string& id) {
  if (absl::Status s = CheckId("model", id); !s.ok()) return s;
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<std::vector<ModelRecord>> rows = common::Query(
      db_, absl::StrCat("DELETE FROM models WHERE team = ?1 AND id = ?2 RETURNING ", kModelColumns), Collect, team, id);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return NoSuchModel(id);
  return std::move(rows->front());
}

absl::StatusOr<int64_t> StateStore::TeamStoredBytes(const std::string& team) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare("SELECT coalesce(sum(size_bytes), 0) FROM models WHERE team = ?1");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, team);
  return ScalarInt(*stmt);
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
    "finished_at, from_cache, attempts";
// Job states as stored (migration 0007), indexed by their squeeze.v1.JobState number.
constexpr std::array<absl::string_view, 6> kJobStateNames = {"",          "queued", "running",
                                                             "succeeded", "failed", "cancelled"};
constexpr int kJobRunning = 2;  // squeeze.v1.JOB_STATE_RUNNING; higher numbers are final

// Phases as stored (migration 0007), indexed by their squeeze.v1.Phase number.
constexpr std::array<absl::string_view, 8> kPhaseNames = {
    "", "queued", "analyzing", "measuring sensitivity", "building the option table", "searching", "verifying", "done"};

template <size_t N>
absl::string_view NameOf(const std::array<absl::string_view, N>& names, int value) {
  return value > 0 && static_cast<size_t>(value) < names.size() ? names[static_cast<size_t>(value)] : "";
}

template <size_t N>
int ValueOf(const std::array<absl::string_view, N>& names, absl::string_view name) {
  for (size_t i = 1; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<int>(i);
  }
  return 0;  // the table's CHECKs keep anything else out
}

absl::string_view JobStateName(int state) { return NameOf(kJobStateNames, state); }
int JobStateFromName(absl::string_view name) { return ValueOf(kJobStateNames, name); }

absl::StatusOr<std::vector<JobRecord>> CollectJobs(Statement& stmt) {
  return common::CollectRows(stmt, [](const Statement& row) {
    JobRecord j;
    j.id = row.ColumnText("id");
    j.team = row.ColumnText("team");
    j.model_id = row.ColumnText("model_id");
    j.cache_key = row.ColumnText("cache_key");
    j.state = JobStateFromName(row.ColumnText("state"));
    j.phase = ValueOf(kPhaseNames, row.ColumnText("phase"));
    j.fraction = row.ColumnDouble("fraction");
    j.error = row.ColumnText("error");
    j.spec = row.ColumnBlob("spec");
    j.result = row.ColumnBlob("result");
    j.created_at = row.ColumnText("created_at");
    j.started_at = row.ColumnText("started_at");
    j.finished_at = row.ColumnText("finished_at");
    j.from_cache = row.ColumnInt("from_cache") != 0;
    j.attempts = static_cast<int>(row.ColumnInt("attempts"));
    return j;
  });
}

// A state and phase this build can store: InvalidArgument for any other number.
absl::Status CheckJobState(const JobRecord& r) {
  if (JobStateName(r.state).empty()) {
    return absl::InvalidArgumentError(absl::StrCat("search job '", r.id, "': ", r.state, " is no job state"));
  }
  if (NameOf(kPhaseNames, r.phase).empty()) {
    return absl::InvalidArgumentError(absl::StrCat("search job '", r.id, "': ", r.phase, " is no job phase"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<JobRecord> StateStore::InsertJob(JobRecord record, const TeamQuota& quota) {
  if (absl::Status s = CheckJobState(record); !s.ok()) return s;
  absl::MutexLock lock(&mutex_);
  if (!record.from_cache && quota.max_concurrent_searches > 0) {
    absl::StatusOr<Statement> count =
        db_.Prepare("SELECT count(*) FROM jobs WHERE team = ?1 AND state IN ('queued', 'running') AND from_cache = 0");
    if (!count.ok()) return count.status();
    count->Bind(1, record.team);
    absl::StatusOr<int64_t> active = ScalarInt(*count);
    if (!active.ok()) return active.status();
    if (*active >= quota.max_concurrent_searches) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "team '", record.team, "' has ", *active, " searches queued or running, its quota of ",
          quota.max_concurrent_searches,
          " concurrent searches (squeezed --quota-concurrent-searches): wait for one to end or cancel one"));
    }
  }
  if (!record.from_cache && quota.max_searches_per_hour > 0) {
    absl::StatusOr<Statement> count = db_.Prepare(
        "SELECT count(*) FROM jobs WHERE team = ?1 AND from_cache = 0 AND "
        "created_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 hour')");
    if (!count.ok()) return count.status();
    count->Bind(1, record.team);
    absl::StatusOr<int64_t> recent = ScalarInt(*count);
    if (!recent.ok()) return recent.status();
    if (*recent >= quota.max_searches_per_hour) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "team '", record.team, "' started ", *recent, " searches in the last hour, its quota of ",
          quota.max_searches_per_hour,
          " searches per hour (squeezed --quota-searches-per-hour): try again later; repeats of a finished "
          "search are answered from its stored result and cost nothing"));
    }
  }
  record.id = absl::StrCat("s-", common::RandomHex(8));
  absl::StatusOr<Statement> stmt = db_.Prepare(
      "INSERT INTO jobs (id, team, model_id, cache_key, state, phase, fraction, error, spec, result, created_at, "
      "started_at, finished_at, from_cache, attempts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
      "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?11, ?12, ?13, ?14) RETURNING created_at");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, record.id)
      .Bind(2, record.team)
      .Bind(3, record.model_id)
      .Bind(4, record.cache_key)
      .Bind(5, JobStateName(record.state))
      .Bind(6, NameOf(kPhaseNames, record.phase))
      .Bind(7, record.fraction)
      .Bind(8, record.error)
      .BindBlob(9, record.spec)
      .BindBlob(10, record.result)
      .Bind(11, record.started_at)
      .Bind(12, record.finished_at)
      .Bind(13, record.from_cache ? 1 : 0)
      .Bind(14, record.attempts);
  absl::StatusOr<std::string> returned = common::ReturnedText(*stmt);
  if (!returned.ok()) return returned.status();
  record.created_at = *std::move(returned);
  return record;
}

absl::Status StateStore::UpdateJob(const JobRecord& r) {
  if (absl::Status s = CheckJobState(r); !s.ok()) return s;
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare(
      "UPDATE jobs SET state = ?2, phase = ?3, fraction = ?4, error = ?5, result = ?6, attempts = ?8, "
      "started_at = CASE WHEN started_at = '' AND ?2 <> 'queued' THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
      "ELSE started_at END, "
      "finished_at = CASE WHEN ?7 THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now') ELSE '' END "
      "WHERE id = ?1");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, r.id)
      .Bind(2, JobStateName(r.state))
      .Bind(3, NameOf(kPhaseNames, r.phase))
      .Bind(4, r.fraction)
      .Bind(5, r.error)
      .BindBlob(6, r.result)
      .Bind(7, r.state > kJobRunning ? 1 : 0)
      .Bind(8, r.attempts);
  absl::Status status = stmt->Run();
  if (!status.ok()) return status;
  if (db_.Changes() == 0) return absl::NotFoundError(absl::StrCat("no search job '", r.id, "'"));
  return absl::OkStatus();
}

absl::StatusOr<JobRecord> StateStore::GetJob(const std::string& team, const std::string& id) {
  if (absl::Status s = CheckId("search", id); !s.ok()) return s;
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<std::vector<JobRecord>> rows = common::Query(
      db_, absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE team = ?1 AND id = ?2"), CollectJobs, team, id);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) {
    return absl::NotFoundError(absl::StrCat("no search job '", id, "'; 'squeeze search list' shows your searches"));
  }
  return std::move(rows->front());
}

absl::StatusOr<std::vector<JobRecord>> StateStore::ListJobs(const std::string& team, int limit) {
  absl::MutexLock lock(&mutex_);
  return common::Query(
      db_,
      absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE team = ?1 ORDER BY created_at DESC, rowid DESC LIMIT ?2"),
      CollectJobs, team, limit);
}

absl::StatusOr<std::optional<JobRecord>> StateStore::FindFinishedJob(const std::string& team,
                                                                     const std::string& cache_key) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<std::vector<JobRecord>> rows = common::Query(
      db_,
      absl::StrCat(
          "SELECT ", kJobColumns,
          " FROM jobs WHERE team = ?1 AND cache_key = ?2 AND state = 'succeeded' ORDER BY created_at DESC LIMIT 1"),
      CollectJobs, team, cache_key);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<JobRecord>();
  return std::optional<JobRecord>(std::move(rows->front()));
}

absl::StatusOr<std::vector<JobRecord>> StateStore::UnfinishedJobs() {
  absl::MutexLock lock(&mutex_);
  return common::Query(db_,
                       absl::StrCat("SELECT ", kJobColumns,
                                    " FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_at, rowid"),
                       CollectJobs);
}

absl::StatusOr<StateStore::JobCounts> StateStore::CountJobs() {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare("SELECT state, count(*) AS n FROM jobs GROUP BY state");
  if (!stmt.ok()) return stmt.status();
  JobCounts counts;
  while (true) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    const int64_t n = stmt->ColumnInt("n");
    switch (JobStateFromName(stmt->ColumnText("state"))) {
      case 1:
        counts.queued = n;
        break;
      case 2:
        counts.running = n;
        break;
      case 3:
        counts.succeeded = n;
        break;
      case 4:
        counts.failed = n;
        break;
      case 5:
        counts.cancelled = n;
        break;
      default:
        break;
    }
  }
  return counts;
}

namespace {

constexpr char kExportColumns[] = "team, job_id, device_id, candidate, cache_key, blob_sha256, report, created_at";

ExportRecord ExportFromRow(const Statement& row) {
  ExportRecord e;
  e.team = row.ColumnText("team");
  e.job_id = row.ColumnText("job_id");
  e.device_id = row.ColumnText("device_id");
  e.candidate = static_cast<int>(row.ColumnInt("candidate"));
  e.cache_key = row.ColumnText("cache_key");
  e.blob_sha256 = row.ColumnText("blob_sha256");
  e.report = row.ColumnBlob("report");
  e.created_at = row.ColumnText("created_at");
  return e;
}

absl::StatusOr<std::vector<ExportRecord>> CollectExports(Statement& stmt) {
  return common::CollectRows(stmt, ExportFromRow);
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
  absl::StatusOr<std::vector<ExportRecord>> rows =
      common::Query(db_,
                    absl::StrCat("SELECT ", kExportColumns,
                                 " FROM exports WHERE team = ?1 AND cache_key = ?2 ORDER BY created_at DESC LIMIT 1"),
                    CollectExports, team, cache_key);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<ExportRecord>();
  return std::optional<ExportRecord>(std::move(rows->front()));
}

absl::StatusOr<std::vector<ExportRecord>> StateStore::ListExports(const std::string& team, const std::string& job_id) {
  absl::MutexLock lock(&mutex_);
  return common::Query(db_,
                       absl::StrCat("SELECT ", kExportColumns,
                                    " FROM exports WHERE team = ?1 AND job_id = ?2 ORDER BY created_at, rowid"),
                       CollectExports, team, job_id);
}

absl::StatusOr<std::set<std::string>> StateStore::ReferencedBlobs() {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare("SELECT sha256 FROM models UNION SELECT blob_sha256 FROM exports");
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<std::vector<std::string>> rows =
      common::CollectRows(*stmt, [](const Statement& row) { return row.ColumnText(0); });
  if (!rows.ok()) return rows.status();
  return std::set<std::string>(rows->begin(), rows->end());
}

}  // namespace squeeze::server
