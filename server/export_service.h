// squeeze.v1.ExportService: a search candidate as the compressed ONNX file, streamed. The handler
// resolves the request at once (bad input never waits) and hands the export to ExportJobs, whose
// worker thread feeds this call's stream: progress, the file in 1 MiB chunks, the report.
#ifndef SQUEEZE_SERVER_EXPORT_SERVICE_H_
#define SQUEEZE_SERVER_EXPORT_SERVICE_H_

#include "server/export_jobs.h"
#include "squeeze/v1/export.grpc.pb.h"

namespace squeeze::server {

class ExportService final : public v1::ExportService::CallbackService {
 public:
  explicit ExportService(ExportJobs& jobs) : jobs_(jobs) {}

  grpc::ServerWriteReactor<v1::ExportChunk>* ExportModel(grpc::CallbackServerContext* context,
                                                         const v1::ExportRequest* request) override;

 private:
  class Reactor;
  ExportJobs& jobs_;
};

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_EXPORT_SERVICE_H_
