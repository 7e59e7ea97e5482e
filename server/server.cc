#include "server/server.h"

#include <grpc/grpc.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <filesystem>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/log.h"
#include "device_profiles/host.h"
#include "runtime/session.h"
#include "runtime/shape_probe.h"
#include "server/auth.h"
#include "server/blob_store.h"
#include "server/device_service.h"
#include "server/export_service.h"
#include "server/model_service.h"
#include "server/recommender.h"
#include "server/search_jobs.h"
#include "server/search_service.h"
#include "server/server_service.h"
#include "server/state_store.h"

namespace squeeze::server {
namespace {

// Splits "host:port" / "[v6]:port"; InvalidArgument when it is not of that form.
absl::StatusOr<std::pair<std::string, int>> SplitAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 || !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", address, "' is not HOST:PORT (e.g. 127.0.0.1:50051, or port 0 for any)"));
  }
  return std::make_pair(address.substr(0, colon), port);
}

// The first admin key of a state.db that never had one.
absl::Status MakeInitialKey(StateStore& state, const std::string& data_dir) {
  absl::StatusOr<int64_t> keys = state.CountApiKeys();
  if (!keys.ok()) return keys.status();
  if (*keys > 0) return absl::OkStatus();
  absl::StatusOr<NewApiKey> key = state.CreateApiKey(kDefaultTeam, Role::kAdmin);
  if (!key.ok()) return key.status();
  const std::string path = data_dir + "/initial-api-key";
  if (absl::Status s = common::WriteFileAtomically(path, key->key + "\n", 0600); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot write the first admin key (", key->record.id, ") to ",
                                                      path, ": ", s.message(),
                                                      "; make another with 'squeezed keys create --admin'"));
  }
  // Never the key itself: logs go to journald and Kubernetes, where others read them.
  common::LogInfo("first admin key {} (prefix {}) for team '{}' written to {} (mode 0600); read it there",
                  key->record.id, key->record.prefix, kDefaultTeam, path);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const ServerOptions& options,
                                                                     const std::string& host) {
  if (options.tls_cert_path.empty() != options.tls_key_path.empty()) {
    return absl::InvalidArgumentError("TLS needs both --tls-cert and --tls-key");
  }
  if (options.tls_cert_path.empty()) {
    if (!IsLoopbackHost(host) && !options.insecure) {
      return absl::InvalidArgumentError(
          absl::StrCat("listening on ", options.listen,
                       " without TLS would send API keys in clear text: give --tls-cert "
                       "and --tls-key, or --insecure when a proxy in front terminates TLS"));
    }
    return grpc::InsecureServerCredentials();
  }
  absl::StatusOr<std::string> cert = common::ReadFile(options.tls_cert_path);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = common::ReadFile(options.tls_key_path);
  if (!key.ok()) return key.status();
  if (cert->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--tls-cert ", options.tls_cert_path, " holds no PEM certificate"));
  }
  if (key->find("PRIVATE KEY-----") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--tls-key ", options.tls_key_path, " holds no PEM private key"));
  }
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

bool IsLoopbackHost(const std::string& host) {
  std::string h = host;
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  return h == "localhost" || h == "::1" || h.rfind("127.", 0) == 0;
}

namespace {

// The options a server cannot start with, named by their flags.
absl::Status CheckOptions(const ServerOptions& options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("--data-dir is required");
  if (options.max_message_bytes < (2 << 20)) {
    return absl::InvalidArgumentError(
        "--max-message-bytes must be at least 2 MiB (2097152): uploads send 1 MiB chunks");
  }
  if (options.max_concurrent_streams < 1) {
    return absl::InvalidArgumentError("--max-concurrent-streams must be positive");
  }
  if (options.upload_idle_timeout < absl::Milliseconds(100)) {
    return absl::InvalidArgumentError("--upload-idle-timeout must be at least 0.1 seconds");
  }
  if (options.quota.max_stored_bytes < 0 || options.quota.max_concurrent_searches < 0 ||
      options.quota.max_searches_per_hour < 0) {
    return absl::InvalidArgumentError("quotas must not be negative (0 means no limit)");
  }
  if (options.worker_threads < 1) return absl::InvalidArgumentError("worker threads must be at least 1");
  if (options.max_model_bytes < 1) return absl::InvalidArgumentError("--max-model-bytes must be positive");
  if (options.upload_threads < 1) return absl::InvalidArgumentError("upload threads must be at least 1");
  return absl::OkStatus();
}

// The device database's options: the host is described only when a new database is created
// (detecting it costs ~0.2 s).
device_profiles::ProfileStoreOptions ProfileOptionsFor(const std::string& profiles_path) {
  device_profiles::ProfileStoreOptions profile_options;
  std::error_code ignored;
  const bool exists =
      std::filesystem::exists(profiles_path, ignored) && std::filesystem::file_size(profiles_path, ignored) > 0;
  if (exists) return profile_options;
  absl::StatusOr<device_profiles::Device> host =
      device_profiles::HostDevice(device_profiles::ReadHostFacts(runtime::OrtVersion()));
  if (host.ok()) {
    profile_options.host = *std::move(host);
  } else {
    common::LogWarning("cannot describe this machine as device 'host': {}", host.status().ToString());
  }
  return profile_options;
}

// ONNX Runtime's shape probe: in this process, or in a helper process under the activation and
// time budget when the server was given one (squeezed probe-shapes).
absl::StatusOr<model::ShapeProbe> ShapeProbeFor(const ServerOptions& options) {
  if (options.probe_helper_argv.empty()) return runtime::OnnxRuntimeShapeProbe();
  runtime::IsolatedProbeOptions probe;
  probe.helper_argv = options.probe_helper_argv;
  // On the data dir's disk; what a killed server left there is removed at start.
  probe.temp_dir = options.data_dir + "/probe";
  std::error_code ignored;
  std::filesystem::remove_all(probe.temp_dir, ignored);
  if (absl::Status made = common::MakeDirectories(probe.temp_dir); !made.ok()) return made;
  probe.activation_bytes = options.max_activation_bytes;
  probe.time_limit = options.analysis_timeout;
  return runtime::IsolatedShapeProbe(std::move(probe));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqueezeServer>> SqueezeServer::Start(const ServerOptions& options) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  absl::StatusOr<std::pair<std::string, int>> address = SplitAddress(options.listen);
  if (!address.ok()) return address.status();
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = Credentials(options, address->first);
  if (!credentials.ok()) return credentials.status();
  const absl::Time started_at = absl::Now();
  if (absl::Status s = common::MakeDirectories(options.data_dir); !s.ok()) return s;

  std::unique_ptr<SqueezeServer> server(new SqueezeServer());
  if (absl::Status s = server->OpenStores(options); !s.ok()) return s;
  server->StartWorkers(options);
  absl::StatusOr<model::ShapeProbe> shape_probe = ShapeProbeFor(options);
  if (!shape_probe.ok()) return shape_probe.status();
  server->MakeServices(options, *shape_probe, started_at);
  if (absl::Status s = server->Listen(options, *credentials); !s.ok()) return s;
  if (absl::Status recovered = server->search_jobs_->Recover(); !recovered.ok()) return recovered;
  server->address_ = absl::StrCat(address->first, ":", server->port_);
  return server;
}

absl::Status SqueezeServer::OpenStores(const ServerOptions& options) {
  const std::string profiles_path =
      options.profiles_path.empty() ? options.data_dir + "/profiles.db" : options.profiles_path;
  absl::StatusOr<std::unique_ptr<device_profiles::ProfileStore>> profiles =
      device_profiles::ProfileStore::Open(profiles_path, ProfileOptionsFor(profiles_path));
  if (!profiles.ok()) return profiles.status();
  profiles_ = *std::move(profiles);
  absl::StatusOr<std::unique_ptr<StateStore>> state = StateStore::Open(options.data_dir + "/state.db");
  if (!state.ok()) return state.status();
  state_ = *std::move(state);
  if (absl::Status s = MakeInitialKey(*state_, options.data_dir); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<BlobStore>> blobs = BlobStore::Open(options.data_dir + "/blobs");
  if (!blobs.ok()) return blobs.status();
  blobs_ = *std::move(blobs);
  absl::StatusOr<std::set<std::string>> referenced = state_->ReferencedBlobs();
  if (!referenced.ok()) return referenced.status();
  absl::StatusOr<int> collected = blobs_->CollectGarbage(*referenced);
  if (!collected.ok()) return collected.status();
  if (*collected > 0) common::LogInfo("blob store: removed {} blobs no model refers to", *collected);
  return absl::OkStatus();
}

void SqueezeServer::StartWorkers(const ServerOptions& options) {
  // oneTBB runs enqueued work on one pool of worker threads shared by every arena, by default one
  // fewer than the cores (a single thread on 2 cores): without a larger pool the upload arena
  // would wait for a search to end before it got a thread.
  parallelism_ = std::make_unique<tbb::global_control>(
      tbb::global_control::max_allowed_parallelism,
      std::max<size_t>(tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism),
                       static_cast<size_t>(options.worker_threads + options.upload_threads + 1)));
  // What the estimates admit, ONNX Runtime enforces: its runs for searches and exports hold at most
  // the search budget together, and one that would pass it fails naming the flag.
  runtime::LimitRunMemory(options.search_memory_budget,
                          "raise squeezed --search-memory, or search the model at smaller --input-shape");
  runtime::LimitRunTime(options.max_run_time, "raise squeezed --max-run-seconds");
  workers_ = std::make_unique<WorkQueue>(options.worker_threads);
  search_queue_ = std::make_unique<FairQueue>(*workers_, options.worker_threads, options.search_memory_budget);
  // Uploads have threads of their own, so they are never queued behind long searches.
  upload_workers_ = std::make_unique<WorkQueue>(options.upload_threads);
}

void SqueezeServer::MakeServices(const ServerOptions& options, const model::ShapeProbe& shape_probe,
                                 absl::Time started_at) {
  auth_ = std::make_unique<Authenticator>(*state_);
  device_service_ = std::make_unique<DeviceService>(*profiles_);
  ModelServiceOptions model_options;
  model_options.max_model_bytes = options.max_model_bytes;
  model_options.shape_probe = shape_probe;
  model_options.max_ir_version = runtime::MaxLoadableIrVersion();
  model_options.max_activation_bytes = options.max_activation_bytes;
  model_options.quota = options.quota;
  model_options.upload_idle_timeout = options.upload_idle_timeout;
  model_service_ = std::make_unique<ModelService>(*state_, *blobs_, *upload_workers_, model_options);
  ExportJobsOptions export_options;
  export_options.shape_probe = shape_probe;
  export_options.max_activation_bytes = options.max_activation_bytes;
  export_jobs_ = std::make_unique<ExportJobs>(*state_, *blobs_, *profiles_, *workers_, export_options);
  export_service_ = std::make_unique<ExportService>(*export_jobs_);
  SearchPipelineOptions pipeline_options;
  pipeline_options.shape_probe = shape_probe;
  pipeline_options.max_activation_bytes = options.max_activation_bytes;
  pipeline_options.host_model_time_s = options.host_model_time_s;
  pipeline_options.measure_error = options.measure_error;
  search_pipeline_ = std::make_unique<SearchPipeline>(*state_, *blobs_, *profiles_, pipeline_options);
  SearchJobsOptions search_options;
  search_options.quota = options.quota;
  ExportJobs* exports = export_jobs_.get();
  search_options.verify_recommended = [exports](const std::string& team, const std::string& id) {
    exports->VerifyRecommended(team, id);
  };
  const SearchPipeline* pipeline = search_pipeline_.get();
  search_jobs_ = std::make_unique<SearchJobs>(*state_, *profiles_, *search_queue_, search_options,
                                              [pipeline](RunningSearch& run) { return pipeline->Run(run); });
  recommender_ = std::make_unique<Recommender>(*state_, *profiles_, *search_jobs_);
  search_service_ = std::make_unique<SearchService>(*search_jobs_, *recommender_, export_jobs_.get());
  ServerInfo info;
  info.started_at = started_at;
  info.worker_threads = options.worker_threads;
  info.tls = !options.tls_cert_path.empty();
  info.upload_threads = options.upload_threads;
  info.search_memory_budget = options.search_memory_budget;
  server_service_ = std::make_unique<ServerService>(*state_, *workers_, *upload_workers_, *search_queue_, info);
}

absl::Status SqueezeServer::Listen(const ServerOptions& options,
                                   const std::shared_ptr<grpc::ServerCredentials>& credentials) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(options.listen, credentials, &bound_port);
  builder.RegisterService(device_service_.get());
  builder.RegisterService(model_service_.get());
  builder.RegisterService(search_service_.get());
  builder.RegisterService(export_service_.get());
  builder.RegisterService(server_service_.get());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(NewCallInterceptorFactory(*auth_, &calls_in_flight_));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  // Uploads arrive in chunks of 1 MiB.
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<int64_t>(options.max_message_bytes, INT32_MAX)));
  builder.SetMaxSendMessageSize(static_cast<int>(std::min<int64_t>(options.max_message_bytes, INT32_MAX)));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  server_ = builder.BuildAndStart();
  if (!server_ || bound_port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen, ": the address is in use or not local to this machine"));
  }
  port_ = bound_port;
  return absl::OkStatus();
}

