#include "common/files.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "tests/testing/temp_dir.h"

namespace squeeze::common {
namespace {

TEST_CASE("WriteFileAtomically replaces content and sets the mode", "[files]") {
  testing::TempDir dir;
  const std::string path = dir.File("f");
  REQUIRE(WriteFileAtomically(path, "first").ok());
  REQUIRE(WriteFileAtomically(path, "second", 0600).ok());
  absl::StatusOr<std::string> bytes = ReadFile(path);
  REQUIRE(bytes.ok());
  CHECK(*bytes == "second");
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("ReadFile of a missing file is NotFound naming the path", "[files]") {
  testing::TempDir dir;
  absl::StatusOr<std::string> bytes = ReadFile(dir.File("missing"));
  REQUIRE(bytes.status().code() == absl::StatusCode::kNotFound);
  CHECK(bytes.status().message().find("missing") != absl::string_view::npos);
}

TEST_CASE("WriteFileAtomically into a missing directory fails and leaves nothing", "[files]") {
  testing::TempDir dir;
  absl::Status status = WriteFileAtomically(dir.File("no/such/dir/f"), "x");
  CHECK(status.code() == absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace squeeze::common
