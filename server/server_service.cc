#include "server/server_service.h"

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "server/caller.h"
#include "server/proto_conversion.h"
#include "server/status.h"

namespace squeeze::server {
namespace {

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

const char* ServerVersion() { return SQUEEZE_VERSION; }

grpc::ServerUnaryReactor* ServerService::GetServerStatus(grpc::CallbackServerContext* context,
                                                         const v1::GetServerStatusRequest* request,
                                                         v1::ServerStatus* response) {
  absl::StatusOr<Caller> caller = CallerOf(*context);
  if (!caller.ok()) return Done(context, caller.status());
  absl::StatusOr<StateStore::JobCounts> jobs = state_.CountJobs();
  if (!jobs.ok()) return Done(context, jobs.status());
  response->set_version(ServerVersion());
  response->set_uptime_seconds(absl::ToDoubleSeconds(absl::Now() - info_.started_at));
  response->set_started_at(absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", info_.started_at, absl::UTCTimeZone()));
  response->set_jobs_queued(jobs->queued);
  response->set_jobs_running(jobs->running);
  response->set_jobs_succeeded(jobs->succeeded);
  response->set_jobs_failed(jobs->failed);
  response->set_jobs_cancelled(jobs->cancelled);
  response->set_work_queue_pending(workers_.pending());
  response->set_worker_threads(info_.worker_threads);
  response->set_upload_queue_pending(upload_workers_.pending());
  response->set_upload_threads(info_.upload_threads);
  const FairQueue::Counts searches = search_queue_.counts();
  response->set_searches_running(searches.running);
  response->set_searches_queued(searches.queued);
  response->set_search_memory_estimated_bytes(searches.running_memory_bytes);
  response->set_search_memory_budget_bytes(info_.search_memory_budget);
  response->set_team(caller->team);
  response->set_role(caller->role == Role::kAdmin ? "admin" : "member");
  response->set_tls(info_.tls);
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* ServerService::CreateApiKey(grpc::CallbackServerContext* context,
                                                      const v1::CreateApiKeyRequest* request,
                                                      v1::CreateApiKeyResponse* response) {
  absl::StatusOr<Caller> caller = CallerOf(*context);
  if (!caller.ok()) return Done(context, caller.status());
  absl::StatusOr<Role> role = FromProto(request->role());
  if (!role.ok()) return Done(context, role.status());
  absl::StatusOr<NewApiKey> key = state_.CreateApiKey(request->team(), *role);
  if (!key.ok()) return Done(context, key.status());
  common::LogInfo("api key {} created for team {} ({}) by key {} request_id={}", key->record.id, key->record.team,
                  *role == Role::kAdmin ? "admin" : "member", caller->key_id, caller->request_id);
  *response->mutable_key() = ToProto(key->record);
  response->set_secret(key->key);
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* ServerService::ListApiKeys(grpc::CallbackServerContext* context,
                                                     const v1::ListApiKeysRequest* request,
                                                     v1::ListApiKeysResponse* response) {
  absl::StatusOr<Caller> caller = CallerOf(*context);
  if (!caller.ok()) return Done(context, caller.status());
  absl::StatusOr<std::vector<ApiKeyRecord>> keys = state_.ListApiKeys();
  if (!keys.ok()) return Done(context, keys.status());
  for (const ApiKeyRecord& key : *keys) *response->add_keys() = ToProto(key);
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* ServerService::RevokeApiKey(grpc::CallbackServerContext* context,
                                                      const v1::RevokeApiKeyRequest* request, v1::ApiKey* response) {
  absl::StatusOr<Caller> caller = CallerOf(*context);
  if (!caller.ok()) return Done(context, caller.status());
  if (request->id().empty()) {
    return Done(context, absl::InvalidArgumentError("name the key to revoke by its id (k-...); 'squeeze keys list'"));
  }
  absl::StatusOr<ApiKeyRecord> key = state_.RevokeApiKey(request->id());
  if (!key.ok()) return Done(context, key.status());
  common::LogInfo("api key {} of team {} revoked by key {} request_id={}", key->id, key->team, caller->key_id,
                  caller->request_id);
  *response = ToProto(*key);
  return Done(context, absl::OkStatus());
}

}  // namespace squeeze::server
