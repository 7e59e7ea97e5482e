// squeeze-bench-load: N concurrent clients against one squeezed on loopback for a bounded time.
// Each client has its own connection and its team's key and loops: upload the PP-OCR cls model
// (two input shapes, so some uploads are analysed and most answered from the store), start a
// short search on a device (a small option grid, 5 s budget), poll it to its end, ask Recommend
// (answered from the stored front), and list models. A search refused by a quota is followed by a
// Recommend on the last front the client saw, after a 200 ms pause. Reports throughput, p50/p99 latency per RPC, errors
// by code (quota answers apart), and the server's peak RSS (VmHWM). Starts its own server unless --server is given.
#include <fcntl.h>
#include <fmt/format.h>
#include <grpcpp/create_channel.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "squeeze/v1/model.grpc.pb.h"
#include "squeeze/v1/search.grpc.pb.h"
#include "squeeze/v1/server.grpc.pb.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Runs argv to completion and returns its stdout.
std::string Capture(std::vector<std::string> args) {
  const std::string out = fs::temp_directory_path() / fmt::format("squeeze-bench-load-out-{}", getpid());
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = 0;
  if (posix_spawn(&pid, cargs[0], &actions, nullptr, cargs.data(), environ) != 0) return "";
  int status = 0;
  waitpid(pid, &status, 0);
  std::string text = ReadAll(out);
  fs::remove(out);
  return text;
}

int64_t PeakRssKib(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  }
  return 0;
}

