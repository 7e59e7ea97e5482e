// squeeze server status; squeeze keys create | list | revoke
#include <fmt/format.h>
#include <grpcpp/generic/generic_stub.h>

#include <condition_variable>
#include <iostream>
#include <mutex>

#include "client/commands.h"
#include "client/table.h"
#include "squeeze/v1/server.grpc.pb.h"

namespace squeeze::client {
namespace {

const char* RoleName(v1::KeyRole role) { return role == v1::KEY_ROLE_ADMIN ? "admin" : "member"; }

int Status(const Connection& connection) {
  auto stub = v1::ServerService::NewStub(connection.channel());
  v1::ServerStatus status;
  grpc::Status rpc = stub->GetServerStatus(connection.NewContext().get(), v1::GetServerStatusRequest(), &status);
  if (!rpc.ok()) return connection.Fail(rpc, "server status");
  if (connection.options().json) {
    std::cout << ToJson(status);
    return 0;
  }
  Table table({"FIELD", "VALUE"});
  table.AddRow({"server", connection.options().server});
  table.AddRow({"version", status.version()});
  table.AddRow({"uptime", fmt::format("{} (since {})", FormatDuration(status.uptime_seconds()), status.started_at())});
  table.AddRow({"tls", status.tls() ? "on" : "off"});
  table.AddRow({"you", fmt::format("team '{}' ({})", status.team(), status.role())});
  table.AddRow({"jobs running", std::to_string(status.jobs_running())});
  table.AddRow({"jobs queued", std::to_string(status.jobs_queued())});
  table.AddRow({"jobs finished", fmt::format("{} succeeded, {} failed, {} cancelled", status.jobs_succeeded(),
                                             status.jobs_failed(), status.jobs_cancelled())});
  table.AddRow(
      {"search queue", fmt::format("{} running, {} queued on {} worker threads (fair between teams)",
                                   status.searches_running(), status.searches_queued(), status.worker_threads())});
  table.AddRow(
      {"search memory", status.search_memory_budget_bytes() > 0
                            ? fmt::format("{} estimated in use of a {} budget (squeezed --search-memory)",
                                          FormatBytes(static_cast<double>(status.search_memory_estimated_bytes())),
                                          FormatBytes(static_cast<double>(status.search_memory_budget_bytes())))
                            : fmt::format("{} estimated in use, no budget",
                                          FormatBytes(static_cast<double>(status.search_memory_estimated_bytes())))});
  table.AddRow({"upload queue",
                fmt::format("{} pending on {} threads", status.upload_queue_pending(), status.upload_threads())});
  table.Print(std::cout);
  return 0;
}

int CreateKey(const Connection& connection, const std::string& team, bool admin) {
  auto stub = v1::ServerService::NewStub(connection.channel());
  v1::CreateApiKeyRequest request;
  request.set_team(team);
  request.set_role(admin ? v1::KEY_ROLE_ADMIN : v1::KEY_ROLE_MEMBER);
  v1::CreateApiKeyResponse response;
  grpc::Status rpc = stub->CreateApiKey(connection.NewContext().get(), request, &response);
  if (!rpc.ok()) return connection.Fail(rpc, "keys create");
  if (connection.options().json) {
    std::cout << ToJson(response);
    return 0;
  }
  std::cout << "API key " << response.key().id() << " for team '" << response.key().team() << "' ("
            << RoleName(response.key().role()) << "); it is shown only now and stored only as a hash:\n"
            << response.secret() << "\n";
  return 0;
}

int ListKeys(const Connection& connection) {
  auto stub = v1::ServerService::NewStub(connection.channel());
  v1::ListApiKeysResponse response;
  grpc::Status rpc = stub->ListApiKeys(connection.NewContext().get(), v1::ListApiKeysRequest(), &response);
  if (!rpc.ok()) return connection.Fail(rpc, "keys list");
  if (connection.options().json) {
    std::cout << ToJson(response);
    return 0;
  }
  Table table({"ID", "TEAM", "ROLE", "PREFIX", "CREATED", "REVOKED"});
  for (const v1::ApiKey& k : response.keys()) {
    table.AddRow({k.id(), k.team(), RoleName(k.role()), k.prefix(), k.created_at(),
                  k.revoked_at().empty() ? "-" : k.revoked_at()});
  }
  table.Print(std::cout);
  return 0;
}

int RevokeKey(const Connection& connection, const std::string& id) {
  auto stub = v1::ServerService::NewStub(connection.channel());
  v1::RevokeApiKeyRequest request;
  request.set_id(id);
  v1::ApiKey key;
  grpc::Status rpc = stub->RevokeApiKey(connection.NewContext().get(), request, &key);
  if (!rpc.ok()) return connection.Fail(rpc, "keys revoke");
  if (connection.options().json) {
    std::cout << ToJson(key);
    return 0;
  }
  std::cout << "revoked " << key.id() << " (team '" << key.team() << "', " << RoleName(key.role()) << ")\n";
  return 0;
}

// The standard grpc.health.v1.Health/Check, which needs no key: exit 0 when SERVING.
int Health(const Connection& connection) {
  grpc::GenericStub stub(connection.channel());
  auto context = connection.NewContext();
  grpc::ByteBuffer request, response;
  grpc::Slice empty("", 0);
  request = grpc::ByteBuffer(&empty, 1);
  std::mutex mutex;
  std::condition_variable done;
  bool finished = false;
  grpc::Status status;
  stub.UnaryCall(context.get(), "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   std::lock_guard<std::mutex> lock(mutex);
                   status = s;
                   finished = true;
                   done.notify_one();
                 });
  {
    std::unique_lock<std::mutex> lock(mutex);
    done.wait(lock, [&] { return finished; });
  }
  if (!status.ok()) return connection.Fail(status, "health");
  // HealthCheckResponse { ServingStatus status = 1; }: SERVING (1) is the two bytes 08 01.
  std::vector<grpc::Slice> slices;
  (void)response.Dump(&slices);
  std::string bytes;
  for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  const bool serving = bytes == std::string("\x08\x01", 2);
  std::cout << (serving ? "SERVING" : "NOT_SERVING") << "\n";
  return serving ? 0 : 1;
}

}  // namespace

