#include "common/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/files.h"

extern char** environ;

namespace squeeze::common {
namespace {

constexpr size_t kMaxOutput = 64 << 10;

}  // namespace

absl::StatusOr<ChildExit> RunChild(const std::vector<std::string>& argv, absl::Duration time_limit) {
  if (argv.empty()) return absl::InvalidArgumentError("no program to run");
  // The child's output goes to an unlinked temporary file: no pipe to drain while waiting.
  const char* tmp = std::getenv("TMPDIR");
  std::string path = absl::StrCat(tmp && *tmp ? tmp : "/tmp", "/squeeze-child-XXXXXX");
  const int out = ::mkstemp(path.data());
  if (out < 0) return ErrnoStatus(errno, "cannot create a file for a helper's output");
  ::unlink(path.c_str());
  absl::Cleanup close_out = [out] { ::close(out); };

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  absl::Cleanup destroy_actions = [&actions] { posix_spawn_file_actions_destroy(&actions); };
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out, 1);
  posix_spawn_file_actions_adddup2(&actions, out, 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ);
  if (rc != 0) return ErrnoStatus(rc, absl::StrCat("cannot start ", argv[0]));

  ChildExit result;
  const absl::Time deadline = absl::Now() + time_limit;
  int status = 0;
  while (true) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) return ErrnoStatus(errno, "cannot wait for a helper process");
    if (absl::Now() >= deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      result.timed_out = true;
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  result.output.resize(kMaxOutput);
  const ssize_t n = ::pread(out, result.output.data(), kMaxOutput, 0);
  result.output.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return result;
}

absl::StatusOr<std::string> SelfExecutable() {
  char buffer[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buffer, sizeof(buffer) - 1);
  if (n < 0) return ErrnoStatus(errno, "cannot read /proc/self/exe");
  return std::string(buffer, static_cast<size_t>(n));
}

}  // namespace squeeze::common
