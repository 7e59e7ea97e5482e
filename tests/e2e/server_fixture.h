// A real squeezed for one test: fresh data dir (or a given one), 127.0.0.1 port 0, stopped with
// SIGTERM when the fixture goes away (SIGKILL if it will not stop). The CLI runs with the data
// dir's first admin key (DATA_DIR/initial-api-key) unless told otherwise.
#ifndef SQUEEZE_TESTS_E2E_SERVER_FIXTURE_H_
#define SQUEEZE_TESTS_E2E_SERVER_FIXTURE_H_

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "squeeze/v1/search.pb.h"
#include "tests/testing/process.h"
#include "tests/testing/temp_dir.h"

namespace squeeze::testing {

// The protobuf message a `squeeze --json ...` command printed; the command must have succeeded.
template <typename Message>
Message Parse(const CommandResult& result) {
  INFO(result.out << result.err);
  REQUIRE(result.exit_code == 0);
  Message message;
  REQUIRE(google::protobuf::util::JsonStringToMessage(result.out, &message).ok());
  return message;
}

class RunningServer {
 public:
  // `launcher`, when given, starts squeezed in its place and must exec it (e.g. prlimit's limits).
  explicit RunningServer(const std::string& data_dir, std::vector<std::string> extra_args = {},
                         std::vector<std::string> launcher = {})
      : data_dir_(data_dir), port_file_(data_dir + ".port"), log_(data_dir + ".log") {
    std::remove(port_file_.c_str());
    std::vector<std::string> argv = launcher;
    for (const std::string& arg : {Binary("squeezed"), std::string("--data-dir"), data_dir_, std::string("--listen"),
                                   std::string("127.0.0.1:0"), std::string("--port-file"), port_file_}) {
      argv.push_back(arg);
    }
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    child_ = std::make_unique<Child>(argv, log_);
    REQUIRE(child_->started());
    if (!WaitForFile(port_file_, std::chrono::seconds(30))) {
      FAIL("squeezed did not start; its log:\n" << ReadText(log_));
    }
    address_ = "127.0.0.1:" + ReadText(port_file_).substr(0, ReadText(port_file_).find('\n'));
    const std::string key = ReadText(data_dir_ + "/initial-api-key");
    admin_key_ = key.substr(0, key.find('\n'));
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
  const std::string& data_dir() const { return data_dir_; }
  // The first admin key of the data dir (team "default").
  const std::string& admin_key() const { return admin_key_; }
  // A plaintext channel to the server, for calls the CLI cannot make.
  std::shared_ptr<grpc::Channel> Channel() const {
    return grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
  }
  // Sets `context` up for a call as this server's first admin, within `deadline`.
  void Authorize(grpc::ClientContext* context, std::chrono::seconds deadline = std::chrono::seconds(20)) const {
    context->AddMetadata("authorization", "Bearer " + admin_key_);
    context->set_deadline(std::chrono::system_clock::now() + deadline);
  }
  int pid() const { return child_ ? child_->pid() : -1; }
  // Arguments every Cli call gets before its own (e.g. --ca-cert for a TLS server).
  void set_cli_options(std::vector<std::string> options) { cli_options_ = std::move(options); }
  std::string log() const { return ReadText(log_); }

  // Runs the squeeze CLI against this server; killed after `timeout` (searches that measure a
  // large model's sensitivities on a loaded machine take a while).
  CommandResult Cli(std::vector<std::string> args,
                    std::chrono::milliseconds timeout = std::chrono::seconds(150)) const {
    return CliAs(admin_key_, std::move(args), timeout);
  }
  // The same with another API key (empty: none).
  CommandResult CliAs(const std::string& key, std::vector<std::string> args,
                      std::chrono::milliseconds timeout = std::chrono::seconds(150)) const {
    std::vector<std::string> argv = {Binary("squeeze"), "--server", address_};
    argv.insert(argv.end(), cli_options_.begin(), cli_options_.end());
    if (!key.empty()) {
      argv.push_back("--api-key");
      argv.push_back(key);
    }
    argv.insert(argv.end(), args.begin(), args.end());
    // Keys come only from the arguments, never from the environment the tests run in.
    return Run(argv, {{"SQUEEZE_API_KEY", ""}}, timeout);
  }

  // A new key made with `squeezed keys create` on the data dir (the server keeps running).
  std::string CreateKey(const std::string& team, bool admin = false) const {
    std::vector<std::string> argv = {Binary("squeezed"), "keys", "create", "--data-dir", data_dir_, "--team", team};
    if (admin) argv.push_back("--admin");
    CommandResult made = Run(argv);
    INFO(made.out << made.err);
    REQUIRE(made.exit_code == 0);
    std::string out = made.out;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out.substr(out.find_last_of(" \n") + 1);
  }

 private:
  std::string data_dir_, port_file_, log_, address_, admin_key_;
  std::vector<std::string> cli_options_;
  std::unique_ptr<Child> child_;
  int stopped_code_ = -1;
};

// The measured latency of the fastest measured candidate of `front` that keeps the SQNR floor as
// measured; checks it is no slower than the
// measured uniform fp32 and int8 baselines (timed in the same interleaved run) that keep the
// search's SQNR floor, `min_sqnr_db`, as measured: one that breaks the model is no pick to beat
// (it does not join the front). Returns it in ms.
inline double CheckFastestMeasuredBeatsBaselines(const v1::DeviceFront& front, double min_sqnr_db = 10) {
  INFO(front.measured_picks());
  CHECK_THAT(front.measured_picks(), Catch::Matchers::Contains("interleaved"));
  double fastest = std::numeric_limits<double>::infinity();
  for (const v1::Candidate& c : front.candidates()) {
    // An export measured below the floor is never recommended: it beats nothing.
    if (c.has_measured() && c.measured().latency_measured() && c.measured().sqnr_db() >= min_sqnr_db) {
      fastest = std::min(fastest, c.measured().latency_ms());
    }
  }
  REQUIRE(std::isfinite(fastest));
  int baselines = 0;
  for (const v1::Candidate& b : front.baselines()) {
    if (b.tags().empty() || (b.tags(0) != "fp32" && b.tags(0) != "uniform int8")) continue;
    REQUIRE(b.has_measured());
    REQUIRE(b.measured().latency_measured());
    INFO(b.tags(0) << " measured " << b.measured().latency_ms() << " ms, " << b.measured().sqnr_db() << " dB");
    ++baselines;
    if (b.measured().sqnr_db() < min_sqnr_db) continue;
    CHECK(fastest <= b.measured().latency_ms());
  }
  CHECK(baselines == 2);
  return fastest;
}

}  // namespace squeeze::testing

#endif  // SQUEEZE_TESTS_E2E_SERVER_FIXTURE_H_
