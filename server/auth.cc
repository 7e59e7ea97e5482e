#include "server/auth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/sha256.h"
#include "google/protobuf/descriptor.h"

namespace squeeze::server {
namespace {

// The one table of what each method needs; a method that is not here needs a member key. A new
// RPC that only a server admin may call adds its line here.
constexpr struct {
  const char* method;  // a full method name, or a service prefix ending in '/'
  Access access;
} kAccessTable[] = {
    {"/grpc.health.v1.Health/", Access::kPublic},
    {"/grpc.reflection.v1alpha.ServerReflection/", Access::kPublic},
    {"/grpc.reflection.v1.ServerReflection/", Access::kPublic},
    {"/squeeze.v1.DeviceService/PutDeviceProfile", Access::kAdmin},
    {"/squeeze.v1.ServerService/CreateApiKey", Access::kAdmin},
    {"/squeeze.v1.ServerService/ListApiKeys", Access::kAdmin},
    {"/squeeze.v1.ServerService/RevokeApiKey", Access::kAdmin},
};

constexpr char kKeyHelp[] =
    "pass --api-key KEY or set SQUEEZE_API_KEY (gRPC metadata 'authorization: Bearer KEY'); a new "
    "server writes its first admin key to DATA_DIR/initial-api-key and 'squeezed keys create' makes more";

// Outcomes of authentication for the calls in flight, by server context. Each entry carries the
// serial of the call that made it, so a context address reused by a later call is never confused
// with an earlier one.
struct Entry {
  uint64_t serial = 0;
  absl::StatusOr<Caller> caller;
};

class Registry {
 public:
  void Put(const void* context, uint64_t serial, absl::StatusOr<Caller> caller) {
    absl::MutexLock lock(&mutex_);
    entries_[context] = Entry{serial, std::move(caller)};
  }
  void Erase(const void* context, uint64_t serial) {
    absl::MutexLock lock(&mutex_);
    auto it = entries_.find(context);
    if (it != entries_.end() && it->second.serial == serial) entries_.erase(it);
  }
  absl::StatusOr<Caller> Get(const void* context) {
    absl::MutexLock lock(&mutex_);
    auto it = entries_.find(context);
    if (it == entries_.end()) {
      return absl::UnauthenticatedError(absl::StrCat("this call carries no API key: ", kKeyHelp));
    }
    return it->second.caller;
  }

 private:
  absl::Mutex mutex_;
  std::unordered_map<const void*, Entry> entries_ ABSL_GUARDED_BY(mutex_);
};

Registry& Calls() {
  static Registry* registry = new Registry();
  return *registry;
}

const char* CodeName(grpc::StatusCode code) {
  static const char* kNames[] = {
      "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i <= 16 ? kNames[i] : "UNKNOWN";
}

// A client's request id is kept when it is short and plain; otherwise the server makes one.
bool SaneRequestId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
          c == '.')) {
      return false;
    }
  }
  return true;
}

// "/squeeze.v1.ModelService/GetModel" -> what a person can act on when its request bytes did not parse.
std::string UnparsableRequestMessage(absl::string_view method) {
  std::string full_name(method.substr(method.empty() ? 0 : 1));
  std::replace(full_name.begin(), full_name.end(), '/', '.');
  const google::protobuf::MethodDescriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(full_name);
  const std::string type = descriptor ? descriptor->input_type()->full_name() : "the method's request message";
  return absl::StrCat("the request to ", common::Printable(method, 200), " could not be parsed as ", type,
                      "; send it with the squeeze client or code generated from proto/squeeze/v1/*.proto");
}

std::atomic<uint64_t> next_serial{1};

class CallInterceptor final : public grpc::experimental::Interceptor {
 public:
  CallInterceptor(grpc::experimental::ServerRpcInfo* info, const Authenticator& auth, std::atomic<int>* calls_in_flight)
      : info_(info),
        auth_(auth),
        calls_in_flight_(calls_in_flight),
        method_(info->method() ? info->method() : ""),
        access_(RequiredAccess(method_)),
        serial_(next_serial++),
        start_(std::chrono::steady_clock::now()) {
    ++*calls_in_flight_;
  }

