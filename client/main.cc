// squeeze: the command-line client of squeezed.
#include <CLI/CLI.hpp>

#include "client/commands.h"
#include "client/connection.h"

int main(int argc, char** argv) {
  squeeze::client::GlobalOptions options;
  options.server = squeeze::client::DefaultServer();
  CLI::App app{"squeeze: find the Pareto-optimal ways to compress a model for each target device.\n"
               "Talks to a squeezed server (see 'squeezed --help')."};
  app.fallthrough();
  app.require_subcommand(1);
  app.add_option("--server", options.server, "squeezed address HOST:PORT (default: $SQUEEZE_SERVER or 127.0.0.1:50051)");
  app.add_option("--timeout", options.timeout_s, "Deadline of each call, in seconds")->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--json", options.json, "Print results in protobuf's JSON mapping");

  int exit_code = 0;
  squeeze::client::AddDevicesCommands(app, options, &exit_code);
  squeeze::client::AddModelsCommands(app, options, &exit_code);
  squeeze::client::AddSearchCommands(app, options, &exit_code);
  squeeze::client::AddRecommendCommand(app, options, &exit_code);
  squeeze::client::AddExportCommand(app, options, &exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
