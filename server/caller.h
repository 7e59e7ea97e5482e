// Who is calling: the team and role every RPC acts for, as the call interceptor (server/auth.h)
// established it from the call's API key before the handler ran.
#ifndef SQUEEZE_SERVER_CALLER_H_
#define SQUEEZE_SERVER_CALLER_H_

#include <grpcpp/server_context.h>

#include <string>

#include "absl/status/statusor.h"
#include "server/state_store.h"

namespace squeeze::server {

struct Caller {
  std::string team;
  Role role = Role::kMember;
  std::string key_id;      // "k-..." of the key used
  std::string request_id;  // in every log line about the call, and sent back as x-request-id
};

// The authenticated caller of the call `context` belongs to. Unauthenticated (or
// PermissionDenied) with the reason when the call's key is missing, unknown, revoked or lacks
// the method's role; every handler must answer with that status and do nothing else.
absl::StatusOr<Caller> CallerOf(const grpc::ServerContextBase& context);

// The caller's team (see CallerOf).
inline absl::StatusOr<std::string> CallerTeam(const grpc::ServerContextBase& context) {
  absl::StatusOr<Caller> caller = CallerOf(context);
  if (!caller.ok()) return caller.status();
  return caller->team;
}

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_CALLER_H_
