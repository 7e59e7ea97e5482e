#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <filesystem>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/log.h"
#include "device_profiles/host.h"
#include "runtime/session.h"
#include "runtime/shape_probe.h"
#include "server/blob_store.h"
#include "server/device_service.h"
#include "server/export_service.h"
#include "server/model_service.h"
#include "server/search_jobs.h"
#include "server/search_service.h"
#include "server/state_store.h"

namespace squeeze::server {
namespace {

// Splits "host:port" / "[v6]:port"; InvalidArgument when it is not of that form.
absl::StatusOr<std::pair<std::string, int>> SplitAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen address '", address, "' is not HOST:PORT (e.g. 127.0.0.1:50051, or port 0 for any)"));
  }
  return std::make_pair(address.substr(0, colon), port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqueezeServer>> SqueezeServer::Start(const ServerOptions& options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("--data-dir is required");
  absl::StatusOr<std::pair<std::string, int>> address = SplitAddress(options.listen);
  if (!address.ok()) return address.status();
  absl::Status status = common::MakeDirectories(options.data_dir);
  if (!status.ok()) return status;

  std::unique_ptr<SqueezeServer> server(new SqueezeServer());
  const std::string profiles_path =
      options.profiles_path.empty() ? options.data_dir + "/profiles.db" : options.profiles_path;
  device_profiles::ProfileStoreOptions profile_options;
  {
    // The host is described only when a new database is created; detecting it costs ~0.2 s.
    std::error_code ignored;
    bool exists = std::filesystem::exists(profiles_path, ignored) &&
                  std::filesystem::file_size(profiles_path, ignored) > 0;
    if (!exists) {
      absl::StatusOr<device_profiles::Device> host =
          device_profiles::HostDevice(device_profiles::ReadHostFacts(runtime::OrtVersion()));
      if (host.ok()) {
        profile_options.host = *std::move(host);
      } else {
        common::LogWarning("cannot describe this machine as device 'host': {}", host.status().ToString());
      }
    }
  }
  absl::StatusOr<std::unique_ptr<device_profiles::ProfileStore>> profiles =
      device_profiles::ProfileStore::Open(profiles_path, profile_options);
  if (!profiles.ok()) return profiles.status();
  server->profiles_ = *std::move(profiles);
  server->device_service_ = std::make_unique<DeviceService>(*server->profiles_);

  absl::StatusOr<std::unique_ptr<StateStore>> state = StateStore::Open(options.data_dir + "/state.db");
  if (!state.ok()) return state.status();
  server->state_ = *std::move(state);
  absl::StatusOr<std::unique_ptr<BlobStore>> blobs = BlobStore::Open(options.data_dir + "/blobs");
  if (!blobs.ok()) return blobs.status();
  server->blobs_ = *std::move(blobs);
  absl::StatusOr<std::set<std::string>> referenced = server->state_->ReferencedBlobs();
  if (!referenced.ok()) return referenced.status();
  absl::StatusOr<int> collected = server->blobs_->CollectGarbage(*referenced);
  if (!collected.ok()) return collected.status();
  if (*collected > 0) common::LogInfo("blob store: removed {} blobs no model refers to", *collected);

  if (options.worker_threads < 1) return absl::InvalidArgumentError("worker threads must be at least 1");
  if (options.max_model_bytes < 1) return absl::InvalidArgumentError("--max-model-bytes must be positive");
  server->workers_ = std::make_unique<WorkQueue>(options.worker_threads);
  ModelServiceOptions model_options;
  model_options.max_model_bytes = options.max_model_bytes;
  model_options.shape_probe = runtime::OnnxRuntimeShapeProbe();
  server->model_service_ =
      std::make_unique<ModelService>(*server->state_, *server->blobs_, *server->workers_, model_options);
  ExportJobsOptions export_options;
  export_options.shape_probe = model_options.shape_probe;
  server->export_jobs_ = std::make_unique<ExportJobs>(*server->state_, *server->blobs_, *server->profiles_,
                                                      *server->workers_, export_options);
  server->export_service_ = std::make_unique<ExportService>(*server->export_jobs_);
  SearchJobsOptions search_options;
  search_options.shape_probe = model_options.shape_probe;
  ExportJobs* exports = server->export_jobs_.get();
  search_options.verify_recommended = [exports](const std::string& team, const std::string& id) {
    exports->VerifyRecommended(team, id);
  };
  server->search_jobs_ = std::make_unique<SearchJobs>(*server->state_, *server->blobs_, *server->profiles_,
                                                      *server->workers_, search_options);
  server->search_service_ = std::make_unique<SearchService>(*server->search_jobs_, server->export_jobs_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &bound_port);
  builder.RegisterService(server->device_service_.get());
  builder.RegisterService(server->model_service_.get());
  builder.RegisterService(server->search_service_.get());
  builder.RegisterService(server->export_service_.get());
  // Uploads arrive in chunks of 1 MiB; leave room for a few.
  builder.SetMaxReceiveMessageSize(16 << 20);
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || bound_port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen,
                                               ": the address is in use or not local to this machine"));
  }
  server->port_ = bound_port;
  if (absl::Status recovered = server->search_jobs_->Recover(); !recovered.ok()) return recovered;
  server->address_ = absl::StrCat(address->first, ":", bound_port);
  return server;
}

SqueezeServer::~SqueezeServer() {
  if (search_jobs_) search_jobs_->Stop();
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
  }
  // Work already queued finishes (stopped searches end quickly) before the stores it uses go away.
  if (workers_) workers_->Drain();
  search_jobs_.reset();
  export_jobs_.reset();
  workers_.reset();
}

void SqueezeServer::Shutdown(absl::Duration grace) {
  search_jobs_->Stop();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
}

void SqueezeServer::Wait() { server_->Wait(); }

}  // namespace squeeze::server
