#include "client/api_key.h"

#include <openssl/evp.h>

#include "absl/strings/escaping.h"

namespace quiver::client {

std::string ApiKeySha256Hex(std::string_view key) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(key.data(), key.size(), digest, &len, EVP_sha256(), nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), len));
}

}  // namespace quiver::client
