// How the CLI talks to squeezed: one channel, a deadline on every call, and errors turned into a
// single line a person can act on.
#ifndef SQUEEZE_CLIENT_CONNECTION_H_
#define SQUEEZE_CLIENT_CONNECTION_H_

#include <google/protobuf/message.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <chrono>
#include <memory>
#include <string>

namespace squeeze::client {

struct GlobalOptions {
  std::string server;     // HOST:PORT
  double timeout_s = 30;  // deadline of each call
  bool json = false;
  std::string api_key;          // sent as 'authorization: Bearer KEY' on every call
  std::string ca_cert;          // PEM file of the CA that signed the server's certificate: TLS
  bool tls = false;             // TLS with the system's CA certificates
  std::string tls_server_name;  // the name the server's certificate must carry, when not the --server host
};

// The server address: the flag when given, else $SQUEEZE_SERVER, else 127.0.0.1:50051.
std::string DefaultServer();
// $NAME, or empty.
std::string FromEnvironment(const char* name);

class Connection {
 public:
  explicit Connection(const GlobalOptions& options);

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  // A context whose deadline is the --timeout from now, carrying the API key.
  std::unique_ptr<grpc::ClientContext> NewContext() const;
  // Adds the API key to a context made elsewhere (e.g. one without a deadline).
  void Authorize(grpc::ClientContext& context) const;
  // Prints the failed call's status as one line on stderr and returns the process exit code:
  // 2 when the server could not be reached, 1 otherwise.
  int Fail(const grpc::Status& status, const std::string& what) const;
  const GlobalOptions& options() const { return options_; }

 private:
  GlobalOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
};

// The message in protobuf's JSON mapping, indented, with fields at their defaults included.
std::string ToJson(const google::protobuf::Message& message);

}  // namespace squeeze::client

#endif  // SQUEEZE_CLIENT_CONNECTION_H_
