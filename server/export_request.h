// What a user asks to export, as the export core takes it (server/export_jobs.h); the wire's
// squeeze.v1.ExportRequest becomes one in server/proto_conversion.
#ifndef SQUEEZE_SERVER_EXPORT_REQUEST_H_
#define SQUEEZE_SERVER_EXPORT_REQUEST_H_

#include <optional>
#include <string>

#include "model/export_flavour.h"
#include "runtime/verify.h"

namespace squeeze::server {

// What to export: a candidate of a succeeded search's front for one of its devices, by its index
// on the front or by a name it is recommended under.
struct ExportRequest {
  std::string job_id;
  std::string device_id;
  std::optional<int> candidate;                 // else `recommendation`
  std::string recommendation;                   // "fastest", "smallest", "most accurate", "balanced knee"
  std::optional<model::ExportFlavour> flavour;  // else the device runtime's
  runtime::RangeMethod range_method = runtime::RangeMethod::kPercentile;
};

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_EXPORT_REQUEST_H_
