// squeeze.v1.ServerService: the server's status for any key, and API keys for admin keys (the
// same operations as `squeezed keys` on the data dir).
#ifndef SQUEEZE_SERVER_SERVER_SERVICE_H_
#define SQUEEZE_SERVER_SERVER_SERVICE_H_

#include "absl/time/time.h"
#include "server/fair_queue.h"
#include "server/state_store.h"
#include "server/work_queue.h"
#include "squeeze/v1/server.grpc.pb.h"

namespace squeeze::server {

struct ServerInfo {
  absl::Time started_at;
  int worker_threads = 0;
  int upload_threads = 0;
  bool tls = false;
  int64_t search_memory_budget = 0;
};

// Handlers read state.db (a few indexed reads) and complete on the reaction thread.
class ServerService final : public v1::ServerService::CallbackService {
 public:
  ServerService(StateStore& state, WorkQueue& workers, WorkQueue& upload_workers, FairQueue& search_queue,
                ServerInfo info)
      : state_(state), workers_(workers), upload_workers_(upload_workers), search_queue_(search_queue), info_(info) {}

  grpc::ServerUnaryReactor* GetServerStatus(grpc::CallbackServerContext* context,
                                            const v1::GetServerStatusRequest* request,
                                            v1::ServerStatus* response) override;
  grpc::ServerUnaryReactor* CreateApiKey(grpc::CallbackServerContext* context, const v1::CreateApiKeyRequest* request,
                                         v1::CreateApiKeyResponse* response) override;
  grpc::ServerUnaryReactor* ListApiKeys(grpc::CallbackServerContext* context, const v1::ListApiKeysRequest* request,
                                        v1::ListApiKeysResponse* response) override;
  grpc::ServerUnaryReactor* RevokeApiKey(grpc::CallbackServerContext* context, const v1::RevokeApiKeyRequest* request,
                                         v1::ApiKey* response) override;

 private:
  StateStore& state_;
  WorkQueue& workers_;
  WorkQueue& upload_workers_;
  FairQueue& search_queue_;
  const ServerInfo info_;
};

// This build's version, e.g. "0.1.0".
const char* ServerVersion();

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_SERVER_SERVICE_H_
