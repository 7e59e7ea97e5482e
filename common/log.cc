#include "common/log.h"

#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace squeeze::common {
namespace {

std::atomic<LogLevel> min_level{LogLevel::kInfo};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
  }
  return "INFO";
}

}  // namespace

std::string Printable(absl::string_view text, size_t max_bytes) {
  std::string out;
  size_t taken = 0;
  for (; taken < text.size() && out.size() < max_bytes; ++taken) {
    const unsigned char c = static_cast<unsigned char>(text[taken]);
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += absl::StrFormat("\\x%02x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  if (taken < text.size()) absl::StrAppend(&out, "... (", text.size(), " bytes)");
  return out;
}

void SetMinLogLevel(LogLevel level) { min_level = level; }

void LogLine(LogLevel level, const std::string& message) {
  if (level < min_level.load()) return;
  std::string line = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  line += ' ';
  line += LevelName(level);
  line += ' ';
  // Quotes and backslashes stay as the caller wrote them (key="value" pairs); what would break the
  // line is escaped.
  for (size_t i = 0; i < message.size() && line.size() < kMaxLogLineBytes; ++i) {
    const unsigned char c = static_cast<unsigned char>(message[i]);
    if (c < 0x20 || c == 0x7f) {
      line += c == '\n' ? std::string("\\n") : absl::StrFormat("\\x%02x", c);
    } else {
      line += static_cast<char>(c);
    }
    if (line.size() >= kMaxLogLineBytes && i + 1 < message.size()) {
      absl::StrAppend(&line, "... (record cut: ", message.size(), " bytes)");
    }
  }
  line += '\n';
  // One write per line keeps lines from different threads whole.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace squeeze::common
