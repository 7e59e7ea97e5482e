#include "common/sqlite.h"

#include <catch2/catch.hpp>

#include "common/files.h"
#include "tests/testing/temp_dir.h"

namespace squeeze::common {
namespace {

TEST_CASE("Database opens and creates and reads back rows", "[sqlite]") {
  testing::TempDir dir;
  absl::StatusOr<Database> db = Database::Open(dir.File("a.db"));
  REQUIRE(db.ok());
  REQUIRE(db->Exec("CREATE TABLE t (k TEXT PRIMARY KEY, v REAL NOT NULL CHECK (v >= 0), b BLOB)").ok());
  absl::StatusOr<Statement> insert = db->Prepare("INSERT INTO t VALUES (?1, ?2, ?3)");
  REQUIRE(insert.ok());
  REQUIRE(insert->Bind(1, "x").Bind(2, 1.5).BindBlob(3, std::string("\0\1\2", 3)).Run().ok());

  absl::StatusOr<Statement> select = db->Prepare("SELECT k, v, b FROM t");
  REQUIRE(select.ok());
  absl::StatusOr<bool> row = select->Step();
  REQUIRE(row.ok());
  REQUIRE(*row);
  CHECK(select->ColumnText(0) == "x");
  CHECK(select->ColumnDouble(1) == 1.5);
  CHECK(select->ColumnBlob(2) == std::string("\0\1\2", 3));
  row = select->Step();
  REQUIRE(row.ok());
  CHECK_FALSE(*row);
}

TEST_CASE("SQLite failures map to specific status codes", "[sqlite]") {
  testing::TempDir dir;
  absl::StatusOr<Database> db = Database::Open(dir.File("a.db"));
  REQUIRE(db.ok());
  REQUIRE(db->Exec("CREATE TABLE t (k TEXT PRIMARY KEY, v REAL CHECK (v >= 0))").ok());
  REQUIRE(db->Exec("INSERT INTO t VALUES ('a', 1)").ok());

  SECTION("duplicate key is AlreadyExists") {
    absl::StatusOr<Statement> s = db->Prepare("INSERT INTO t VALUES ('a', 2)");
    REQUIRE(s.ok());
    CHECK(s->Run().code() == absl::StatusCode::kAlreadyExists);
  }
  SECTION("a CHECK violation is InvalidArgument") {
    absl::StatusOr<Statement> s = db->Prepare("INSERT INTO t VALUES ('b', -1)");
    REQUIRE(s.ok());
    CHECK(s->Run().code() == absl::StatusCode::kInvalidArgument);
  }
  SECTION("bad SQL fails to prepare with the message") {
    absl::StatusOr<Statement> s = db->Prepare("SELEC nonsense");
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().message().find("syntax error") != absl::string_view::npos);
  }
  SECTION("a missing file without create is NotFound") {
    OpenOptions options;
    options.create = false;
    CHECK(Database::Open(dir.File("missing.db"), options).status().code() == absl::StatusCode::kNotFound);
  }
}

TEST_CASE("A file that is not a database is FailedPrecondition", "[sqlite]") {
  testing::TempDir dir;
  REQUIRE(WriteFileAtomically(dir.File("junk.db"), std::string(4096, 'x')).ok());
  CHECK(Database::Open(dir.File("junk.db")).status().code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("A transaction rolls back unless committed", "[sqlite]") {
  testing::TempDir dir;
  absl::StatusOr<Database> db = Database::Open(dir.File("a.db"));
  REQUIRE(db.ok());
  REQUIRE(db->Exec("CREATE TABLE t (k INTEGER)").ok());
  {
    absl::StatusOr<Transaction> txn = Transaction::Begin(*db);
    REQUIRE(txn.ok());
    REQUIRE(db->Exec("INSERT INTO t VALUES (1)").ok());
  }
  {
    absl::StatusOr<Transaction> txn = Transaction::Begin(*db);
    REQUIRE(txn.ok());
    REQUIRE(db->Exec("INSERT INTO t VALUES (2)").ok());
    REQUIRE(txn->Commit().ok());
  }
  absl::StatusOr<Statement> s = db->Prepare("SELECT group_concat(k) FROM t");
  REQUIRE(s.ok());
  REQUIRE(*s->Step());
  CHECK(s->ColumnText(0) == "2");
}

}  // namespace
}  // namespace squeeze::common
