// squeeze.v1.ModelService: uploads stream into the blob store while being hashed; the analysis
// runs on the worker arena, never on a gRPC thread; only a model that loads and analyses cleanly
// is committed (blob renamed into place, then its row inserted). Anything else leaves no blob,
// no row and no temporary file.
#ifndef SQUEEZE_SERVER_MODEL_SERVICE_H_
#define SQUEEZE_SERVER_MODEL_SERVICE_H_

#include <cstdint>

#include "absl/synchronization/mutex.h"
#include "model/loader.h"
#include "server/blob_store.h"
#include "server/caller.h"
#include "server/state_store.h"
#include "server/work_queue.h"
#include "squeeze/v1/model.grpc.pb.h"

namespace squeeze::server {

struct ModelServiceOptions {
  int64_t max_model_bytes = int64_t{1} << 30;
  model::ShapeProbe shape_probe;  // ONNX Runtime fallback for shapes inference cannot find
  int64_t max_ir_version = 0;     // newer models are refused (a stored model is one ONNX Runtime loads)
  TeamQuota quota;                // stored bytes per team
};

class ModelService final : public v1::ModelService::CallbackService {
 public:
  ModelService(StateStore& state, BlobStore& blobs, WorkQueue& workers, ModelServiceOptions options)
      : state_(state), blobs_(blobs), workers_(workers), options_(std::move(options)) {}

  grpc::ServerReadReactor<v1::UploadModelRequest>* UploadModel(grpc::CallbackServerContext* context,
                                                               v1::Model* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* context, const v1::GetModelRequest* request,
                                     v1::Model* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteModel(grpc::CallbackServerContext* context,
                                        const v1::DeleteModelRequest* request,
                                        v1::DeleteModelResponse* response) override;

 private:
  class UploadReactor;

  // Analyses the finished upload and commits it; runs on the worker arena.
  absl::StatusOr<v1::Model> CompleteUpload(const Caller& caller, const v1::UploadMetadata& metadata,
                                           BlobWriter& writer);
  // ResourceExhausted when `incoming` more bytes would take the team past its stored-bytes quota.
  absl::Status CheckStoredBytes(const std::string& team, int64_t incoming);

  StateStore& state_;
  BlobStore& blobs_;
  WorkQueue& workers_;
  const ModelServiceOptions options_;
  // Serializes blob commits and deletions with the rows that refer to them.
  absl::Mutex blob_mutex_;
};

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_MODEL_SERVICE_H_
