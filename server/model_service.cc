#include "server/model_service.h"

#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/log.h"
#include "server/caller.h"
#include "server/proto_conversion.h"
#include "server/status.h"

namespace squeeze::server {
namespace {

constexpr size_t kMaxNameLength = 200;

std::string Mebibytes(int64_t bytes) { return absl::StrCat(bytes / (1 << 20), " MiB"); }

absl::Status TooLarge(int64_t size, int64_t limit) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "the model is ", size, " bytes, over this server's limit of ", limit, " bytes (", Mebibytes(limit),
      "); ask the operator to raise squeezed --max-model-bytes"));
}

}  // namespace

// One upload: metadata first, then chunks appended to a blob writer; at the end of the stream the
// analysis and commit are handed to the worker arena, which finishes the call.
class ModelService::UploadReactor final : public grpc::ServerReadReactor<v1::UploadModelRequest> {
 public:
  UploadReactor(ModelService& service, grpc::CallbackServerContext* context, v1::Model* response)
      : service_(service), context_(context), response_(response) {
    absl::StatusOr<Caller> caller = CallerOf(*context);
    if (!caller.ok()) {
      Finish(ToGrpcStatus(caller.status()));
      return;
    }
    caller_ = *std::move(caller);
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      if (context_->IsCancelled()) {
        writer_.reset();
        Finish(grpc::Status(grpc::StatusCode::CANCELLED, "upload cancelled by the client"));
        return;
      }
      EndOfStream();
      return;
    }
    absl::Status status = Consume();
    if (!status.ok()) {
      writer_.reset();
      Finish(ToGrpcStatus(status));
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Consume() {
    if (request_.has_metadata()) {
      if (has_metadata_) return absl::InvalidArgumentError("the upload sent its metadata twice");
      has_metadata_ = true;
      metadata_ = request_.metadata();
      if (metadata_.name().empty()) {
        return absl::InvalidArgumentError("the model's name is empty; 'squeeze models upload' uses the file name");
      }
      if (metadata_.name().size() > kMaxNameLength) {
        return absl::InvalidArgumentError(absl::StrCat("the model's name is longer than ", kMaxNameLength, " characters"));
      }
      if (metadata_.size_bytes() > service_.options_.max_model_bytes) {
        return TooLarge(metadata_.size_bytes(), service_.options_.max_model_bytes);
      }
      if (absl::Status s = service_.CheckStoredBytes(caller_.team, metadata_.size_bytes()); !s.ok()) return s;
      absl::StatusOr<std::unique_ptr<BlobWriter>> writer = service_.blobs_.NewWriter();
      if (!writer.ok()) return writer.status();
      writer_ = *std::move(writer);
      return absl::OkStatus();
    }
    if (!has_metadata_) {
      return absl::InvalidArgumentError("the upload must start with a metadata message (name, input shapes)");
    }
    const std::string& chunk = request_.chunk();
    if (writer_->size() + static_cast<int64_t>(chunk.size()) > service_.options_.max_model_bytes) {
      return TooLarge(writer_->size() + static_cast<int64_t>(chunk.size()), service_.options_.max_model_bytes);
    }
    // The declared size is a hint; the quota is checked again on the bytes that really came.
    if (metadata_.size_bytes() == 0 || writer_->size() + static_cast<int64_t>(chunk.size()) > metadata_.size_bytes()) {
      if (absl::Status s = service_.CheckStoredBytes(caller_.team, writer_->size() + static_cast<int64_t>(chunk.size()));
          !s.ok()) {
        return s;
      }
    }
    return writer_->Append(chunk);
  }

  void EndOfStream() {
    if (!has_metadata_) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the upload sent nothing: no metadata, no bytes"));
      return;
    }
    if (writer_->size() == 0) {
      writer_.reset();
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the file is empty: no model bytes were sent"));
      return;
    }
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
};

grpc::ServerReadReactor<v1::UploadModelRequest>* ModelService::UploadModel(grpc::CallbackServerContext* context,
                                                                           v1::Model* response) {
  return new UploadReactor(*this, context, response);
}

absl::Status ModelService::CheckStoredBytes(const std::string& team, int64_t incoming) {
  if (options_.quota.max_stored_bytes <= 0) return absl::OkStatus();
  absl::StatusOr<int64_t> stored = state_.TeamStoredBytes(team);
  if (!stored.ok()) return stored.status();
  if (*stored + incoming > options_.quota.max_stored_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "team '", team, "' stores ", *stored, " bytes of models; this upload (", incoming,
        " bytes so far) would pass the team's quota of ", options_.quota.max_stored_bytes,
        " stored bytes (squeezed --quota-stored-bytes): delete a model first"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Model> ModelService::CompleteUpload(const Caller& caller, const v1::UploadMetadata& metadata,
                                                       BlobWriter& writer) {
  const std::string& team = caller.team;
  const std::string digest = writer.Finish();
  absl::StatusOr<std::map<std::string, std::vector<int64_t>>> shapes = FromProto(metadata.input_shapes());
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
  absl::StatusOr<model::LoadedModel> loaded = model::LoadModel(*bytes, options);
  if (!loaded.ok()) return loaded.status();

  ModelRecord record;
  record.team = team;
  record.name = metadata.name();
  record.sha256 = digest;
  record.size_bytes = writer.size();
  record.input_shapes = shapes_key;
  record.analysis = ToProto(loaded->analysis).SerializeAsString();

  absl::MutexLock lock(&blob_mutex_);
  absl::StatusOr<std::string> committed = blobs_.Commit(writer);
  if (!committed.ok()) return committed.status();
  absl::StatusOr<ModelRecord> stored = state_.InsertModel(std::move(record), options_.quota);
  if (!stored.ok()) {
    absl::StatusOr<int64_t> users = state_.CountModelsWithBlob(digest);
    if (users.ok() && *users == 0) blobs_.Delete(digest).IgnoreError();
    return stored.status();
  }
  common::LogInfo("model {} '{}' stored: {} bytes sha256={} layers={} team={} request_id={}", stored->id,
                  stored->name, stored->size_bytes, stored->sha256, loaded->analysis.layers.size(), team,
                  caller.request_id);
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
