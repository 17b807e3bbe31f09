// Fashion-MNIST for the tests and benchmarks: the one loader of the IDX
// files (gzip or plain) as Debian's dataset-fashion-mnist ships them under
// kFashionDir. Benchmarks take whole splits as a Matrix (LoadFashionMnist);
// tests take the first rows of a split as flat floats (FashionImages,
// FashionLabels). Multi-vector patch sets are in fashion_patches.h.
//
// Every function returns fresh data the caller owns; all are thread-safe.
// Errors: absl::Status from the loaders (NOT_FOUND, DATA_LOSS); the test
// helpers return an empty vector instead, for a GTEST_SKIP or a failure.
#ifndef QUIVER_TESTS_COMMON_FASHION_MNIST_H_
#define QUIVER_TESTS_COMMON_FASHION_MNIST_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace quiver::testing {

inline constexpr char kFashionDir[] = "/usr/share/datasets/fashion-mnist";

// Row-major float32 vectors.
struct Matrix {
  size_t n = 0;
  size_t dim = 0;
  std::vector<float> data;  // n * dim
  const float* row(size_t i) const { return data.data() + i * dim; }
  size_t bytes() const { return data.size() * sizeof(float); }
};

// Reads an IDX3 image file (magic 0x00000803, uint8 pixels), gzip or plain,
// into float32 rows of rows*cols values (0..255). `max_rows` = 0 reads all.
absl::StatusOr<Matrix> LoadIdxImages(const std::string& path, size_t max_rows = 0);
// Reads an IDX1 label file (magic 0x00000801, uint8).
absl::StatusOr<std::vector<uint8_t>> LoadIdxLabels(const std::string& path,
                                                   size_t max_rows = 0);

struct FashionMnist {
  Matrix train;                      // base set (60,000 x 784 at most)
  std::vector<uint8_t> train_labels;
  Matrix test;                       // queries (10,000 x 784 at most)
  std::vector<uint8_t> test_labels;
};

// Loads the first `train_rows` training and `test_rows` test images
// (0 = all) with their labels from `dir`.
absl::StatusOr<FashionMnist> LoadFashionMnist(const std::string& dir, size_t train_rows,
                                              size_t test_rows);

// The first `count` images of split "train" or "t10k" under kFashionDir,
// row-major (784 floats each, 0..255), with *dim set to 784; empty if
// unreadable.
std::vector<float> FashionImages(const std::string& split, size_t count, size_t* dim);
// The first `count` labels of a split; empty if unreadable.
std::vector<int> FashionLabels(const std::string& split, size_t count);

// 64-bit FNV-1a over the float bits: identifies a dataset in cache keys.
uint64_t HashFloats(const float* data, size_t n, uint64_t seed = 0xcbf29ce484222325ull);

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_COMMON_FASHION_MNIST_H_
