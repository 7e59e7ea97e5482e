#include "common/sqlite.h"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace squeeze::common {

absl::Status SqliteStatus(int rc, sqlite3* db, absl::string_view context) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return absl::OkStatus();
  std::string message = absl::StrCat(context, ": ", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
        return absl::AlreadyExistsError(message);
      }
      return absl::InvalidArgumentError(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(message);
    case SQLITE_FULL: {
      const char* file = db ? sqlite3_db_filename(db, "main") : nullptr;
      return absl::ResourceExhaustedError(absl::StrCat("the disk holding ", file && *file ? file : "the database",
                                                       " is full, so nothing was written; free "
                                                       "space on it (or ask the server's operator to) and try again (",
                                                       message, ")"));
    }
    case SQLITE_CANTOPEN:
    case SQLITE_NOTADB:
    case SQLITE_READONLY:
    case SQLITE_CORRUPT:
      return absl::FailedPreconditionError(message);
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
      return absl::InternalError(message);
    default:
      return absl::InternalError(message);
  }
}

Statement::Statement(Statement&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      stmt_(std::exchange(other.stmt_, nullptr)),
      bind_status_(std::move(other.bind_status_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    if (stmt_) sqlite3_finalize(stmt_);
    db_ = std::exchange(other.db_, nullptr);
    stmt_ = std::exchange(other.stmt_, nullptr);
    bind_status_ = std::move(other.bind_status_);
  }
  return *this;
}

Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

void Statement::NoteBind(int rc) {
  if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = SqliteStatus(rc, db_, "bind");
}

Statement& Statement::Bind(int index, int64_t value) {
  NoteBind(sqlite3_bind_int64(stmt_, index, value));
  return *this;
}

Statement& Statement::Bind(int index, double value) {
  NoteBind(sqlite3_bind_double(stmt_, index, value));
  return *this;
}

Statement& Statement::Bind(int index, absl::string_view text) {
  NoteBind(sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  return *this;
}

Statement& Statement::BindBlob(int index, absl::string_view bytes) {
  NoteBind(sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT));
  return *this;
}

Statement& Statement::BindNull(int index) {
  NoteBind(sqlite3_bind_null(stmt_, index));
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (!bind_status_.ok()) return bind_status_;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  // sqlite3_step returns the extended code only through sqlite3_extended_errcode.
  return SqliteStatus(sqlite3_extended_errcode(db_), db_, sqlite3_sql(stmt_));
}

absl::Status Statement::Run() {
  absl::StatusOr<bool> row = Step();
  if (!row.ok()) return row.status();
  if (*row) return absl::InternalError(absl::StrCat("statement returned rows: ", sqlite3_sql(stmt_)));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReturnedText(Statement& stmt) {
  absl::StatusOr<std::vector<std::string>> rows =
      CollectRows(stmt, [](const Statement& row) { return row.ColumnText(0); });
  if (!rows.ok()) return rows.status();
  if (rows->size() != 1) return absl::InternalError(absl::StrCat("a write returned ", rows->size(), " rows, not 1"));
  return std::move(rows->front());
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_status_ = absl::OkStatus();
}

int64_t Statement::ColumnInt(int column) const { return sqlite3_column_int64(stmt_, column); }
double Statement::ColumnDouble(int column) const { return sqlite3_column_double(stmt_, column); }

std::string Statement::ColumnText(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (!text) return {};
  return std::string(reinterpret_cast<const char*>(text), sqlite3_column_bytes(stmt_, column));
}

std::string Statement::ColumnBlob(int column) const {
  const void* blob = sqlite3_column_blob(stmt_, column);
  if (!blob) return {};
  return std::string(static_cast<const char*>(blob), sqlite3_column_bytes(stmt_, column));
}

bool Statement::ColumnIsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

int Statement::ColumnIndex(absl::string_view name) const {
  const int n = sqlite3_column_count(stmt_);
  for (int i = 0; i < n; ++i) {
    const char* column = sqlite3_column_name(stmt_, i);
    if (column != nullptr && name == column) return i;
  }
  const char* sql = sqlite3_sql(stmt_);
  std::fprintf(stderr, "squeeze: internal error: no column '%.*s' in: %s\n", static_cast<int>(name.size()), name.data(),
               sql != nullptr ? sql : "(no statement)");
  std::abort();
}

absl::StatusOr<Database> Database::Open(const std::string& path, const OpenOptions& options) {
  int flags = options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (options.create && !options.read_only) flags |= SQLITE_OPEN_CREATE;
  flags |= SQLITE_OPEN_NOMUTEX;
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Database db(raw, path);
  if (rc != SQLITE_OK) {
    if (rc == SQLITE_CANTOPEN && !options.create) {
      return absl::NotFoundError(absl::StrCat("no database at ", path));
    }
    return SqliteStatus(rc, raw, absl::StrCat("cannot open ", path));
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, options.busy_timeout_ms);
  // Reading the schema proves the file is a database before anything else touches it.
  absl::Status status = db.Exec("PRAGMA foreign_keys = ON; SELECT count(*) FROM sqlite_schema;");
  if (!status.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not a usable SQLite database (", status.message(), ")"));
  }
  if (options.wal && !options.read_only) {
    status = db.Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
    if (!status.ok()) return status;
  }
  return db;
}

Database::Database(Database&& other) noexcept : db_(std::exchange(other.db_, nullptr)), path_(std::move(other.path_)) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    if (db_) sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
  }
  return *this;
}

