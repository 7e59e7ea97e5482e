#include "common/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "common/files.h"
#include "tests/testing/temp_dir.h"

namespace squeeze::common {
namespace {

TEST_CASE("Printable escapes what would break a line and bounds the rest", "[log]") {
  CHECK(Printable("m-1") == "m-1");
  CHECK(Printable("a\nb\r\"c\\\x01") == "a\\nb\\r\\\"c\\\\\\x01");
  CHECK(Printable("caf\xc3\xa9") == "caf\xc3\xa9");  // UTF-8 stays as it is
  const std::string cut = Printable(std::string(8 << 20, 'a'), 16);
  CHECK(cut == std::string(16, 'a') + "... (8388608 bytes)");
}

TEST_CASE("A log record is one line whatever its values hold, and bounded", "[log]") {
  testing::TempDir dir;
  const std::string path = dir.File("log.txt");
  const int saved = ::dup(STDERR_FILENO);
  const int file = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
  REQUIRE(saved >= 0);
  REQUIRE(file >= 0);
  ::dup2(file, STDERR_FILENO);
  LogWarning("rpc method=Get error=\"no model '{}'\"",
             "m-1\n2026-12-06T00:00:00.000Z INFO rpc method=CreateApiKey code=OK");
  LogInfo("{}", std::string(1 << 20, 'z'));
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(file);
  absl::StatusOr<std::string> text = ReadFile(path);
  REQUIRE(text.ok());
  size_t lines = 0;
  for (char c : *text) lines += c == '\n';
  CHECK(lines == 2);
  CHECK(text->find("m-1\\n2026") != std::string::npos);  // the newline written escaped
  CHECK(text->size() < 2 * kMaxLogLineBytes + 200);
  CHECK(text->find("record cut: 1048576 bytes") != std::string::npos);
}

}  // namespace
}  // namespace squeeze::common
