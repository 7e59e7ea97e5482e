// SqueezeServer: the squeezed process minus its command line. Owns the data directory's stores
// and the gRPC server (callback API, health service, reflection) listening on one address.
#ifndef SQUEEZE_SERVER_SERVER_H_
#define SQUEEZE_SERVER_SERVER_H_

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <oneapi/tbb/global_control.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "device_profiles/profile_store.h"
#include "model/loader.h"
#include "server/fair_queue.h"
#include "server/state_store.h"
#include "server/work_queue.h"

namespace squeeze::server {

struct ServerOptions {
  std::string data_dir;                    // created when missing
  std::string listen = "127.0.0.1:50051";  // port 0 picks a free port
  std::string profiles_path;               // default: <data_dir>/profiles.db
  int64_t max_model_bytes = int64_t{1} << 30;
  // The most bytes of activations one model may hold at once at its input shapes (checked from
  // the shapes at upload, search and export, before ONNX Runtime allocates them).
  int64_t max_activation_bytes = int64_t{1} << 30;
  // How to start the helper that runs the shape probe in a bounded child process (squeezed passes
  // itself and "probe-shapes"); empty: the probe runs in this process, unbounded.
  std::vector<std::string> probe_helper_argv;
  absl::Duration analysis_timeout = absl::Seconds(120);  // the shape probe's time budget
  // The longest one ONNX Runtime run of a search or export may take (runtime::LimitRunTime).
  absl::Duration max_run_time = absl::Seconds(600);
  // The memory running searches may need together, as estimated from their models; a search
  // that would pass it waits for others to end (one always runs). 0: no limit.
  int64_t search_memory_budget = int64_t{3} << 30;
  int worker_threads = 2;  // the arena that runs searches
  // A search on host whose profile never timed the model times it first, each of its uniform
  // variants for this long (SearchJobsOptions::host_model_time_s); 0: never.
  double host_model_time_s = 1.0;
  // Check each search's predicted errors against exports of its candidates near the SQNR floor
  // (SearchJobsOptions::measure_error).
  bool measure_error = true;
  int upload_threads = 2;  // the arena that analyses uploads
  // TLS: both paths (PEM) or neither. Without TLS the server listens only on loopback, unless
  // `insecure` (e.g. behind a proxy that terminates TLS).
  std::string tls_cert_path, tls_key_path;
  bool insecure = false;
  int64_t max_message_bytes = 16 << 20;  // largest gRPC message received or sent
  int max_concurrent_streams = 100;      // per client connection
  // An upload stream that sends nothing for this long is ended and its bytes dropped.
  absl::Duration upload_idle_timeout = absl::Seconds(60);
  TeamQuota quota = {int64_t{10} << 30, 4, 120};
};

// True for 127.0.0.0/8, ::1 and localhost.
bool IsLoopbackHost(const std::string& host);

class Authenticator;
class DeviceService;
class ServerService;
class ModelService;
class SearchPipeline;
class SearchJobs;
class Recommender;
class SearchService;
class ExportJobs;
class ExportService;
class StateStore;
class BlobStore;

class SqueezeServer {
 public:
  // Opens (creating and seeding when new) the stores under options.data_dir, removes blobs no row
  // refers to (left by a crash between commit and insert) and starts serving. A state.db that
  // never had an API key gets an admin key for team "default" (the team of a v3 server's rows),
  // written to <data_dir>/initial-api-key (mode 0600) and logged once.
  // InvalidArgument for a malformed address or options, or plaintext on a non-loopback address
  // without `insecure`; Unavailable when the address cannot be bound, FailedPrecondition when a
  // store cannot be opened, NotFound when a TLS file is missing.
  static absl::StatusOr<std::unique_ptr<SqueezeServer>> Start(const ServerOptions& options);
  ~SqueezeServer();

  // The address actually bound, with the real port when 0 was asked for.
  const std::string& address() const { return address_; }
  int port() const { return port_; }

  // Asks running searches to stop (they stay queued and run again on the next start), stops
  // accepting calls, lets running ones finish until `grace` has passed, then cancels them. Idle
  // connections do not hold it up.
  void Shutdown(absl::Duration grace);
  // Blocks until the server has shut down.
  void Wait();

 private:
  SqueezeServer() = default;
  // The steps of Start, in order.
  absl::Status OpenStores(const ServerOptions& options);
  void StartWorkers(const ServerOptions& options);
  void MakeServices(const ServerOptions& options, const model::ShapeProbe& shape_probe, absl::Time started_at);
  absl::Status Listen(const ServerOptions& options, const std::shared_ptr<grpc::ServerCredentials>& credentials);

  std::unique_ptr<device_profiles::ProfileStore> profiles_;
  std::unique_ptr<StateStore> state_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<tbb::global_control> parallelism_;  // enough oneTBB workers for both arenas
  std::unique_ptr<WorkQueue> workers_;                // searches and exports
  std::unique_ptr<FairQueue> search_queue_;           // which search runs next on workers_
  std::unique_ptr<WorkQueue> upload_workers_;         // upload analyses
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<ServerService> server_service_;
  std::unique_ptr<DeviceService> device_service_;
  std::unique_ptr<ModelService> model_service_;
  std::unique_ptr<SearchPipeline> search_pipeline_;  // what search_jobs_ runs
  std::unique_ptr<SearchJobs> search_jobs_;
  std::unique_ptr<Recommender> recommender_;  // answers from search_jobs_' fronts, or a search on it
  std::unique_ptr<SearchService> search_service_;
  std::unique_ptr<ExportJobs> export_jobs_;
  std::unique_ptr<ExportService> export_service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  int port_ = 0;
  std::atomic<int> calls_in_flight_{0};  // counted by the call interceptor
};

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_SERVER_H_
