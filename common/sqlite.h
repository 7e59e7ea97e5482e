// Small RAII types over SQLite: every failure comes back as an absl::Status carrying
// sqlite3_errmsg. Domain stores (ProfileStore, the server's state store) sit on top; no SQL
// lives anywhere else.
//
// Thread safety: a Database is one connection; callers serialize use of it (the stores hold a
// mutex). Statements belong to the connection that prepared it and must not outlive it.
#ifndef SQUEEZE_COMMON_SQLITE_H_
#define SQUEEZE_COMMON_SQLITE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3;
struct sqlite3_stmt;

namespace squeeze::common {

// A prepared statement. Bind parameters are 1-based, columns 0-based, as in SQLite.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, int value) { return Bind(index, static_cast<int64_t>(value)); }
  Statement& Bind(int index, double value);
  Statement& Bind(int index, absl::string_view text);
  Statement& Bind(int index, const char* text) { return Bind(index, absl::string_view(text)); }
  Statement& Bind(int index, const std::string& text) { return Bind(index, absl::string_view(text)); }
  Statement& BindBlob(int index, absl::string_view bytes);
  Statement& BindNull(int index);

  // Advances to the next row: true when a row is available, false when done. A bind that failed
  // earlier is reported here.
  absl::StatusOr<bool> Step();
  // Steps once and expects no row (INSERT, UPDATE, DELETE, DDL).
  absl::Status Run();
  // Resets to run again; bindings are cleared.
  void Reset();

  int64_t ColumnInt(int column) const;
  double ColumnDouble(int column) const;
  std::string ColumnText(int column) const;
  std::string ColumnBlob(int column) const;
  bool ColumnIsNull(int column) const;
  // The same by the result column's name (as the SELECT names it, or its alias). A name the
  // statement has no column for is a programming error: it aborts, naming both.
  int64_t ColumnInt(absl::string_view name) const { return ColumnInt(ColumnIndex(name)); }
  double ColumnDouble(absl::string_view name) const { return ColumnDouble(ColumnIndex(name)); }
  std::string ColumnText(absl::string_view name) const { return ColumnText(ColumnIndex(name)); }
  std::string ColumnBlob(absl::string_view name) const { return ColumnBlob(ColumnIndex(name)); }
  int ColumnIndex(absl::string_view name) const;

 private:
  friend class Database;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  void NoteBind(int rc);

  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  absl::Status bind_status_;
};

struct OpenOptions {
  bool create = true;  // create the file when missing
  bool read_only = false;
  bool wal = true;  // journal_mode=WAL, synchronous=NORMAL (durable across process crashes)
  int busy_timeout_ms = 5000;
};

class Database {
 public:
  // Opens (or creates) the database at `path` with foreign keys on. Fails with NotFound when the
  // file is missing and !create, FailedPrecondition when it cannot be opened or is not a database.
  static absl::StatusOr<Database> Open(const std::string& path, const OpenOptions& options = {});

  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  // Runs one or more ';'-separated statements that return no rows.
  absl::Status Exec(absl::string_view sql);
  absl::StatusOr<Statement> Prepare(absl::string_view sql);

  absl::StatusOr<int> UserVersion();
  int64_t LastInsertRowId() const;
  int Changes() const;
  const std::string& path() const { return path_; }

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_ = nullptr;
  std::string path_;
};

// BEGIN IMMEDIATE on construction; rolls back on destruction unless Commit() succeeded.
class Transaction {
 public:
  static absl::StatusOr<Transaction> Begin(Database& db);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();
  absl::Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
};

// Steps `stmt` to the end, mapping every row with `row_to_value(const Statement&)`.
template <typename RowFn>
auto CollectRows(Statement& stmt, RowFn row_to_value) -> absl::StatusOr<std::vector<decltype(row_to_value(stmt))>> {
  std::vector<decltype(row_to_value(stmt))> out;
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    out.push_back(row_to_value(stmt));
  }
}

// Prepares `sql` on `db`, binds `args` to ?1, ?2, ... in order, and hands the statement to
// `collect` (CollectRows with a row mapper, say): a query in one call.
template <typename Collect, typename... Args>
auto Query(Database& db, absl::string_view sql, Collect collect, const Args&... args)
    -> decltype(collect(std::declval<Statement&>())) {
  absl::StatusOr<Statement> stmt = db.Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  int index = 0;
  (stmt->Bind(++index, args), ...);
  return collect(*stmt);
}

// Runs a write ending in `RETURNING column` to its end and returns that column of its one row. A
// write outside a transaction commits only when its statement ends, so a commit that fails (a full
// disk) fails here: nothing is reported written that was not stored.
absl::StatusOr<std::string> ReturnedText(Statement& stmt);

// The database's schema version (PRAGMA user_version) when this build can use it: FailedPrecondition
// when it is newer than `known_version`, or when it is 0 but the file already holds tables (it is
// someone else's database). `what` names the kind of database in the messages.
absl::StatusOr<int> CheckSchemaVersion(Database& db, int known_version, absl::string_view what);

// The most specific absl code for an SQLite result code (constraint violations are
// InvalidArgument or AlreadyExists, a busy database Unavailable, a full disk ResourceExhausted).
absl::Status SqliteStatus(int rc, sqlite3* db, absl::string_view context);

}  // namespace squeeze::common

#endif  // SQUEEZE_COMMON_SQLITE_H_
