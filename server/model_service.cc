#include "server/model_service.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/log.h"
#include "model/channel_pruning.h"
#include "model/output_weights.h"
#include "server/caller.h"
#include "server/proto_conversion.h"
#include "server/search_spec.h"
#include "server/status.h"

namespace squeeze::server {
namespace {

std::string Mebibytes(int64_t bytes) { return absl::StrCat(bytes / (1 << 20), " MiB"); }

absl::Status TooLarge(int64_t size, int64_t limit) {
  return absl::ResourceExhaustedError(absl::StrCat("the model is ", size, " bytes, over this server's limit of ", limit,
                                                   " bytes (", Mebibytes(limit),
                                                   "); ask the operator to raise squeezed --max-model-bytes"));
}

}  // namespace

// One upload: metadata first, then chunks appended to a blob writer; at the end of the stream the
// analysis and commit are handed to the worker arena, which finishes the call. While it reads, the
// upload holds its bytes (declared or received, whichever is more) of the team's quota, and the
// idle watch may end it; exactly one of the two finishes the call.
class ModelService::UploadReactor final : public grpc::ServerReadReactor<v1::UploadModelRequest> {
 public:
  UploadReactor(ModelService& service, grpc::CallbackServerContext* context, v1::Model* response)
      : service_(service), context_(context), response_(response) {
    absl::StatusOr<Caller> caller = CallerOf(*context);
    if (!caller.ok()) {
      FinishOnce(ToGrpcStatus(caller.status()));
      return;
    }
    caller_ = *std::move(caller);
    Touch();
    {
      absl::MutexLock lock(&service_.uploads_mutex_);
      service_.reading_.insert(this);
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    Touch();
    if (finished_.load()) {  // the idle watch ended the call while this read was pending
      writer_.reset();
      return;
    }
    if (!ok) {
      StopReading();
      if (context_->IsCancelled()) {
        writer_.reset();
        FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "upload cancelled by the client"));
        return;
      }
      EndOfStream();
      return;
    }
    absl::Status status = Consume();
    if (!status.ok()) {
      StopReading();
      writer_.reset();
      FinishOnce(ToGrpcStatus(status));
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override {
    StopReading();
    service_.Release(this);
    delete this;
  }

  // The idle watch's verdict; called with uploads_mutex_ held. True when this call takes the
  // right to finish the call (the watch then calls EndIdle outside the lock).
  bool ClaimIdle(absl::Time now, absl::Duration timeout) {
    if (now - absl::FromUnixNanos(last_activity_ns_.load()) < timeout) return false;
    return !finished_.exchange(true);
  }
  void EndIdle(absl::Duration timeout) {
    Finish(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        absl::StrCat("the upload sent nothing for ", absl::FormatDuration(timeout),
                                     " (squeezed --upload-idle-timeout); the ", received_.load(),
                                     " bytes it sent were dropped: upload the model again")));
  }

 private:
  void Touch() { last_activity_ns_.store(absl::ToUnixNanos(absl::Now())); }
  void StopReading() {
    absl::MutexLock lock(&service_.uploads_mutex_);
    service_.reading_.erase(this);
  }
  void FinishOnce(grpc::Status status) {
    if (!finished_.exchange(true)) Finish(std::move(status));
  }

  absl::Status Consume() {
    if (request_.has_metadata()) {
      if (has_metadata_) return absl::InvalidArgumentError("the upload sent its metadata twice");
      has_metadata_ = true;
      metadata_ = request_.metadata();
      if (absl::Status s = ValidateUploadMetadata(metadata_, service_.options_.max_model_bytes); !s.ok()) return s;
      if (absl::Status s = service_.Reserve(this, caller_.team, metadata_.size_bytes()); !s.ok()) return s;
      absl::StatusOr<std::unique_ptr<BlobWriter>> writer = service_.blobs_.NewWriter();
      if (!writer.ok()) return writer.status();
      writer_ = *std::move(writer);
      return absl::OkStatus();
    }
    if (!has_metadata_) {
      return absl::InvalidArgumentError("the upload must start with a metadata message (name, input shapes)");
    }
    const std::string& chunk = request_.chunk();
    const int64_t total = writer_->size() + static_cast<int64_t>(chunk.size());
    if (total > service_.options_.max_model_bytes) return TooLarge(total, service_.options_.max_model_bytes);
    // The declared size is a hint; the quota is held again for the bytes that really came.
    if (total > metadata_.size_bytes()) {
      if (absl::Status s = service_.Reserve(this, caller_.team, total); !s.ok()) return s;
    }
    if (absl::Status s = writer_->Append(chunk); !s.ok()) return s;
    received_.store(writer_->size());
    return absl::OkStatus();
  }

