// Fashion-MNIST: reading IDX files through zlib.
#include "tests/common/fashion_mnist.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace quiver::testing {
namespace {

// gzread reads plain files too (transparently), so one reader serves both.
class GzFile {
 public:
  explicit GzFile(const std::string& path) : f_(gzopen(path.c_str(), "rb")) {
    if (f_ != nullptr) gzbuffer(f_, 1 << 20);
  }
  ~GzFile() {
    if (f_ != nullptr) gzclose(f_);
  }
  bool ok() const { return f_ != nullptr; }
  bool Read(void* dst, size_t n) {
    char* p = static_cast<char*>(dst);
    while (n > 0) {
      const unsigned chunk = n > (1u << 30) ? (1u << 30) : static_cast<unsigned>(n);
      const int got = gzread(f_, p, chunk);
      if (got <= 0) return false;
      p += got;
      n -= static_cast<size_t>(got);
    }
    return true;
  }
  bool ReadBE32(uint32_t* v) {
    unsigned char b[4];
    if (!Read(b, 4)) return false;
    *v = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
    return true;
  }

 private:
  gzFile f_;
};

}  // namespace

absl::StatusOr<Matrix> LoadIdxImages(const std::string& path, size_t max_rows) {
  GzFile f(path);
  if (!f.ok()) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  uint32_t magic = 0, n = 0, rows = 0, cols = 0;
  if (!f.ReadBE32(&magic) || !f.ReadBE32(&n) || !f.ReadBE32(&rows) || !f.ReadBE32(&cols)) {
    return absl::DataLossError(absl::StrCat(path, ": truncated IDX header"));
  }
  if (magic != 0x00000803) {
    return absl::DataLossError(absl::StrCat(path, ": not an IDX3 uint8 file (magic ", magic, ")"));
  }
  const size_t count = max_rows == 0 ? n : std::min<size_t>(n, max_rows);
  Matrix m;
  m.n = count;
  m.dim = size_t{rows} * cols;
  std::vector<uint8_t> raw(count * m.dim);
  if (!f.Read(raw.data(), raw.size())) {
    return absl::DataLossError(absl::StrCat(path, ": truncated pixel data"));
  }
  m.data.resize(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) m.data[i] = static_cast<float>(raw[i]);
  return m;
}

absl::StatusOr<std::vector<uint8_t>> LoadIdxLabels(const std::string& path, size_t max_rows) {
  GzFile f(path);
  if (!f.ok()) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  uint32_t magic = 0, n = 0;
  if (!f.ReadBE32(&magic) || !f.ReadBE32(&n)) {
    return absl::DataLossError(absl::StrCat(path, ": truncated IDX header"));
  }
  if (magic != 0x00000801) {
    return absl::DataLossError(absl::StrCat(path, ": not an IDX1 uint8 file (magic ", magic, ")"));
  }
  const size_t count = max_rows == 0 ? n : std::min<size_t>(n, max_rows);
  std::vector<uint8_t> labels(count);
  if (!f.Read(labels.data(), labels.size())) {
    return absl::DataLossError(absl::StrCat(path, ": truncated label data"));
  }
  return labels;
}

absl::StatusOr<FashionMnist> LoadFashionMnist(const std::string& dir, size_t train_rows,
                                              size_t test_rows) {
  FashionMnist ds;
  auto train = LoadIdxImages(dir + "/train-images-idx3-ubyte.gz", train_rows);
  if (!train.ok()) return train.status();
  auto train_labels = LoadIdxLabels(dir + "/train-labels-idx1-ubyte.gz", train_rows);
  if (!train_labels.ok()) return train_labels.status();
  auto test = LoadIdxImages(dir + "/t10k-images-idx3-ubyte.gz", test_rows);
  if (!test.ok()) return test.status();
  auto test_labels = LoadIdxLabels(dir + "/t10k-labels-idx1-ubyte.gz", test_rows);
  if (!test_labels.ok()) return test_labels.status();
  ds.train = *std::move(train);
  ds.train_labels = *std::move(train_labels);
  ds.test = *std::move(test);
  ds.test_labels = *std::move(test_labels);
  if (ds.train_labels.size() != ds.train.n || ds.test_labels.size() != ds.test.n) {
    return absl::DataLossError("image and label counts differ");
  }
  return ds;
}

std::vector<float> FashionImages(const std::string& split, size_t count, size_t* dim) {
  *dim = 0;
  auto m = LoadIdxImages(std::string(kFashionDir) + "/" + split + "-images-idx3-ubyte.gz", count);
  if (!m.ok()) return {};
  *dim = m->dim;
  return std::move(m->data);
}

std::vector<int> FashionLabels(const std::string& split, size_t count) {
  auto l = LoadIdxLabels(std::string(kFashionDir) + "/" + split + "-labels-idx1-ubyte.gz", count);
  if (!l.ok()) return {};
  return std::vector<int>(l->begin(), l->end());
}

uint64_t HashFloats(const float* data, size_t n, uint64_t seed) {
  uint64_t h = seed;
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, data + i, 4);
    h ^= bits;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace quiver::testing
