// One-line structured logs on stderr: `2026-11-25T19:40:01.123Z INFO message key=value ...`.
// Thread safe: each line is written with a single write.
#ifndef SQUEEZE_COMMON_LOG_H_
#define SQUEEZE_COMMON_LOG_H_

#include <string>
#include <utility>

#include <fmt/format.h>

namespace squeeze::common {

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
