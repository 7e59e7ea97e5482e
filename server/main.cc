// squeezed: the Squeeze server. Thin: parses the command line, starts SqueezeServer, and stops it
// on SIGINT/SIGTERM; `squeezed keys ...` manages API keys in a data dir, also while a server runs.
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/log.h"
#include "common/subprocess.h"
#include "runtime/shape_probe.h"
#include "server/server.h"
#include "server/state_store.h"

namespace {

using squeeze::common::LogError;
using squeeze::common::LogInfo;
using squeeze::server::StateStore;

// The data dir's state.db; for `keys list` and `keys revoke` it must already exist.
std::unique_ptr<StateStore> OpenState(const std::string& data_dir, bool create) {
  const std::string path = data_dir + "/state.db";
  if (!create && !std::filesystem::exists(path)) {
    std::cerr << "squeezed keys: no state.db in " << data_dir << "; is --data-dir the server's data directory?\n";
    return nullptr;
  }
  if (create) {
    if (absl::Status s = squeeze::common::MakeDirectories(data_dir); !s.ok()) {
      std::cerr << "squeezed keys: " << s.message() << "\n";
      return nullptr;
    }
  }
  absl::StatusOr<std::unique_ptr<StateStore>> state = StateStore::Open(path);
  if (!state.ok()) {
    std::cerr << "squeezed keys: " << state.status().message() << "\n";
    return nullptr;
  }
  return *std::move(state);
}

const char* RoleName(squeeze::server::Role role) { return role == squeeze::server::Role::kAdmin ? "admin" : "member"; }

void AddKeysCommands(CLI::App& app, int* exit_code) {
  CLI::App* keys = app.add_subcommand(
      "keys", "Manage API keys in a data dir (works while a server runs on it: changes apply at once)");
  keys->require_subcommand(1);
  auto data_dir = std::make_shared<std::string>();
  auto team = std::make_shared<std::string>();
  auto admin = std::make_shared<bool>(false);
  auto id = std::make_shared<std::string>();

  CLI::App* create = keys->add_subcommand("create", "Make a key for a team (created when new); prints the key last");
  create->add_option("--data-dir", *data_dir, "The server's data directory")->required();
  create->add_option("--team", *team, "Team the key belongs to (a-z, 0-9, '-', '_')")->required();
  create->add_flag("--admin", *admin, "An admin key: manages keys of every team and puts device profiles");
  create->callback([=] {
    std::unique_ptr<StateStore> state = OpenState(*data_dir, true);
    if (!state) return void(*exit_code = 1);
    auto role = *admin ? squeeze::server::Role::kAdmin : squeeze::server::Role::kMember;
    absl::StatusOr<squeeze::server::NewApiKey> key = state->CreateApiKey(*team, role);
    if (!key.ok()) {
      std::cerr << "squeezed keys create: " << key.status().message() << "\n";
      return void(*exit_code = 1);
    }
    std::cout << "API key " << key->record.id << " for team '" << key->record.team << "' (" << RoleName(role)
              << "); it is shown only now and stored only as a hash:\n"
              << key->key << "\n";
  });

  CLI::App* list = keys->add_subcommand("list", "List every key (never the keys themselves)");
  list->add_option("--data-dir", *data_dir, "The server's data directory")->required();
  list->callback([=] {
    std::unique_ptr<StateStore> state = OpenState(*data_dir, false);
    if (!state) return void(*exit_code = 1);
    absl::StatusOr<std::vector<squeeze::server::ApiKeyRecord>> records = state->ListApiKeys();
    if (!records.ok()) {
      std::cerr << "squeezed keys list: " << records.status().message() << "\n";
      return void(*exit_code = 1);
    }
    std::cout << fmt::format("{:<12} {:<20} {:<7} {:<14} {:<21} {}\n", "ID", "TEAM", "ROLE", "PREFIX", "CREATED",
                             "REVOKED");
    for (const auto& k : *records) {
      std::cout << fmt::format("{:<12} {:<20} {:<7} {:<14} {:<21} {}\n", k.id, k.team, RoleName(k.role), k.prefix,
                               k.created_at, k.revoked_at.empty() ? "-" : k.revoked_at);
    }
  });

  CLI::App* revoke = keys->add_subcommand("revoke", "Revoke a key: calls with it fail from now on");
  revoke->add_option("--data-dir", *data_dir, "The server's data directory")->required();
  revoke->add_option("ID", *id, "The key's id (k-...) or its prefix as 'keys list' shows it")->required();
  revoke->callback([=] {
    std::unique_ptr<StateStore> state = OpenState(*data_dir, false);
    if (!state) return void(*exit_code = 1);
    absl::StatusOr<squeeze::server::ApiKeyRecord> key = state->RevokeApiKey(*id);
    if (!key.ok()) {
      std::cerr << "squeezed keys revoke: " << key.status().message() << "\n";
      return void(*exit_code = 1);
    }
    std::cout << "revoked " << key->id << " (team '" << key->team << "', " << RoleName(key->role) << ")\n";
  });
}

// What the command line sets, before the durations are converted.
struct Flags {
  squeeze::server::ServerOptions options;
  std::string port_file;
  double shutdown_grace_s = 10;
  double upload_idle_timeout_s = 60;
  double analysis_timeout_s = 120;
  double max_run_seconds = 600;
  double host_model_time_ms = 1000;
};

// The serving flags. A table, one entry per flag with its help and check, so it is one long
// function on purpose: split, the flags would be harder to read together.
// Where the server keeps its state, how it listens and how many threads it runs.
void AddServerFlags(CLI::App& app, Flags* f) {
  CLI::Option_group* g = app.add_option_group("Server");
  g->add_option("--data-dir", f->options.data_dir, "Directory for profiles.db and server state (created if missing)");
  g->add_option("--listen", f->options.listen, "Address to listen on, HOST:PORT; port 0 picks a free port")
      ->capture_default_str();
  g->add_option("--port-file", f->port_file, "Write the bound port to this file once listening");
  g->add_option("--profiles", f->options.profiles_path, "Device-profile database (default: DATA_DIR/profiles.db)");
  g->add_option("--tls-cert", f->options.tls_cert_path, "TLS certificate chain (PEM); with --tls-key");
  g->add_option("--tls-key", f->options.tls_key_path, "TLS private key (PEM); with --tls-cert");
  g->add_flag("--insecure", f->options.insecure,
              "Allow plaintext on a non-loopback address (only behind a proxy that terminates TLS)");
  g->add_option("--max-message-bytes", f->options.max_message_bytes, "Largest gRPC message received or sent")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{2} << 20, int64_t{1} << 30));
  g->add_option("--max-concurrent-streams", f->options.max_concurrent_streams,
                "Most calls in flight on one client connection")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  g->add_option("--upload-idle-timeout", f->upload_idle_timeout_s,
                "Seconds an upload may send nothing before it is ended and its bytes dropped")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  g->add_option("--workers", f->options.worker_threads, "Threads that run searches")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  g->add_option("--upload-workers", f->options.upload_threads,
                "Threads that analyse uploads (apart from searches, so uploads never wait behind them)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  g->add_option("--shutdown-grace", f->shutdown_grace_s,
                "On SIGTERM, seconds calls in flight get to finish before they are cancelled")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 600.0));
}

