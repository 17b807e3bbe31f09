// How quiverd's keys file names an API key: the hex SHA-256 of the key
// (quiverd stores no key itself). For `quiverctl key hash`, and for tests
// and benchmarks that write a keys file. Pure function; thread-safe.
#ifndef QUIVER_CLIENT_API_KEY_H_
#define QUIVER_CLIENT_API_KEY_H_

#include <string>
#include <string_view>

namespace quiver::client {

// The lowercase hex SHA-256 of `key`, as a line of --api-keys-file lists it.
std::string ApiKeySha256Hex(std::string_view key);

}  // namespace quiver::client

#endif  // QUIVER_CLIENT_API_KEY_H_
