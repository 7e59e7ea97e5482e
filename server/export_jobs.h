// ExportJobs: a finished search's candidate exported as a compressed QDQ ONNX file and measured
// (DESIGN.md §5, §6). Resolve checks the request against state.db at once; Run does the work on
// the WorkQueue: load the stored model, calibrate on the search's calibration set (the uploaded
// samples, or the same synthetic ones), export with model/export.h, run it beside the original in
// ONNX Runtime (runtime/verify.h; latency too when the device is this machine, 'host', with its
// profile's threads), store the file in the blob store and the report in state.db. An export of
// the same model bytes, plan, calibration and options is answered from the stored file.
//
// Thread safe. Callbacks are called from a worker thread, one at a time per Run.
#ifndef SQUEEZE_SERVER_EXPORT_JOBS_H_
#define SQUEEZE_SERVER_EXPORT_JOBS_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "device_profiles/profile_store.h"
#include "model/export_flavour.h"
#include "model/loader.h"
#include "server/blob_store.h"
#include "server/export_request.h"
#include "server/state_store.h"
#include "server/work_queue.h"
#include "squeeze/v1/export.pb.h"
#include "squeeze/v1/search.pb.h"

namespace squeeze::server {

struct ExportJobsOptions {
  int calibration_samples = 2;  // synthetic samples when the search had none uploaded (as SearchJobs)
  int threads = 2;              // ONNX Runtime threads when the device profile does not say
  int latency_repeats = 10;
  model::ShapeProbe shape_probe;
  int64_t max_activation_bytes = 0;  // per model; 0: not checked (model::AnalyzeOptions)
};

// A request checked against the stored job: what to export.
struct ExportTarget {
  std::string team;
  JobRecord job;
  v1::SearchSpec spec;
  ModelRecord model;
  std::string device_id;
  int64_t device_version = 0;
  int device_threads = 1;
  model::ExportFlavour flavour = model::ExportFlavour::kOrtCpu;         // the request's, else the device's
  model::ExportFlavour device_flavour = model::ExportFlavour::kOrtCpu;  // the device runtime's
  v1::Candidate candidate;                                              // with its layers
  runtime::RangeMethod range_method = runtime::RangeMethod::kPercentile;
  std::string cache_key;
};

struct ExportResult {
  std::string bytes;
  v1::ExportReport report;
};

class ExportJobs {
 public:
  ExportJobs(StateStore& state, BlobStore& blobs, device_profiles::ProfileStore& profiles, WorkQueue& workers,
             ExportJobsOptions options);

  // NotFound for an unknown (or another team's) job, a device the job did not search, a candidate
  // index past the front or a recommendation no candidate carries; FailedPrecondition for a job
  // that has not succeeded; InvalidArgument for a flavour that does not write the candidate's
  // precisions. (A request from the wire is checked first: FromProto in server/proto_conversion.)
  absl::StatusOr<ExportTarget> Resolve(const std::string& team, const ExportRequest& request);

  using Progress = std::function<void(const v1::ExportProgress&)>;
  using Done = std::function<void(absl::StatusOr<ExportResult>)>;
  // Exports `target` on the work queue; `progress` as phases begin, then `done` once.
  // FailedPrecondition (with the reason) when the model cannot be exported with the plan.
  void Run(ExportTarget target, Progress progress, Done done);

  // Exports and measures, on the work queue, the recommended candidates of every front of the
  // team's succeeded job `job_id` (SearchSpec.verify_recommended); failures are logged.
  void VerifyRecommended(const std::string& team, const std::string& job_id);

  // Sets `measured` on the candidates of `job` (for `team`) that have been exported.
  absl::Status AttachMeasurements(const std::string& team, v1::SearchJob* job);

 private:
  absl::StatusOr<ExportResult> Execute(const ExportTarget& target, const Progress& progress);
  // The stored export of the same model bytes and plan, re-recorded for `target`; nullopt when
  // there is none or its file is lost.
  absl::StatusOr<std::optional<ExportResult>> FromStoredExport(const ExportTarget& target, const Progress& progress);

  StateStore& state_;
  BlobStore& blobs_;
  device_profiles::ProfileStore& profiles_;
  WorkQueue& workers_;
  const ExportJobsOptions options_;
};

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_EXPORT_JOBS_H_
