// BlobStore: content-addressed files under <data_dir>/blobs, named by their SHA-256.
//
// Bytes arrive through a BlobWriter that writes a temporary file under blobs/tmp while hashing.
// Commit fsyncs it and renames it to blobs/<2 hex>/<64 hex>; until then readers never see it, and
// Abort (or destroying the writer) deletes it. The same bytes written twice are one blob.
// Thread safe: distinct writers may be used from different threads at once.
#ifndef SQUEEZE_SERVER_BLOB_STORE_H_
#define SQUEEZE_SERVER_BLOB_STORE_H_

#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/sha256.h"

namespace squeeze::server {

class BlobStore;

class BlobWriter {
 public:
  ~BlobWriter();
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  absl::Status Append(absl::string_view bytes);
  int64_t size() const { return size_; }
  const std::string& temp_path() const { return temp_path_; }

  // Ends the hash and returns the digest; the writer can then only be committed or aborted.
  std::string Finish();
  // Deletes the temporary file. Safe to call more than once.
  void Abort();

 private:
  friend class BlobStore;
  BlobWriter(std::string temp_path, int fd) : temp_path_(std::move(temp_path)), fd_(fd) {}

  std::string temp_path_;
  int fd_ = -1;
  int64_t size_ = 0;
  common::Sha256 hash_;
  std::string digest_;
};

class BlobStore {
 public:
  // Creates <root> and <root>/tmp when missing and deletes temporary files left by a crash.
  static absl::StatusOr<std::unique_ptr<BlobStore>> Open(const std::string& root);

  absl::StatusOr<std::unique_ptr<BlobWriter>> NewWriter();
  // Makes the writer's bytes the blob named by its digest (a no-op besides deleting the temporary
  // file when that blob exists) and returns the digest.
  absl::StatusOr<std::string> Commit(BlobWriter& writer);
  // Stores `bytes` in one call.
  absl::StatusOr<std::string> Put(absl::string_view bytes);

  bool Contains(absl::string_view sha256) const;
  // The blob's bytes; NotFound when absent, DataLoss when its content no longer matches its name.
  absl::StatusOr<std::string> Read(absl::string_view sha256) const;
  absl::StatusOr<int64_t> Size(absl::string_view sha256) const;
  std::string PathOf(absl::string_view sha256) const;
  // Removes a blob; OK when it is already gone.
  absl::Status Delete(absl::string_view sha256);
  // Deletes every blob whose digest is not in `keep`; returns how many went.
  absl::StatusOr<int> CollectGarbage(const std::set<std::string>& keep);

 private:
  explicit BlobStore(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_BLOB_STORE_H_