// What one request, model, run or team may take.
void AddLimitFlags(CLI::App& app, Flags* f) {
  CLI::Option_group* g = app.add_option_group("Limits and quotas");
  g->add_option("--max-model-bytes", f->options.max_model_bytes, "Largest model upload accepted, in bytes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  g->add_option("--max-activation-bytes", f->options.max_activation_bytes,
                "Most bytes of activations one model may hold at once at its input shapes; bigger "
                "models are refused before ONNX Runtime runs them")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1} << 20, int64_t{1} << 40));
  g->add_option("--analysis-timeout", f->analysis_timeout_s,
                "Seconds ONNX Runtime may take to run a model once to find shapes libonnx cannot infer")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 3600.0));
  g->add_option("--max-run-seconds", f->max_run_seconds,
                "Seconds one ONNX Runtime run of a search or export may take (a model that loops for ever "
                "is stopped and its job fails saying so; 0: no limit)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  g->add_option("--search-memory", f->options.search_memory_budget,
                "Bytes of memory the running searches may need together, as estimated from their models; "
                "a search that would pass it waits for others to end. ONNX Runtime's runs for searches and "
                "exports hold at most this much together: one that needs more fails saying so (0: no limit)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  g->add_option("--quota-stored-bytes", f->options.quota.max_stored_bytes,
                "Per team: most bytes of stored models (0: no limit)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  g->add_option("--quota-concurrent-searches", f->options.quota.max_concurrent_searches,
                "Per team: most searches queued or running at once (0: no limit)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  g->add_option("--quota-searches-per-hour", f->options.quota.max_searches_per_hour,
                "Per team: most searches started in any hour; answers from stored results are free (0: no limit)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
}

