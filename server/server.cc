#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/log.h"
#include "device_profiles/host.h"
#include "runtime/session.h"
#include "server/device_service.h"

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

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &bound_port);
  builder.RegisterService(server->device_service_.get());
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || bound_port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen,
                                               ": the address is in use or not local to this machine"));
  }
  server->port_ = bound_port;
  server->address_ = absl::StrCat(address->first, ":", bound_port);
  return server;
}

SqueezeServer::~SqueezeServer() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
  }
}

void SqueezeServer::Shutdown(absl::Duration grace) {
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
}

void SqueezeServer::Wait() { server_->Wait(); }

}  // namespace squeeze::server
