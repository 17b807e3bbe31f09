// Reads slices of Fashion-MNIST (Debian's dataset-fashion-mnist, IDX files
// gzipped under kFashionDir) for tests that want real vectors and labels.
#ifndef QUIVER_TESTS_COMMON_FASHION_MNIST_H_
#define QUIVER_TESTS_COMMON_FASHION_MNIST_H_

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace quiver::testing {

inline const char* const kFashionDir = "/usr/share/datasets/fashion-mnist";

// The first `count` entries of an IDX file (magic 0x803 images: dim is
// rows x cols; 0x801 labels: dim 1) as floats; empty if unreadable.
inline std::vector<float> ReadIdx(const std::string& path, size_t count, size_t* dim) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return {};
  std::vector<float> out;
  unsigned char header[16];
  if (gzread(f, header, 8) == 8) {
    auto be32 = [&](int o) {
      return (uint32_t{header[o]} << 24) | (uint32_t{header[o + 1]} << 16) |
             (uint32_t{header[o + 2]} << 8) | header[o + 3];
    };
    const uint32_t magic = be32(0);
    const size_t total = be32(4);
    bool ok = magic == 0x801;
    *dim = 1;
    if (magic == 0x803 && gzread(f, header + 8, 8) == 8) {
      *dim = size_t{be32(8)} * be32(12);
      ok = true;
    }
    count = std::min(count, total);
    std::vector<unsigned char> bytes(count * *dim);
    if (ok && gzread(f, bytes.data(), static_cast<unsigned>(bytes.size())) == int(bytes.size())) {
      out.assign(bytes.begin(), bytes.end());
    }
  }
  gzclose(f);
  return out;
}

// "train" or "t10k" images (0..255 floats, 784 per image) and labels.
inline std::vector<float> FashionImages(const std::string& split, size_t count, size_t* dim) {
  return ReadIdx(std::string(kFashionDir) + "/" + split + "-images-idx3-ubyte.gz", count, dim);
}
inline std::vector<int> FashionLabels(const std::string& split, size_t count) {
  size_t dim = 0;
  std::vector<float> l =
      ReadIdx(std::string(kFashionDir) + "/" + split + "-labels-idx1-ubyte.gz", count, &dim);
  return std::vector<int>(l.begin(), l.end());
}

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_COMMON_FASHION_MNIST_H_
