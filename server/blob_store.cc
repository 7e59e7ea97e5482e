#include "server/blob_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/log.h"

namespace squeeze::server {
namespace {

namespace fs = std::filesystem;

bool IsDigest(absl::string_view s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == absl::string_view::npos;
}

absl::Status FsyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return common::ErrnoStatus(errno, absl::StrCat("cannot open ", dir));
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  return rc == 0 ? absl::OkStatus() : common::ErrnoStatus(saved, absl::StrCat("cannot fsync ", dir));
}

}  // namespace

BlobWriter::~BlobWriter() { Abort(); }

absl::Status BlobWriter::Append(absl::string_view bytes) {
  if (fd_ < 0) return absl::FailedPreconditionError("blob writer is closed");
  hash_.Update(bytes);
  const char* data = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return common::ErrnoStatus(errno, absl::StrCat("cannot write ", temp_path_));
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
  size_ += static_cast<int64_t>(bytes.size());
  return absl::OkStatus();
}

std::string BlobWriter::Finish() {
  if (digest_.empty()) digest_ = hash_.HexDigest();
  return digest_;
}

void BlobWriter::Abort() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!temp_path_.empty()) {
    ::unlink(temp_path_.c_str());
    temp_path_.clear();
  }
}

absl::StatusOr<std::unique_ptr<BlobStore>> BlobStore::Open(const std::string& root) {
  absl::Status status = common::MakeDirectories(root + "/tmp");
  if (!status.ok()) return status;
  std::error_code error;
  int removed = 0;
  for (const auto& entry : fs::directory_iterator(root + "/tmp", error)) {
    fs::remove(entry.path(), error);
    ++removed;
  }
  if (removed > 0) common::LogInfo("blob store: removed {} unfinished uploads left in {}/tmp", removed, root);
  return std::unique_ptr<BlobStore>(new BlobStore(root));
}

absl::StatusOr<std::unique_ptr<BlobWriter>> BlobStore::NewWriter() {
  std::string path = absl::StrCat(root_, "/tmp/upload-", common::RandomHex(8));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return common::ErrnoStatus(errno, absl::StrCat("cannot create ", path));
  return std::unique_ptr<BlobWriter>(new BlobWriter(path, fd));
}

std::string BlobStore::PathOf(absl::string_view sha256) const {
  return absl::StrCat(root_, "/", sha256.substr(0, 2), "/", sha256);
}

absl::StatusOr<std::string> BlobStore::Commit(BlobWriter& writer) {
  if (writer.fd_ < 0) return absl::FailedPreconditionError("blob writer is closed");
  const std::string digest = writer.Finish();
  if (::fsync(writer.fd_) != 0) return common::ErrnoStatus(errno, "cannot fsync upload");
  ::close(writer.fd_);
  writer.fd_ = -1;
  const std::string dir = absl::StrCat(root_, "/", digest.substr(0, 2));
  absl::Status status = common::MakeDirectories(dir);
  if (!status.ok()) return status;
  const std::string path = PathOf(digest);
  if (Contains(digest)) {
    writer.Abort();  // the same bytes are stored already
    return digest;
  }
  if (::rename(writer.temp_path_.c_str(), path.c_str()) != 0) {
    return common::ErrnoStatus(errno, absl::StrCat("cannot move upload to ", path));
  }
  writer.temp_path_.clear();
  status = FsyncDirectory(dir);
  if (!status.ok()) return status;
  return digest;
}

absl::StatusOr<std::string> BlobStore::Put(absl::string_view bytes) {
  absl::StatusOr<std::unique_ptr<BlobWriter>> writer = NewWriter();
  if (!writer.ok()) return writer.status();
  absl::Status status = (*writer)->Append(bytes);
  if (!status.ok()) return status;
  return Commit(**writer);
}

bool BlobStore::Contains(absl::string_view sha256) const {
  std::error_code error;
  return IsDigest(sha256) && fs::is_regular_file(PathOf(sha256), error);
}

absl::StatusOr<std::string> BlobStore::Read(absl::string_view sha256) const {
  if (!IsDigest(sha256)) return absl::InvalidArgumentError(absl::StrCat("'", sha256, "' is not a sha256"));
  absl::StatusOr<std::string> bytes = common::ReadFile(PathOf(sha256));
  if (!bytes.ok()) return bytes.status();
  if (common::Sha256Hex(*bytes) != sha256) {
    return absl::DataLossError(absl::StrCat("blob ", sha256, " is corrupt: its content no longer matches its hash"));
  }
  return bytes;
}

absl::StatusOr<int64_t> BlobStore::Size(absl::string_view sha256) const {
  std::error_code error;
  auto size = fs::file_size(PathOf(sha256), error);
  if (error) return common::ErrnoStatus(error.value(), absl::StrCat("blob ", sha256));
  return static_cast<int64_t>(size);
}

absl::Status BlobStore::Delete(absl::string_view sha256) {
  if (!IsDigest(sha256)) return absl::InvalidArgumentError(absl::StrCat("'", sha256, "' is not a sha256"));
  if (::unlink(PathOf(sha256).c_str()) != 0 && errno != ENOENT) {
    return common::ErrnoStatus(errno, absl::StrCat("cannot delete blob ", sha256));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> BlobStore::CollectGarbage(const std::set<std::string>& keep) {
  std::error_code error;
  int removed = 0;
  for (const auto& dir : fs::directory_iterator(root_, error)) {
    if (!dir.is_directory() || dir.path().filename() == "tmp") continue;
    for (const auto& file : fs::directory_iterator(dir.path(), error)) {
      const std::string name = file.path().filename().string();
      if (IsDigest(name) && keep.count(name) == 0) {
        fs::remove(file.path(), error);
        ++removed;
      }
    }
  }
  if (error) return common::ErrnoStatus(error.value(), absl::StrCat("cannot scan ", root_));
  return removed;
}

}  // namespace squeeze::server
