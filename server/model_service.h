// squeeze.v1.ModelService: uploads stream into the blob store while being hashed; the analysis
// runs on the worker arena, never on a gRPC thread; only a model that loads and analyses cleanly
// is committed (blob renamed into place, then its row inserted). Anything else leaves no blob,
// no row and no temporary file.
#ifndef SQUEEZE_SERVER_MODEL_SERVICE_H_
#define SQUEEZE_SERVER_MODEL_SERVICE_H_

#include <cstdint>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "model/loader.h"
#include "server/blob_store.h"
#include "server/caller.h"
#include "server/state_store.h"
#include "server/work_queue.h"
#include "squeeze/v1/model.grpc.pb.h"

namespace squeeze::server {

struct ModelServiceOptions {
  int64_t max_model_bytes = int64_t{1} << 30;
  model::ShapeProbe shape_probe;     // ONNX Runtime fallback for shapes inference cannot find
  int64_t max_ir_version = 0;        // newer models are refused (a stored model is one ONNX Runtime loads)
  int64_t max_activation_bytes = 0;  // per model at its input shapes (model::AnalyzeOptions); 0: not checked
  TeamQuota quota;                   // stored bytes per team; bytes still uploading count too
  // An upload that sends nothing for this long is ended (DEADLINE_EXCEEDED) and its bytes dropped.
  absl::Duration upload_idle_timeout = absl::Seconds(60);
};

class ModelService final : public v1::ModelService::CallbackService {
 public:
  ModelService(StateStore& state, BlobStore& blobs, WorkQueue& workers, ModelServiceOptions options);
  ~ModelService() override;

  grpc::ServerReadReactor<v1::UploadModelRequest>* UploadModel(grpc::CallbackServerContext* context,
                                                               v1::Model* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* context, const v1::GetModelRequest* request,
                                     v1::Model* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context, const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteModel(grpc::CallbackServerContext* context, const v1::DeleteModelRequest* request,
                                        v1::DeleteModelResponse* response) override;

 private:
  class UploadReactor;

  // Analyses the finished upload and commits it; runs on the worker arena.
  absl::StatusOr<v1::Model> CompleteUpload(const Caller& caller, const v1::UploadMetadata& metadata,
                                           BlobWriter& writer);
  // Holds `bytes` of the team's quota for one upload in flight (replacing what it held before);
  // ResourceExhausted when the team's stored bytes, its other uploads in flight and these would
  // pass the stored-bytes quota. Release(upload) gives the upload's bytes back.
  absl::Status Reserve(const UploadReactor* upload, const std::string& team, int64_t bytes);
  void Release(const UploadReactor* upload);
  // Ends uploads that have been idle for longer than options_.upload_idle_timeout.
  void WatchIdleUploads();

  StateStore& state_;
  BlobStore& blobs_;
  WorkQueue& workers_;
  const ModelServiceOptions options_;
  // Serializes blob commits and deletions with the rows that refer to them.
  absl::Mutex blob_mutex_;

  // Uploads in flight: the bytes each holds of its team's quota, and the ones the idle watch sees.
  absl::Mutex uploads_mutex_;
  struct Reservation {
    std::string team;
    int64_t bytes = 0;
  };
  absl::flat_hash_map<const UploadReactor*, Reservation> reserved_ ABSL_GUARDED_BY(uploads_mutex_);
  absl::flat_hash_set<UploadReactor*> reading_ ABSL_GUARDED_BY(uploads_mutex_);
  bool stopping_ ABSL_GUARDED_BY(uploads_mutex_) = false;
  std::thread idle_watch_;
};

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_MODEL_SERVICE_H_