SqueezeServer::~SqueezeServer() {
  if (search_jobs_) search_jobs_->Stop();
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
  }
  // Work already queued finishes (stopped searches end quickly) before the stores it uses go away.
  if (workers_) workers_->Drain();
  if (upload_workers_) upload_workers_->Drain();
  recommender_.reset();
  search_jobs_.reset();
  export_jobs_.reset();
  search_queue_.reset();
  workers_.reset();
  upload_workers_.reset();
}

void SqueezeServer::Shutdown(absl::Duration grace) {
  search_jobs_->Stop();
  const absl::Time start = absl::Now(), deadline = start + grace;
  // gRPC's shutdown waits for the calls in flight (cancelled at the deadline) and also for every
  // client connection to go away, which an idle client may never do. So once no call is left,
  // the remaining connections are closed at once.
  std::thread stopper([this, deadline] { server_->Shutdown(absl::ToChronoTime(deadline)); });
  while (absl::Now() < deadline && (calls_in_flight_.load() > 0 || absl::Now() < start + absl::Milliseconds(50))) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  grpc_server_cancel_all_calls(server_->c_server());
  stopper.join();
  common::LogInfo("stopped serving after {:.2f} s ({} calls were still in flight)",
                  absl::ToDoubleSeconds(absl::Now() - start), calls_in_flight_.load());
}

void SqueezeServer::Wait() { server_->Wait(); }

}  // namespace squeeze::server