Database::~Database() {
  if (db_) sqlite3_close_v2(db_);
}

absl::Status Database::Exec(absl::string_view sql) {
  std::string owned(sql);
  char* error = nullptr;
  int rc = sqlite3_exec(db_, owned.c_str(), nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return absl::OkStatus();
  std::string message = error ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  absl::Status status = SqliteStatus(sqlite3_extended_errcode(db_), db_, "exec");
  return absl::Status(status.code(), absl::StrCat("exec: ", message));
}

absl::StatusOr<Statement> Database::Prepare(absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return SqliteStatus(rc, db_, absl::StrCat("prepare '", sql.substr(0, 80), "'"));
  }
  return Statement(db_, stmt);
}

absl::StatusOr<int> Database::UserVersion() {
  absl::StatusOr<Statement> stmt = Prepare("PRAGMA user_version");
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  return *row ? static_cast<int>(stmt->ColumnInt(0)) : 0;
}

int64_t Database::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }
int Database::Changes() const { return sqlite3_changes(db_); }

absl::StatusOr<int> CheckSchemaVersion(Database& db, int known_version, absl::string_view what) {
  absl::StatusOr<int> version = db.UserVersion();
  if (!version.ok()) return version.status();
  if (*version > known_version) {
    return absl::FailedPreconditionError(absl::StrCat(db.path(), " is a ", what, " of schema version ", *version,
                                                      " but this build knows up to ", known_version,
                                                      ": upgrade squeezed, or point it at another file"));
  }
  if (*version == 0) {
    absl::StatusOr<Statement> tables = db.Prepare("SELECT count(*) FROM sqlite_schema");
    if (!tables.ok()) return tables.status();
    absl::StatusOr<bool> row = tables->Step();
    if (!row.ok()) return row.status();
    if (tables->ColumnInt(0) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(db.path(), " already holds tables but is not a Squeeze ", what, " (user_version 0)"));
    }
  }
  return *version;
}

absl::StatusOr<Transaction> Transaction::Begin(Database& db) {
  absl::Status status = db.Exec("BEGIN IMMEDIATE");
  if (!status.ok()) return status;
  return Transaction(&db);
}

Transaction::Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Transaction::~Transaction() {
  if (db_) db_->Exec("ROLLBACK").IgnoreError();
}

absl::Status Transaction::Commit() {
  if (!db_) return absl::FailedPreconditionError("transaction already finished");
  absl::Status status = db_->Exec("COMMIT");
  if (status.ok()) db_ = nullptr;
  return status;
}

}  // namespace squeeze::common
