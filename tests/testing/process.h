// Real child processes for end-to-end tests: the built squeezed and squeeze binaries, with their
// output captured to files. A Child still running when destroyed is killed and reaped, so a
// failing test never leaves a server behind.
#ifndef SQUEEZE_TESTS_TESTING_PROCESS_H_
#define SQUEEZE_TESTS_TESTING_PROCESS_H_

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace squeeze::testing {

struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed by one
  std::string out;
  std::string err;
};

class Child {
 public:
  // Starts `argv` with stdout and stderr appended to `log_path`. `env` entries are added to
  // (or replace in) the current environment.
  Child(const std::vector<std::string>& argv, const std::string& log_path,
        const std::map<std::string, std::string>& env = {});
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool started() const { return pid_ > 0; }
  int pid() const { return pid_; }
  // Sends `signal` and waits up to `timeout` for the exit; returns the exit code or nullopt.
  std::optional<int> Stop(int signal, std::chrono::milliseconds timeout);
  // Waits up to `timeout` for the exit without signalling.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool Running();

 private:
  int pid_ = -1;
  std::optional<int> exit_code_;
};

// Runs `argv` to completion (killed after `timeout`), capturing stdout and stderr.
CommandResult Run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Reads a whole file; empty when missing.
std::string ReadText(const std::string& path);

// Polls until `path` exists and is non-empty, up to `timeout`.
bool WaitForFile(const std::string& path, std::chrono::milliseconds timeout);

// Path of a built binary, e.g. Binary("squeezed").
std::string Binary(const std::string& name);

}  // namespace squeeze::testing

#endif  // SQUEEZE_TESTS_TESTING_PROCESS_H_
