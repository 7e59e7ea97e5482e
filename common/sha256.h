// Incremental SHA-256 (OpenSSL), for content addressing and integrity checks.
#ifndef SQUEEZE_COMMON_SHA256_H_
#define SQUEEZE_COMMON_SHA256_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace squeeze::common {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(absl::string_view bytes);
  // The digest of everything updated so far, as 64 lowercase hex digits. Ends the hash.
  std::string HexDigest();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string Sha256Hex(absl::string_view bytes);

// `bytes` random bytes from the OS's CSPRNG, as lowercase hex (2 digits per byte).
std::string RandomHex(int bytes);

}  // namespace squeeze::common

#endif  // SQUEEZE_COMMON_SHA256_H_
