#include "server/export_service.h"

#include <deque>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/caller.h"
#include "server/proto_conversion.h"
#include "server/status.h"

namespace squeeze::server {
namespace {

constexpr size_t kChunkBytes = 1 << 20;

}  // namespace

// Writes queued chunks one at a time. The export's worker reaches the reactor through a link that
// OnDone cuts, so an export whose client went away finishes (and is cached) without it.
class ExportService::Reactor final : public grpc::ServerWriteReactor<v1::ExportChunk> {
 public:
  Reactor(ExportJobs& jobs, const absl::StatusOr<std::string>& team, const v1::ExportRequest& request) {
    link_ = std::make_shared<Link>();
    link_->reactor = this;
    absl::StatusOr<ExportRequest> wanted = team.ok() ? FromProto(request) : team.status();
    absl::StatusOr<ExportTarget> target = wanted.ok() ? jobs.Resolve(*team, *wanted) : wanted.status();
    absl::MutexLock lock(&link_->mutex);
    if (!target.ok()) {
      done_ = true;
      status_ = ToGrpcStatus(target.status());
      MaybeFinish();
      return;
    }
    std::shared_ptr<Link> link = link_;
    jobs.Run(
        *std::move(target),
        [link](const v1::ExportProgress& p) {
          absl::MutexLock held(&link->mutex);
          if (link->reactor == nullptr) return;
          v1::ExportChunk chunk;
          *chunk.mutable_progress() = p;
          link->reactor->Enqueue(std::move(chunk));
        },
        [link](absl::StatusOr<ExportResult> result) {
          absl::MutexLock held(&link->mutex);
          if (link->reactor != nullptr) link->reactor->Complete(std::move(result));
        });
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&link_->mutex);
    writing_ = false;
    if (!ok) {
      done_ = true;
      pending_.clear();
      status_ = grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped reading");
    }
    WriteNext();
  }

  void OnCancel() override {
    absl::MutexLock lock(&link_->mutex);
    done_ = true;
    pending_.clear();
    status_ = grpc::Status(grpc::StatusCode::CANCELLED, "export cancelled");
    if (!writing_) MaybeFinish();
  }

  void OnDone() override {
    {
      absl::MutexLock lock(&link_->mutex);
      link_->reactor = nullptr;
    }
    delete this;
  }

 private:
  struct Link {
    absl::Mutex mutex;
    Reactor* reactor ABSL_GUARDED_BY(mutex) = nullptr;
  };

  // The methods below run with link_->mutex held.
  void Enqueue(v1::ExportChunk chunk) {
    if (done_) return;
    pending_.push_back(std::move(chunk));
    if (!writing_) WriteNext();
  }

  void Complete(absl::StatusOr<ExportResult> result) {
    if (done_) return;
    if (!result.ok()) {
      done_ = true;
      status_ = ToGrpcStatus(result.status());
      if (!writing_) MaybeFinish();
      return;
    }
    const std::string& bytes = result->bytes;
    v1::ExportChunk sending;
    sending.mutable_progress()->set_phase("sending");
    sending.mutable_progress()->set_detail(std::to_string(bytes.size()) + " bytes");
    pending_.push_back(std::move(sending));
    for (size_t offset = 0; offset < bytes.size(); offset += kChunkBytes) {
      v1::ExportChunk chunk;
      chunk.set_data(bytes.substr(offset, kChunkBytes));
      pending_.push_back(std::move(chunk));
    }
    v1::ExportChunk report;
    *report.mutable_report() = std::move(result->report);
    pending_.push_back(std::move(report));
    done_ = true;
    status_ = grpc::Status::OK;
    if (!writing_) WriteNext();
  }

  void WriteNext() {
    if (writing_) return;
    if (pending_.empty()) {
      MaybeFinish();
      return;
    }
    current_ = std::move(pending_.front());
    pending_.pop_front();
    writing_ = true;
    StartWrite(&current_);
  }

  void MaybeFinish() {
    if (!done_ || finished_ || writing_ || !pending_.empty()) return;
    finished_ = true;
    Finish(status_);
  }

  std::shared_ptr<Link> link_;
  std::deque<v1::ExportChunk> pending_;
  v1::ExportChunk current_;
  bool writing_ = false;
  bool done_ = false;      // nothing more will be queued
  bool finished_ = false;  // Finish called
  grpc::Status status_;
};

grpc::ServerWriteReactor<v1::ExportChunk>* ExportService::ExportModel(grpc::CallbackServerContext* context,
                                                                      const v1::ExportRequest* request) {
  return new Reactor(jobs_, CallerTeam(*context), *request);
}

}  // namespace squeeze::server
