// Dataset loading for the benchmarks: IDX files (gzip), as Fashion-MNIST
// ships them (Debian `dataset-fashion-mnist`).
#ifndef QUIVER_BENCH_COMMON_DATASET_H_
#define QUIVER_BENCH_COMMON_DATASET_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace quiver::bench {

inline constexpr char kFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";

// Row-major float32 vectors.
struct Matrix {
  size_t n = 0;
  size_t dim = 0;
  std::vector<float> data;  // n * dim
  const float* row(size_t i) const { return data.data() + i * dim; }
  size_t bytes() const { return data.size() * sizeof(float); }
};

// Reads an IDX3 image file (magic 0x00000803, uint8 pixels), gzip or plain,
// into float32 rows of rows*cols values. `max_rows` = 0 reads all.
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

// 64-bit FNV-1a over the float bits: identifies a dataset in cache keys.
uint64_t HashFloats(const float* data, size_t n, uint64_t seed = 0xcbf29ce484222325ull);

}  // namespace quiver::bench

#endif  // QUIVER_BENCH_COMMON_DATASET_H_
