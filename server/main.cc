// squeezed: the Squeeze server. Thin: parses the command line, starts SqueezeServer, and stops it
// on SIGINT/SIGTERM.
#include <signal.h>

#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/log.h"
#include "server/server.h"

int main(int argc, char** argv) {
  using squeeze::common::LogError;
  using squeeze::common::LogInfo;

  squeeze::server::ServerOptions options;
  std::string port_file;
  CLI::App app{
      "squeezed: the Squeeze model compression search server.\n"
      "Serves squeeze.v1 over gRPC (with the standard health service and reflection) from a data\n"
      "directory holding the device-profile database and the team's state."};
  app.add_option("--data-dir", options.data_dir, "Directory for profiles.db and server state (created if missing)")
      ->required();
  app.add_option("--listen", options.listen, "Address to listen on, HOST:PORT; port 0 picks a free port")
      ->capture_default_str();
  app.add_option("--port-file", port_file, "Write the bound port to this file once listening");
  app.add_option("--profiles", options.profiles_path,
                 "Device-profile database (default: DATA_DIR/profiles.db)");
  app.add_option("--max-model-bytes", options.max_model_bytes, "Largest model upload accepted, in bytes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--workers", options.worker_threads, "Threads that analyse uploads and run searches")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  // Block the stop signals in every thread; the main thread waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto server = squeeze::server::SqueezeServer::Start(options);
  if (!server.ok()) {
    LogError("cannot start: {}", server.status().ToString());
    return 1;
  }
  LogInfo("listening on {} data_dir={}", (*server)->address(), options.data_dir);
  if (!port_file.empty()) {
    absl::Status written = squeeze::common::WriteFileAtomically(port_file, absl::StrCat((*server)->port(), "\n"));
    if (!written.ok()) {
      LogError("cannot write --port-file: {}", written.ToString());
      return 1;
    }
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  LogInfo("received {}, shutting down", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown(absl::Seconds(5));
  (*server)->Wait();
  server->reset();
  LogInfo("stopped");
  return 0;
}
