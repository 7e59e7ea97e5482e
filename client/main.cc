// squeeze: the command-line client of squeezed.
#include <CLI/CLI.hpp>

#include "client/commands.h"
#include "client/connection.h"

int main(int argc, char** argv) {
  squeeze::client::GlobalOptions options;
  options.server = squeeze::client::DefaultServer();
  options.api_key = squeeze::client::FromEnvironment("SQUEEZE_API_KEY");
  options.ca_cert = squeeze::client::FromEnvironment("SQUEEZE_CA_CERT");
  CLI::App app{
      "squeeze: find the Pareto-optimal ways to compress a model for each target device.\n"
      "Talks to a squeezed server (see 'squeezed --help')."};
  app.fallthrough();
  app.require_subcommand(1);
  app.add_option("--server", options.server,
                 "squeezed address HOST:PORT (default: $SQUEEZE_SERVER or 127.0.0.1:50051)");
  app.add_option("--timeout", options.timeout_s, "Deadline of each call, in seconds")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--json", options.json, "Print results in protobuf's JSON mapping");
  app.add_option("--api-key", options.api_key, "API key of your team (default: $SQUEEZE_API_KEY)");
  app.add_option("--ca-cert", options.ca_cert,
                 "Use TLS, trusting the CA certificate in this PEM file (default: $SQUEEZE_CA_CERT)");
  app.add_flag("--tls", options.tls, "Use TLS, trusting the system's CA certificates");
  app.add_option("--tls-server-name", options.tls_server_name,
                 "Name the server's certificate must carry when it is not the --server host");

  int exit_code = 0;
  squeeze::client::AddDevicesCommands(app, options, &exit_code);
  squeeze::client::AddModelsCommands(app, options, &exit_code);
  squeeze::client::AddSearchCommands(app, options, &exit_code);
  squeeze::client::AddRecommendCommand(app, options, &exit_code);
  squeeze::client::AddExportCommand(app, options, &exit_code);
  squeeze::client::AddServerCommands(app, options, &exit_code);
  squeeze::client::AddCalibrationCommands(app, &exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
