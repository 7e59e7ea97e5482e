// One-line structured logs on stderr: `2026-11-25T19:40:01.123Z INFO message key=value ...`.
// Thread safe: each line is written with a single write. A record is always one line: control
// characters in a message (a newline in a client's id, say) are written escaped, so no value can
// forge a line of its own, and a record longer than kMaxLogLineBytes is cut, saying so.
#ifndef SQUEEZE_COMMON_LOG_H_
#define SQUEEZE_COMMON_LOG_H_

#include <fmt/format.h>

#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace squeeze::common {

inline constexpr size_t kMaxLogLineBytes = 4096;

// `text` as it can be shown inside one line of a log or a message: control characters, quotes
// and backslashes escaped (\n, \x01, ...), and at most `max_bytes` of it, the cut said with the
// full size ("... (8388608 bytes)").
std::string Printable(absl::string_view text, size_t max_bytes = 256);

enum class LogLevel { kDebug, kInfo, kWarning, kError };

void SetMinLogLevel(LogLevel level);
void LogLine(LogLevel level, const std::string& message);

template <typename... Args>
void LogInfo(fmt::format_string<Args...> format, Args&&... args) {
  LogLine(LogLevel::kInfo, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void LogWarning(fmt::format_string<Args...> format, Args&&... args) {
  LogLine(LogLevel::kWarning, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void LogError(fmt::format_string<Args...> format, Args&&... args) {
  LogLine(LogLevel::kError, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace squeeze::common

#endif  // SQUEEZE_COMMON_LOG_H_