  ~CallInterceptor() override {
    Calls().Erase(info_->server_context(), serial_);
    --*calls_in_flight_;
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      const auto* metadata = methods->GetRecvInitialMetadata();
      auto id = metadata->find("x-request-id");
      if (id != metadata->end() && SaneRequestId(absl::string_view(id->second.data(), id->second.size()))) {
        request_id_ = std::string(id->second.data(), id->second.size());
      } else {
        request_id_ = absl::StrCat("r-", common::RandomHex(6));
      }
      if (access_ != Access::kPublic) {
        absl::StatusOr<Caller> caller = auth_.Authenticate(*metadata, method_, access_);
        if (caller.ok()) {
          caller->request_id = request_id_;
          team_ = caller->team;
          key_id_ = caller->key_id;
        }
        Calls().Put(info_->server_context(), serial_, std::move(caller));
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      if (!request_id_.empty()) methods->GetSendInitialMetadata()->emplace("x-request-id", request_id_);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) && access_ != Access::kPublic) {
      grpc::Status status = methods->GetSendStatus();
      // gRPC answers a request it could not deserialize with UNIMPLEMENTED and no message; no
      // squeeze handler ever answers UNIMPLEMENTED, so say what happened.
      if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED && status.error_message().empty()) {
        status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, UnparsableRequestMessage(method_));
        methods->ModifySendStatus(status);
      }
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
      const std::string line =
          fmt::format("rpc method={} request_id={} team={} key={} code={} ms={:.1f}{}", method_, request_id_,
                      team_.empty() ? "-" : team_, key_id_.empty() ? "-" : key_id_, CodeName(status.error_code()), ms,
                      status.ok() ? "" : fmt::format(" error=\"{}\"", status.error_message()));
      if (status.ok() || status.error_code() == grpc::StatusCode::CANCELLED) {
        common::LogInfo("{}", line);
      } else {
        common::LogWarning("{}", line);
      }
    }
    methods->Proceed();
  }

 private:
  grpc::experimental::ServerRpcInfo* info_;
  const Authenticator& auth_;
  std::atomic<int>* calls_in_flight_;
  const std::string method_;
  const Access access_;
  const uint64_t serial_;
  const std::chrono::steady_clock::time_point start_;
  std::string request_id_, team_, key_id_;
};

class CallInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  CallInterceptorFactory(const Authenticator& auth, std::atomic<int>* calls_in_flight)
      : auth_(auth), calls_in_flight_(calls_in_flight) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    return new CallInterceptor(info, auth_, calls_in_flight_);
  }

 private:
  const Authenticator& auth_;
  std::atomic<int>* calls_in_flight_;
};

}  // namespace

Access RequiredAccess(absl::string_view method) {
  for (const auto& entry : kAccessTable) {
    absl::string_view pattern = entry.method;
    if (pattern.back() == '/' ? absl::StartsWith(method, pattern) : method == pattern) return entry.access;
  }
  return Access::kMember;
}

absl::StatusOr<Caller> Authenticator::Authenticate(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                                                   absl::string_view method, Access access) const {
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return absl::UnauthenticatedError(absl::StrCat("this call carries no API key: ", kKeyHelp));
  }
  absl::string_view value(it->second.data(), it->second.size());
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWithIgnoreCase(value, kBearer) || value.size() == kBearer.size()) {
    return absl::UnauthenticatedError(
        "the authorization metadata is not 'Bearer KEY'; pass the key with --api-key or SQUEEZE_API_KEY");
  }
  absl::string_view key = value.substr(kBearer.size());
  absl::StatusOr<ApiKeyRecord> record = state_.LookupApiKey(common::Sha256Hex(key));
  if (absl::IsNotFound(record.status())) {
    return absl::UnauthenticatedError(absl::StrCat("the API key '", key.substr(0, 12),
                                                   "...' is unknown or revoked; ask your server's admin for a key "
                                                   "('squeezed keys create' or 'squeeze keys create')"));
  }
  if (!record.ok()) {
    return absl::UnavailableError(absl::StrCat("cannot check the API key now: ", record.status().message()));
  }
  if (access == Access::kAdmin && record->role != Role::kAdmin) {
    return absl::PermissionDeniedError(
        absl::StrCat(method, " needs an admin key; key ", record->id, " is a member key of team '", record->team, "'"));
  }
  Caller caller;
  caller.team = record->team;
  caller.role = record->role;
  caller.key_id = record->id;
  return caller;
}

absl::StatusOr<Caller> CallerOf(const grpc::ServerContextBase& context) { return Calls().Get(&context); }

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewCallInterceptorFactory(
    const Authenticator& auth, std::atomic<int>* calls_in_flight) {
  return std::make_unique<CallInterceptorFactory>(auth, calls_in_flight);
}

}  // namespace squeeze::server