// How searches check their predictions.
void AddSearchFlags(CLI::App& app, Flags* f) {
  CLI::Option_group* g = app.add_option_group("Searches");
  g->add_option("--host-model-time-ms", f->host_model_time_ms,
                "A search on 'host' whose profile never timed the model first times it and its uniform exports here, "
                "each for this long, so the predictions calibrate to them (0: never; predictions then rest on the "
                "profile alone)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 600000.0));
  g->add_flag("--error-probes,!--no-error-probes", f->options.measure_error,
              "After each search, export its candidates near the SQNR floor, run them on the calibration inputs and, "
              "where they measure more than 1 dB off, scale the predicted errors to them and search again "
              "(--no-error-probes: predicted errors rest on the per-layer sensitivities alone)")
      ->capture_default_str();
}

void AddServeFlags(CLI::App& app, Flags* f) {
  AddServerFlags(app, f);
  AddLimitFlags(app, f);
  AddSearchFlags(app, f);
}

// Serves until SIGINT or SIGTERM; the exit code.
int Serve(const Flags& f) {
  // Block the stop signals in every thread; the main thread waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto server = squeeze::server::SqueezeServer::Start(f.options);
  if (!server.ok()) {
    LogError("cannot start: {}", server.status().ToString());
    return 1;
  }
  LogInfo("listening on {} data_dir={} tls={}", (*server)->address(), f.options.data_dir,
          f.options.tls_cert_path.empty() ? "off" : "on");
  if (!f.port_file.empty()) {
    absl::Status written = squeeze::common::WriteFileAtomically(f.port_file, absl::StrCat((*server)->port(), "\n"));
    if (!written.ok()) {
      LogError("cannot write --port-file: {}", written.ToString());
      return 1;
    }
  }
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  LogInfo("received {}, shutting down", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown(absl::Seconds(f.shutdown_grace_s));
  (*server)->Wait();
  server->reset();
  LogInfo("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Everything squeezed writes — the data dir, state.db with its key hashes and every team's jobs,
  // profiles.db, blobs, the first admin key — is the service user's alone: 0700 directories,
  // 0600 files.
  ::umask(077);
  // The server's own helper: the shape probe in a bounded child process (runtime/shape_probe.h).
  if (argc > 1 && std::string(argv[1]) == "probe-shapes") {
    return squeeze::runtime::ShapeProbeHelperMain(std::vector<std::string>(argv + 2, argv + argc));
  }
  Flags f;
  CLI::App app{
      "squeezed: the Squeeze model compression search server.\n"
      "Serves squeeze.v1 over gRPC (with the standard health service and reflection) from a data\n"
      "directory holding the device-profile database and the teams' state. Every call but health\n"
      "needs an API key; a new data dir gets its first admin key in DATA_DIR/initial-api-key."};
  app.require_subcommand(0, 1);
  AddServeFlags(app, &f);
  int exit_code = 0;
  AddKeysCommands(app, &exit_code);
  CLI11_PARSE(app, argc, argv);
  if (!app.get_subcommands().empty()) return exit_code;
  f.options.upload_idle_timeout = absl::Seconds(f.upload_idle_timeout_s);
  f.options.analysis_timeout = absl::Seconds(f.analysis_timeout_s);
  f.options.max_run_time = absl::Seconds(f.max_run_seconds);
  f.options.host_model_time_s = f.host_model_time_ms / 1000;
  if (absl::StatusOr<std::string> self = squeeze::common::SelfExecutable(); self.ok()) {
    f.options.probe_helper_argv = {*self, "probe-shapes"};
  } else {
    std::cerr << "squeezed: " << self.status().message() << "; the shape probe runs in this process, unbounded\n";
  }
  if (f.options.data_dir.empty()) {
    std::cerr << "--data-dir is required\nRun with --help for more information.\n";
    return 106;  // CLI11's code for a missing required option
  }
  return Serve(f);
}
