// Running a helper process with a time limit: the server keeps work on untrusted input that may
// need unbounded memory (ONNX Runtime running an uploaded model) in a child it can bound and kill.
#ifndef SQUEEZE_COMMON_SUBPROCESS_H_
#define SQUEEZE_COMMON_SUBPROCESS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace squeeze::common {

struct ChildExit {
  bool timed_out = false;  // killed (SIGKILL) for running past the time limit
  int exit_code = -1;      // when it exited
  int signal = 0;          // when a signal ended it
  std::string output;      // what it wrote to stdout and stderr, up to 64 KiB
};

// Runs argv[0] (a path) with `argv`, stdin from /dev/null and stdout/stderr captured, and waits
// for it, at most `time_limit`. Errors only when it cannot be started.
absl::StatusOr<ChildExit> RunChild(const std::vector<std::string>& argv, absl::Duration time_limit);

// The running executable's path (/proc/self/exe), to start the same binary as a helper.
absl::StatusOr<std::string> SelfExecutable();

}  // namespace squeeze::common

#endif  // SQUEEZE_COMMON_SUBPROCESS_H_
