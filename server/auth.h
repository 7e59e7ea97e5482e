// Authentication and call logging for every RPC, in one gRPC server interceptor.
//
// Each call's `authorization: Bearer KEY` metadata is hashed and looked up in state.db on every
// call (one indexed read), so a key made or revoked by `squeezed keys` in another process works
// or stops at the next call. What a method needs is declared in one table (RequiredAccess): the
// health service and reflection are public, a few methods need an admin key, and every other
// method of every service (including ones added later) needs a member key of some team. The
// interceptor records the outcome for the handler (CallerOf in server/caller.h), gives the call a
// request id (the client's x-request-id when it sends a sane one), returns it as x-request-id,
// and logs one structured line per finished call.
#ifndef SQUEEZE_SERVER_AUTH_H_
#define SQUEEZE_SERVER_AUTH_H_

#include <grpcpp/support/server_interceptor.h>
#include <grpcpp/support/string_ref.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/caller.h"
#include "server/state_store.h"

namespace squeeze::server {

enum class Access { kPublic, kMember, kAdmin };

// What the fully qualified method ("/package.Service/Method") requires. Unlisted methods need a
// member key.
Access RequiredAccess(absl::string_view method);

class Authenticator {
 public:
  explicit Authenticator(StateStore& state) : state_(state) {}

  // The caller of a call with this metadata for a method needing `access` (not kPublic):
  // Unauthenticated when the key is missing, malformed, unknown or revoked; PermissionDenied
  // when an admin key is needed and this is a member's; Unavailable when state.db cannot be read.
  absl::StatusOr<Caller> Authenticate(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                                      absl::string_view method, Access access) const;

 private:
  StateStore& state_;
};

// The interceptor factory to install on the server builder. `auth` and `calls_in_flight` (the
// number of calls begun and not yet done, kept up to date here) must outlive the server.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewCallInterceptorFactory(
    const Authenticator& auth, std::atomic<int>* calls_in_flight);

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_AUTH_H_