void AddServerCommands(CLI::App& app, const GlobalOptions& options, int* exit_code) {
  CLI::App* server = app.add_subcommand("server", "The server itself");
  server->require_subcommand(1);
  CLI::App* status = server->add_subcommand("status", "Version, uptime, jobs and queue of the server");
  status->callback([&options, exit_code] { *exit_code = Status(Connection(options)); });
  CLI::App* health = app.add_subcommand(
      "health", "Ask the standard gRPC health service (no key needed): exit 0 when SERVING; for probes");
  health->callback([&options, exit_code] { *exit_code = Health(Connection(options)); });

  CLI::App* keys = app.add_subcommand("keys", "API keys of every team (needs an admin key)");
  keys->require_subcommand(1);
  auto team = std::make_shared<std::string>();
  auto admin = std::make_shared<bool>(false);
  auto id = std::make_shared<std::string>();
  CLI::App* create = keys->add_subcommand("create", "Make a key for a team (created when new); prints the key last");
  create->add_option("--team", *team, "Team the key belongs to (a-z, 0-9, '-', '_')")->required();
  create->add_flag("--admin", *admin, "An admin key: manages keys of every team and puts device profiles");
  create->callback([&options, exit_code, team, admin] { *exit_code = CreateKey(Connection(options), *team, *admin); });
  CLI::App* list = keys->add_subcommand("list", "List every key (never the keys themselves)");
  list->callback([&options, exit_code] { *exit_code = ListKeys(Connection(options)); });
  CLI::App* revoke = keys->add_subcommand("revoke", "Revoke a key: calls with it fail from now on");
  revoke->add_option("ID", *id, "The key's id (k-...)")->required();
  revoke->callback([&options, exit_code, id] { *exit_code = RevokeKey(Connection(options), *id); });
}

}  // namespace squeeze::client