  void EndOfStream() {
    if (!has_metadata_) {
      FinishOnce(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              "the upload sent no message that parsed as squeeze.v1.UploadModelRequest: no "
                              "metadata, no bytes (send the metadata first, then the file in chunks)"));
      return;
    }
    if (writer_->size() == 0) {
      writer_.reset();
      FinishOnce(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the file is empty: no model bytes were sent"));
      return;
    }
    if (metadata_.size_bytes() > 0 && writer_->size() != metadata_.size_bytes()) {
      const int64_t received = writer_->size();
      writer_.reset();
      FinishOnce(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                       absl::StrCat("the upload ended after ", received, " of the ", metadata_.size_bytes(),
                                    " bytes its metadata announced (a cut stream, or a message that did not parse): "
                                    "nothing was stored; upload the model again")));
      return;
    }
    if (finished_.exchange(true)) return;  // the idle watch was first
    service_.workers_.Submit([this] {
      absl::StatusOr<v1::Model> model = service_.CompleteUpload(caller_, metadata_, *writer_);
      writer_.reset();  // deletes the temporary file unless it became a blob
      if (!model.ok()) {
        common::LogInfo("upload of '{}' refused: {} request_id={}", metadata_.name(), model.status().ToString(),
                        caller_.request_id);
        Finish(ToGrpcStatus(model.status()));
        return;
      }
      *response_ = *std::move(model);
      Finish(grpc::Status::OK);
    });
  }

  ModelService& service_;
  grpc::CallbackServerContext* context_;
  v1::Model* response_;
  Caller caller_;
  v1::UploadModelRequest request_;
  bool has_metadata_ = false;
  v1::UploadMetadata metadata_;
  std::unique_ptr<BlobWriter> writer_;
  std::atomic<bool> finished_{false};
  std::atomic<int64_t> last_activity_ns_{0};
  std::atomic<int64_t> received_{0};
};

ModelService::ModelService(StateStore& state, BlobStore& blobs, WorkQueue& workers, ModelServiceOptions options)
    : state_(state), blobs_(blobs), workers_(workers), options_(std::move(options)) {
  idle_watch_ = std::thread([this] { WatchIdleUploads(); });
}

ModelService::~ModelService() {
  {
    absl::MutexLock lock(&uploads_mutex_);
    stopping_ = true;
  }
  idle_watch_.join();
}

void ModelService::WatchIdleUploads() {
  const absl::Duration timeout = options_.upload_idle_timeout;
  const absl::Duration period = std::clamp(timeout / 4, absl::Milliseconds(50), absl::Seconds(1));
  absl::MutexLock lock(&uploads_mutex_);
  while (!stopping_) {
    uploads_mutex_.AwaitWithTimeout(absl::Condition(&stopping_), period);
    if (stopping_) break;
    std::vector<UploadReactor*> idle;
    const absl::Time now = absl::Now();
    for (UploadReactor* upload : reading_) {
      if (upload->ClaimIdle(now, timeout)) idle.push_back(upload);
    }
    for (UploadReactor* upload : idle) reading_.erase(upload);
    // A claimed upload is not deleted before its Finish (gRPC calls OnDone after it), so it is
    // safe to finish it outside the lock.
    uploads_mutex_.Unlock();
    for (UploadReactor* upload : idle) {
      common::LogInfo("upload ended: idle for {} (--upload-idle-timeout)", absl::FormatDuration(timeout));
      upload->EndIdle(timeout);
    }
    uploads_mutex_.Lock();
  }
}

grpc::ServerReadReactor<v1::UploadModelRequest>* ModelService::UploadModel(grpc::CallbackServerContext* context,
                                                                           v1::Model* response) {
  return new UploadReactor(*this, context, response);
}

absl::Status ModelService::Reserve(const UploadReactor* upload, const std::string& team, int64_t bytes) {
  absl::MutexLock lock(&uploads_mutex_);
  Reservation& mine = reserved_[upload];
  if (options_.quota.max_stored_bytes > 0 && bytes > mine.bytes) {
    absl::StatusOr<int64_t> stored = state_.TeamStoredBytes(team);
    if (!stored.ok()) return stored.status();
    int64_t in_flight = 0;
    for (const auto& [other, reservation] : reserved_) {
      if (other != upload && reservation.team == team) in_flight += reservation.bytes;
    }
    if (*stored + in_flight + bytes > options_.quota.max_stored_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("team '", team, "' stores ", *stored, " bytes of models and has ", in_flight,
                       " bytes in other uploads in flight; this upload (", bytes,
                       " bytes) would pass the team's quota of ", options_.quota.max_stored_bytes,
                       " stored bytes (squeezed --quota-stored-bytes): delete a model or wait for the other uploads"));
    }
  }
  mine.team = team;
  mine.bytes = std::max(mine.bytes, bytes);
  return absl::OkStatus();
}

void ModelService::Release(const UploadReactor* upload) {
  absl::MutexLock lock(&uploads_mutex_);
  reserved_.erase(upload);
}

