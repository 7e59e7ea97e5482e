// File helpers with absl::Status errors naming the path and the OS reason.
#ifndef SQUEEZE_COMMON_FILES_H_
#define SQUEEZE_COMMON_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace squeeze::common {

// Whole file as bytes. NotFound when missing, PermissionDenied, or Internal on read errors.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Writes `bytes` to a temporary file beside `path`, fsyncs it and renames it over `path`, so
// readers see either the old or the new content, never a torn one. `mode` is the new file's mode.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes, int mode = 0644);

// Creates `path` and its parents (mode 0755) when missing.
absl::Status MakeDirectories(const std::string& path);

// The OS error `errno_value` as an absl::Status of the closest code, prefixed by `context`.
absl::Status ErrnoStatus(int errno_value, absl::string_view context);

}  // namespace squeeze::common

#endif  // SQUEEZE_COMMON_FILES_H_
