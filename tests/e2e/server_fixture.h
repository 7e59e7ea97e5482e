// A real squeezed for one test: fresh data dir (or a given one), 127.0.0.1 port 0, stopped with
// SIGTERM when the fixture goes away (SIGKILL if it will not stop).
#ifndef SQUEEZE_TESTS_E2E_SERVER_FIXTURE_H_
#define SQUEEZE_TESTS_E2E_SERVER_FIXTURE_H_

#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/testing/process.h"
#include "tests/testing/temp_dir.h"

namespace squeeze::testing {

class RunningServer {
 public:
  explicit RunningServer(const std::string& data_dir, std::vector<std::string> extra_args = {})
      : data_dir_(data_dir), port_file_(data_dir + ".port"), log_(data_dir + ".log") {
    std::remove(port_file_.c_str());
    std::vector<std::string> argv = {Binary("squeezed"), "--data-dir", data_dir_, "--listen", "127.0.0.1:0",
                                     "--port-file", port_file_};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    child_ = std::make_unique<Child>(argv, log_);
    REQUIRE(child_->started());
    if (!WaitForFile(port_file_, std::chrono::seconds(30))) {
      FAIL("squeezed did not start; its log:\n" << ReadText(log_));
    }
    address_ = "127.0.0.1:" + ReadText(port_file_).substr(0, ReadText(port_file_).find('\n'));
  }
  ~RunningServer() { Stop(); }

  // SIGTERM and wait; returns the exit code (or -1 when it had to be killed).
  int Stop() {
    if (!child_) return stopped_code_;
    std::optional<int> code = child_->Stop(SIGTERM, std::chrono::seconds(15));
    stopped_code_ = code.value_or(-1);
    child_.reset();
    return stopped_code_;
  }

  // SIGKILL: the process dies at once, as in a crash.
  void Kill() {
    if (!child_) return;
    child_->Stop(SIGKILL, std::chrono::seconds(15));
    child_.reset();
  }

  const std::string& address() const { return address_; }
  std::string log() const { return ReadText(log_); }

  // Runs the squeeze CLI against this server; killed after `timeout` (searches that measure a
  // large model's sensitivities on a loaded machine take a while).
  CommandResult Cli(std::vector<std::string> args,
                    std::chrono::milliseconds timeout = std::chrono::seconds(150)) const {
    std::vector<std::string> argv = {Binary("squeeze"), "--server", address_};
    argv.insert(argv.end(), args.begin(), args.end());
    return Run(argv, {}, timeout);
  }

 private:
  std::string data_dir_, port_file_, log_, address_;
  std::unique_ptr<Child> child_;
  int stopped_code_ = -1;
};

}  // namespace squeeze::testing

#endif  // SQUEEZE_TESTS_E2E_SERVER_FIXTURE_H_