const char* CodeName(grpc::StatusCode code) {
  static const char* kNames[] = {
      "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i <= 16 ? kNames[i] : "UNKNOWN";
}

// What one client saw: latencies of answered calls per RPC, and every non-OK code per RPC.
struct Tally {
  std::map<std::string, std::vector<double>> ms;
  std::map<std::string, std::map<std::string, int64_t>> codes;
  int64_t searches_succeeded = 0, searches_from_cache = 0;
};

class Client {
 public:
  Client(const std::string& address, const std::string& key, const std::string& model, int seed)
      : key_(key), model_bytes_(model), rng_(seed) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
    args.SetMaxReceiveMessageSize(64 << 20);
    auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    models_ = squeeze::v1::ModelService::NewStub(channel);
    searches_ = squeeze::v1::SearchService::NewStub(channel);
  }

  void Run(Clock::time_point end) {
    static const char* kDevices[] = {"host", "raspberry-pi-5", "pixel-8", "galaxy-s24", "jetson-orin-nano"};
    while (Clock::now() < end) {
      squeeze::v1::Model model;
      if (!Upload(&model)) continue;
      if (Clock::now() >= end) break;
      const std::string device = kDevices[rng_() % 5];
      squeeze::v1::SearchSpec spec;
      spec.set_model_id(model.id());
      spec.add_device_ids(device);
      spec.set_strategy(squeeze::v1::STRATEGY_EXACT);
      spec.set_time_budget_seconds(5);
      spec.set_max_candidates(20 + static_cast<int>(rng_() % 40));  // mostly new specs: real searches
      *spec.mutable_option_space() = Space();
      squeeze::v1::SearchJob job;
      grpc::Status started =
          Call("StartSearch", [&](grpc::ClientContext* c) { return searches_->StartSearch(c, spec, &job); });
      if (!started.ok()) {
        // At a quota: back off a little, then ask for what is there.
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        if (!last_model_.empty()) Recommend(last_model_, last_device_);
        ListModels();
        continue;
      }
      // Poll the search to its end (or the end of the run).
      while (job.state() < squeeze::v1::JOB_STATE_SUCCEEDED && Clock::now() < end) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        squeeze::v1::GetSearchRequest get;
        get.set_id(job.id());
        squeeze::v1::SearchJob polled;
        if (Call("GetSearch", [&](grpc::ClientContext* c) { return searches_->GetSearch(c, get, &polled); }).ok()) {
          job = polled;
        }
      }
      if (job.state() != squeeze::v1::JOB_STATE_SUCCEEDED) continue;
      ++tally_.searches_succeeded;
      tally_.searches_from_cache += job.from_cache();
      last_model_ = model.id();
      last_device_ = device;
      Recommend(model.id(), device);
      ListModels();
    }
  }

  const Tally& tally() const { return tally_; }

 private:
  // A small option grid keeps each search to a few seconds of the server's time.
  static squeeze::v1::OptionSpace Space() {
    squeeze::v1::OptionSpace space;
    for (int b : {32, 16, 8, 4}) space.add_weight_bits(b);
    for (int b : {32, 8}) space.add_activation_bits(b);
    for (double p : {0.0, 0.5}) space.add_prune_ratios(p);
    return space;
  }

  template <typename Fn>
  grpc::Status Call(const std::string& rpc, Fn fn) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + key_);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    const auto start = Clock::now();
    grpc::Status status = fn(&context);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (status.ok()) {
      tally_.ms[rpc].push_back(ms);
    } else {
      ++tally_.codes[rpc][CodeName(status.error_code())];
    }
    return status;
  }

  bool Upload(squeeze::v1::Model* model) {
    const int batch = 1 + static_cast<int>(rng_() % 2);
    return Call("UploadModel",
                [&](grpc::ClientContext* c) {
                  auto writer = models_->UploadModel(c, model);
                  squeeze::v1::UploadModelRequest request;
                  request.mutable_metadata()->set_name("cls.onnx");
                  request.mutable_metadata()->set_size_bytes(static_cast<int64_t>(model_bytes_.size()));
                  auto* shape = request.mutable_metadata()->add_input_shapes();
                  shape->set_name("x");
                  for (int64_t d : {int64_t{batch}, int64_t{3}, int64_t{48}, int64_t{192}}) shape->add_dims(d);
                  bool open = writer->Write(request);
                  for (size_t offset = 0; open && offset < model_bytes_.size(); offset += 1 << 20) {
                    request.set_chunk(model_bytes_.substr(offset, 1 << 20));
                    open = writer->Write(request);
                  }
                  if (open) writer->WritesDone();
                  return writer->Finish();
                })
        .ok();
  }

  // Answered from the stored front of a search this client saw succeed.
  void Recommend(const std::string& model, const std::string& device) {
    squeeze::v1::RecommendRequest recommend;
    recommend.set_model_id(model);
    recommend.set_device_id(device);
    *recommend.mutable_option_space() = Space();
    squeeze::v1::RecommendResponse picks;
    Call("Recommend", [&](grpc::ClientContext* c) { return searches_->Recommend(c, recommend, &picks); });
  }

  void ListModels() {
    squeeze::v1::ListModelsResponse list;
    Call("ListModels",
         [&](grpc::ClientContext* c) { return models_->ListModels(c, squeeze::v1::ListModelsRequest(), &list); });
  }

  std::string key_;
  std::string last_model_, last_device_;
  const std::string& model_bytes_;
  std::mt19937 rng_;
  std::unique_ptr<squeeze::v1::ModelService::Stub> models_;
  std::unique_ptr<squeeze::v1::SearchService::Stub> searches_;
  Tally tally_;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  int clients = 50;
  int teams = 5;
  double seconds = 60;
  bool json = false;
  std::string server, api_key;
  int workers = 2;
  std::string bin_dir = fs::path(argv[0]).parent_path().string();
  std::string model_path = std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";
  CLI::App app{"squeeze-bench-load: concurrent clients uploading, searching and calling Recommend against squeezed"};
  app.add_option("--clients", clients, "Concurrent clients, each with its own connection")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--seconds", seconds, "How long the clients start new work")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 3600.0));
  app.add_option("--teams", teams, "Teams the clients are spread over (one key each)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--workers", workers, "squeezed --workers of the server started here")->capture_default_str();
  app.add_option("--server", server, "Use this running server (HOST:PORT) instead of starting one");
  app.add_option("--api-key", api_key, "Key for --server (all clients act for its team)");
  app.add_option("--model", model_path, "The ONNX model the clients upload (PP-OCR cls, input x=N,3,48,192)");
  app.add_flag("--json", json, "Print the figures as JSON");
  CLI11_PARSE(app, argc, argv);
  const std::string model = ReadAll(model_path);
  if (model.empty()) {
    std::cerr << "missing " << model_path << ": run deploy/install-deps.sh\n";
    return 1;
  }

  pid_t pid = 0;
  std::string data_dir;
  std::vector<std::string> keys;
  if (server.empty()) {
    data_dir = fs::temp_directory_path() / fmt::format("squeeze-bench-load-{}", getpid());
    const std::string port_file = data_dir + ".port";
    std::vector<std::string> args = {bin_dir + "/squeezed",  "--data-dir",  data_dir,  "--listen",
                                     "127.0.0.1:0",          "--port-file", port_file, "--workers",
                                     std::to_string(workers)};
    std::vector<char*> cargs;
    for (auto& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = data_dir + ".log";
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (posix_spawn(&pid, cargs[0], &actions, nullptr, cargs.data(), environ) != 0) {
      std::cerr << "cannot start " << cargs[0] << "\n";
      return 1;
    }
    std::string port;
    for (int i = 0; i < 300 && port.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      port = ReadAll(port_file);
    }
    if (port.empty()) {
      std::cerr << "squeezed did not start; see " << log << "\n";
      kill(pid, SIGKILL);
      return 1;
    }
    server = "127.0.0.1:" + Trimmed(port);
    for (int t = 0; t < teams; ++t) {
      std::string out = Trimmed(Capture(
          {bin_dir + "/squeezed", "keys", "create", "--data-dir", data_dir, "--team", fmt::format("team-{}", t)}));
      keys.push_back(out.substr(out.find_last_of(" \n") + 1));
    }
  } else {
    if (api_key.empty()) {
      std::cerr << "--server needs --api-key\n";
      return 1;
    }
    keys.push_back(api_key);
    teams = 1;
  }

  // Other work on the machine skews every figure: say how busy it was.
  const std::string load_before = ReadAll("/proc/loadavg").substr(0, ReadAll("/proc/loadavg").find(' '));
  std::vector<std::unique_ptr<Client>> pool;
  for (int i = 0; i < clients; ++i) {
    pool.push_back(std::make_unique<Client>(server, keys[static_cast<size_t>(i) % keys.size()], model, 1000 + i));
  }
  const auto start = Clock::now();
  const auto end = start + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  std::vector<std::thread> threads;
  for (auto& c : pool) threads.emplace_back([&c, end] { c->Run(end); });
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const std::string load_after = ReadAll("/proc/loadavg").substr(0, ReadAll("/proc/loadavg").find(' '));

  // Merge.
  Tally all;
  for (const auto& c : pool) {
    for (const auto& [rpc, v] : c->tally().ms) all.ms[rpc].insert(all.ms[rpc].end(), v.begin(), v.end());
    for (const auto& [rpc, codes] : c->tally().codes) {
      for (const auto& [code, n] : codes) all.codes[rpc][code] += n;
    }
    all.searches_succeeded += c->tally().searches_succeeded;
    all.searches_from_cache += c->tally().searches_from_cache;
  }
  int64_t peak_rss_kib = pid > 0 ? PeakRssKib(pid) : 0;
  if (pid > 0) {
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    fs::remove_all(data_dir);
    fs::remove(data_dir + ".port");
    fs::remove(data_dir + ".log");
  }

  int64_t total_ok = 0, quota = 0, errors = 0;
  std::set<std::string> rpcs;
  for (const auto& [rpc, v] : all.ms) rpcs.insert(rpc), total_ok += static_cast<int64_t>(v.size());
  for (const auto& [rpc, codes] : all.codes) {
    rpcs.insert(rpc);
    for (const auto& [code, n] : codes) (code == "RESOURCE_EXHAUSTED" ? quota : errors) += n;
  }
  if (json) {
    std::cout << "{\n  \"clients\": " << clients << ",\n  \"teams\": " << teams
              << ",\n  \"seconds\": " << fmt::format("{:.1f}", elapsed) << ",\n  \"server_workers\": " << workers
              << ",\n  \"calls_ok\": " << total_ok
              << ",\n  \"calls_per_second\": " << fmt::format("{:.1f}", static_cast<double>(total_ok) / elapsed)
              << ",\n  \"quota_answers\": " << quota << ",\n  \"errors\": " << errors
              << ",\n  \"searches_succeeded\": " << all.searches_succeeded
              << ",\n  \"searches_from_cache\": " << all.searches_from_cache
              << ",\n  \"load_average_1min_before\": " << load_before
              << ",\n  \"load_average_1min_after\": " << load_after
              << ",\n  \"cpus\": " << std::thread::hardware_concurrency()
              << ",\n  \"server_peak_rss_mib\": " << fmt::format("{:.0f}", static_cast<double>(peak_rss_kib) / 1024)
              << ",\n  \"rpcs\": {";
    bool first = true;
    for (const std::string& rpc : rpcs) {
      const std::vector<double>& v = all.ms[rpc];
      std::cout << (first ? "" : ",") << "\n    \"" << rpc << "\": {\"ok\": " << v.size()
                << fmt::format(", \"per_second\": {:.2f}, \"p50_ms\": {:.1f}, \"p99_ms\": {:.1f}",
                               static_cast<double>(v.size()) / elapsed, Percentile(v, 0.5), Percentile(v, 0.99))
                << ", \"not_ok\": {";
      bool first_code = true;
      for (const auto& [code, n] : all.codes[rpc]) {
        std::cout << (first_code ? "" : ", ") << "\"" << code << "\": " << n;
        first_code = false;
      }
      std::cout << "}}";
      first = false;
    }
    std::cout << "\n  }\n}\n";
  } else {
    std::cout << fmt::format(
        "{} clients, {} teams, {:.1f} s: {} calls answered ({:.1f}/s), {} quota answers, "
        "{} errors, {} searches succeeded ({} from cache), server peak RSS {:.0f} MiB\n",
        clients, teams, elapsed, total_ok, static_cast<double>(total_ok) / elapsed, quota, errors,
        all.searches_succeeded, all.searches_from_cache, static_cast<double>(peak_rss_kib) / 1024);
    for (const std::string& rpc : rpcs) {
      const std::vector<double>& v = all.ms[rpc];
      std::cout << fmt::format("  {:<12} {:>6} ok  {:>7.2f}/s  p50 {:>8.1f} ms  p99 {:>8.1f} ms", rpc, v.size(),
                               static_cast<double>(v.size()) / elapsed, Percentile(v, 0.5), Percentile(v, 0.99));
      for (const auto& [code, n] : all.codes[rpc]) std::cout << "  " << code << "=" << n;
      std::cout << "\n";
    }
  }
  return errors == 0 ? 0 : 3;
}
