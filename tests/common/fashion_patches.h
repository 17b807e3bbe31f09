// Fashion-MNIST images as multi-vector points (bench/README.md, Rules):
// each 28x28 image is cut into 16 patches of 7x7 pixels (49 dims); a 16-d
// one-hot code of the patch's place, scaled by 0.5, is appended (so blank
// patches still differ by place) and the 65-d vector is normalized to unit
// length. 16 vectors of 65 dims per point; MaxSim by inner product.
//
// Pixels are scaled to [0, 1] first (with raw 0..255 pixels the 0.5 place
// code would vanish in any patch that is not blank).
//
// Header-only and stateless (thread-safe); an empty vector when the
// Fashion-MNIST files cannot be read.
//
// Patches are in row-major order of the 4x4 grid (patch p = 4 * row + col),
// each patch's pixels row-major, place code bit at dim 49 + p.
#ifndef QUIVER_TESTS_COMMON_FASHION_PATCHES_H_
#define QUIVER_TESTS_COMMON_FASHION_PATCHES_H_

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "tests/common/fashion_mnist.h"

namespace quiver::testing {

inline constexpr size_t kPatchesPerImage = 16;
inline constexpr size_t kPatchDim = 65;
inline constexpr size_t kPatchSetFloats = kPatchesPerImage * kPatchDim;

// One 28x28 image (784 floats, 0..255) to its 16 x 65 patch set at `out`.
inline void ImageToPatches(const float* image, float* out) {
  for (size_t p = 0; p < kPatchesPerImage; ++p) {
    float* v = out + p * kPatchDim;
    const size_t top = (p / 4) * 7, left = (p % 4) * 7;
    for (size_t r = 0; r < 7; ++r) {
      for (size_t c = 0; c < 7; ++c) v[r * 7 + c] = image[(top + r) * 28 + left + c] / 255.0f;
    }
    for (size_t j = 0; j < kPatchesPerImage; ++j) v[49 + j] = j == p ? 0.5f : 0.0f;
    double norm = 0;
    for (size_t j = 0; j < kPatchDim; ++j) norm += double{v[j]} * v[j];
    const float inv = static_cast<float>(1.0 / std::sqrt(norm));  // norm >= 0.25
    for (size_t j = 0; j < kPatchDim; ++j) v[j] *= inv;
  }
}

// `images` rows of 784 floats to patch sets: images.size() / 784 * 1040.
inline std::vector<float> ImagesToPatches(const std::vector<float>& images) {
  const size_t n = images.size() / 784;
  std::vector<float> out(n * kPatchSetFloats);
  for (size_t i = 0; i < n; ++i) {
    ImageToPatches(images.data() + i * 784, out.data() + i * kPatchSetFloats);
  }
  return out;
}

// The first `count` images of "train" or "t10k" as patch sets (count * 16 *
// 65 floats, point i at i * kPatchSetFloats); empty if the files are missing.
inline std::vector<float> FashionPatches(const std::string& split, size_t count) {
  size_t dim = 0;
  const std::vector<float> images = FashionImages(split, count, &dim);
  if (dim != 784) return {};
  return ImagesToPatches(images);
}

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_COMMON_FASHION_PATCHES_H_
