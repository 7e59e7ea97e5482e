// The squeeze CLI's command groups. Each Add*Commands registers its subcommands on `app`; a
// subcommand's callback runs the RPCs and stores the process exit code in `*exit_code`.
#ifndef SQUEEZE_CLIENT_COMMANDS_H_
#define SQUEEZE_CLIENT_COMMANDS_H_

#include <CLI/CLI.hpp>

#include "client/connection.h"

namespace squeeze::client {

void AddDevicesCommands(CLI::App& app, const GlobalOptions& options, int* exit_code);
void AddModelsCommands(CLI::App& app, const GlobalOptions& options, int* exit_code);
void AddSearchCommands(CLI::App& app, const GlobalOptions& options, int* exit_code);
void AddRecommendCommand(CLI::App& app, const GlobalOptions& options, int* exit_code);
void AddExportCommand(CLI::App& app, const GlobalOptions& options, int* exit_code);
// squeeze server status; squeeze health; squeeze keys create | list | revoke (admin keys).
void AddServerCommands(CLI::App& app, const GlobalOptions& options, int* exit_code);
// Local commands, no server: making calibration samples.
void AddCalibrationCommands(CLI::App& app, int* exit_code);

}  // namespace squeeze::client

#endif  // SQUEEZE_CLIENT_COMMANDS_H_
