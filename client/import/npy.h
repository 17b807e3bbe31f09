// The npy format's header: magic, version, and the Python-literal dict
// (descr, fortran_order, shape), and its dtype strings taken apart. Used by
// the vector and label readers.
//
// Stateless functions; errors are INVALID_ARGUMENT naming the file.
#ifndef QUIVER_CLIENT_IMPORT_NPY_H_
#define QUIVER_CLIENT_IMPORT_NPY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/import/byte_input.h"

namespace quiver::ctl {

// The parts of an npy header dict we use.
struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<uint64_t> shape;
  uint64_t data_offset = 0;  // bytes before the array data
};

// Reads the magic, version and header dict of an npy file.
absl::StatusOr<NpyHeader> ReadNpyHeader(GzInput& in);

// "(100, 8)", "(5,)".
std::string ShapeText(const std::vector<uint64_t>& shape);

// An npy dtype string ('<i8', '|u1', ...) taken apart.
struct NpyDtype {
  char order = '<';  // '<', '>', '|' or '='
  char kind = 0;     // 'f', 'i', 'u', 'b', ...
  int size = 0;
};

NpyDtype ParseDtype(const std::string& descr);

// True for '>' and, on a big-endian machine, '='.
bool IsBigEndian(char order);

}  // namespace quiver::ctl

#endif  // QUIVER_CLIENT_IMPORT_NPY_H_
