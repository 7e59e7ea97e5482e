// Who is calling: the team every RPC acts for.
#ifndef SQUEEZE_SERVER_CALLER_H_
#define SQUEEZE_SERVER_CALLER_H_

#include <grpcpp/server_context.h>

#include <string>

#include "server/state_store.h"

namespace squeeze::server {

// The caller's team. The server has one team until API keys exist; every row is already keyed
// by team so isolation needs no migration then.
inline std::string CallerTeam(const grpc::CallbackServerContext& context) { return kDefaultTeam; }

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_CALLER_H_