absl::StatusOr<v1::Model> ModelService::CompleteUpload(const Caller& caller, const v1::UploadMetadata& metadata,
                                                       BlobWriter& writer) {
  const std::string& team = caller.team;
  const std::string digest = writer.Finish();
  absl::StatusOr<std::map<std::string, std::vector<int64_t>>> shapes = InputShapesOf(metadata.input_shapes());
  if (!shapes.ok()) return shapes.status();
  const std::string shapes_key = CanonicalInputShapes(*shapes);

  absl::StatusOr<std::optional<ModelRecord>> existing = state_.FindModel(team, digest, shapes_key);
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) return ToProto(**existing, /*with_layers=*/true);

  absl::StatusOr<std::string> bytes = common::ReadFile(writer.temp_path());
  if (!bytes.ok()) return bytes.status();
  model::AnalyzeOptions options;
  options.input_shapes = *shapes;
  options.shape_probe = options_.shape_probe;
  options.max_ir_version = options_.max_ir_version;
  options.max_activation_bytes = options_.max_activation_bytes;
  absl::StatusOr<model::LoadedModel> loaded = model::LoadModel(*bytes, options);
  if (!loaded.ok()) return loaded.status();

  ModelRecord record;
  record.team = team;
  record.name = metadata.name();
  record.sha256 = digest;
  record.size_bytes = writer.size();
  record.input_shapes = shapes_key;
  v1::ModelAnalysis analysis = ToProto(loaded->analysis);
  SetChannelPruning(model::AnalyzeChannelPruning(*loaded), &analysis);
  SetOutputs(model::GraphOutputs(loaded->proto), &analysis);
  record.analysis = analysis.SerializeAsString();

  absl::MutexLock lock(&blob_mutex_);
  absl::StatusOr<std::string> committed = blobs_.Commit(writer);
  if (!committed.ok()) return committed.status();
  absl::StatusOr<ModelRecord> stored = state_.InsertModel(std::move(record), options_.quota);
  if (!stored.ok()) {
    absl::StatusOr<int64_t> users = state_.CountModelsWithBlob(digest);
    if (users.ok() && *users == 0) blobs_.Delete(digest).IgnoreError();
    return stored.status();
  }
  common::LogInfo("model {} '{}' stored: {} bytes sha256={} layers={} team={} request_id={}", stored->id, stored->name,
                  stored->size_bytes, stored->sha256, loaded->analysis.layers.size(), team, caller.request_id);
  return ToProto(*stored, /*with_layers=*/true);
}

grpc::ServerUnaryReactor* ModelService::GetModel(grpc::CallbackServerContext* context,
                                                 const v1::GetModelRequest* request, v1::Model* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::string> team = CallerTeam(*context);
  if (!team.ok()) {
    reactor->Finish(ToGrpcStatus(team.status()));
    return reactor;
  }
  absl::StatusOr<ModelRecord> record = state_.GetModel(*team, request->id());
  if (!record.ok()) {
    reactor->Finish(ToGrpcStatus(record.status()));
    return reactor;
  }
  absl::StatusOr<v1::Model> model = ToProto(*record, /*with_layers=*/true);
  if (model.ok()) *response = *std::move(model);
  reactor->Finish(ToGrpcStatus(model.status()));
  return reactor;
}

grpc::ServerUnaryReactor* ModelService::ListModels(grpc::CallbackServerContext* context,
                                                   const v1::ListModelsRequest* request,
                                                   v1::ListModelsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::string> team = CallerTeam(*context);
  if (!team.ok()) {
    reactor->Finish(ToGrpcStatus(team.status()));
    return reactor;
  }
  absl::StatusOr<std::vector<ModelRecord>> records = state_.ListModels(*team);
  if (!records.ok()) {
    reactor->Finish(ToGrpcStatus(records.status()));
    return reactor;
  }
  for (const ModelRecord& record : *records) {
    absl::StatusOr<v1::Model> model = ToProto(record, /*with_layers=*/false);
    if (!model.ok()) {
      reactor->Finish(ToGrpcStatus(model.status()));
      return reactor;
    }
    *response->add_models() = *std::move(model);
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ModelService::DeleteModel(grpc::CallbackServerContext* context,
                                                    const v1::DeleteModelRequest* request,
                                                    v1::DeleteModelResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<Caller> caller = CallerOf(*context);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  absl::MutexLock lock(&blob_mutex_);
  absl::StatusOr<ModelRecord> deleted = state_.DeleteModel(caller->team, request->id());
  if (!deleted.ok()) {
    reactor->Finish(ToGrpcStatus(deleted.status()));
    return reactor;
  }
  absl::StatusOr<int64_t> users = state_.CountModelsWithBlob(deleted->sha256);
  if (users.ok() && *users == 0) {
    absl::Status status = blobs_.Delete(deleted->sha256);
    if (!status.ok()) common::LogWarning("model {} deleted but its blob stays: {}", deleted->id, status.ToString());
  }
  common::LogInfo("model {} '{}' deleted team={} request_id={}", deleted->id, deleted->name, caller->team,
                  caller->request_id);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace squeeze::server
