#include "client/connection.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

namespace squeeze::client {

std::string DefaultServer() {
  const char* env = std::getenv("SQUEEZE_SERVER");
  return env && *env ? env : "127.0.0.1:50051";
}

std::string FromEnvironment(const char* name) {
  const char* env = std::getenv(name);
  return env ? env : "";
}

namespace {

std::shared_ptr<grpc::ChannelCredentials> CredentialsFor(const GlobalOptions& options) {
  if (options.ca_cert.empty() && !options.tls) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  if (!options.ca_cert.empty()) {
    std::ifstream in(options.ca_cert);
    std::stringstream pem;
    pem << in.rdbuf();
    if (!in || pem.str().empty()) {
      std::cerr << "squeeze: cannot read --ca-cert " << options.ca_cert << "\n";
      std::exit(2);
    }
    ssl.pem_root_certs = pem.str();
  }
  return grpc::SslCredentials(ssl);
}

constexpr int kMaxReceiveBytes = 64 << 20;

std::shared_ptr<grpc::Channel> ChannelFor(const GlobalOptions& options) {
  grpc::ChannelArguments args;
  if (!options.tls_server_name.empty()) args.SetSslTargetNameOverride(options.tls_server_name);
  // A search result carries every candidate with its per-layer plan: take what the server may send
  // (squeezed --max-message-bytes, 16 MiB by default) and some room, not gRPC's 4 MiB default.
  args.SetMaxReceiveMessageSize(kMaxReceiveBytes);
  return grpc::CreateCustomChannel(options.server, CredentialsFor(options), args);
}

}  // namespace

Connection::Connection(const GlobalOptions& options) : options_(options), channel_(ChannelFor(options)) {}

void Connection::Authorize(grpc::ClientContext& context) const {
  if (!options_.api_key.empty()) context.AddMetadata("authorization", "Bearer " + options_.api_key);
}

std::unique_ptr<grpc::ClientContext> Connection::NewContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  Authorize(*context);
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(options_.timeout_s * 1000)));
  return context;
}

int Connection::Fail(const grpc::Status& status, const std::string& what) const {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    std::cerr << "squeeze: cannot reach squeezed at " << options_.server << " (" << status.error_message()
              << "). Start it with 'squeezed --data-dir DIR', or point --server or SQUEEZE_SERVER at it.\n";
    return 2;
  }
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    std::cerr << "squeeze: " << what << ": no answer from " << options_.server << " within " << options_.timeout_s
              << " s; raise --timeout or check the server's log.\n";
    return 2;
  }
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED && options_.api_key.empty()) {
    std::cerr << "squeeze: " << what << ": UNAUTHENTICATED: no API key given: pass --api-key KEY or set "
              << "SQUEEZE_API_KEY (a new server writes its first admin key to DATA_DIR/initial-api-key).\n";
    return 1;
  }
  static const char* kNames[] = {
      "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  const int code = static_cast<int>(status.error_code());
  std::cerr << "squeeze: " << what << ": " << (code >= 0 && code <= 16 ? kNames[code] : "ERROR") << ": "
            << status.error_message() << "\n";
  return 1;
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

}  // namespace squeeze::client
