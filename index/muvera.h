// MUVERA fixed-dimensional encodings (FDEs): one vector per point that
// stands for the point's set of vectors in late-interaction (MaxSim) search
// (Dhulipala et al. 2024, "MUVERA: Multi-Vector Retrieval via Fixed
// Dimensional Encodings"). The inner product of a query's FDE with a
// document's FDE approximates the Chamfer similarity
// sum_q max_d <q, d> of the two sets, so a single-vector inner-product index
// over document FDEs finds candidates that exact MaxSim (index/maxsim.h)
// then reranks.
//
// The encoding, per repetition r < r_reps:
//  - k_sim Gaussian hyperplanes give every vector a k_sim-bit SimHash code
//    (bit b set when <x, g_b> > 0); the code is the vector's partition
//    (2^k_sim partitions);
//  - every vector is projected to d_proj dims by a dense random +-1 matrix
//    scaled by 1/sqrt(d_proj) (inner products are kept in expectation);
//    d_proj == dim skips the projection (identity);
//  - partition p's block holds the SUM of the projected query vectors in it
//    (query) or their AVERAGE (document); with fill_empty, a document's
//    empty partition takes the projected vector whose code is nearest to p
//    in Hamming distance (lowest index on ties), so documents have no empty
//    blocks. Queries are never filled.
// Blocks and repetitions are concatenated: raw dimension
// r_reps * 2^k_sim * d_proj, laid out as out[(r * 2^k_sim + p) * d_proj + c].
// With final_dim > 0 a Count-Sketch (every raw coordinate added, with a
// random sign, to one random output coordinate) reduces that to final_dim.
//
// Everything random is drawn from splitmix64 streams derived from `seed`,
// with the distributions written out here (Gaussians by Box-Muller in
// double, rounded to float: log/sin/cos are the only library calls, and only
// the signs of products with these hyperplanes matter), so an encoder
// re-created with the same parameters and dimension has bit-identical
// matrices (a test pins them for seed 1), and encodings of the same input
// are bit-identical on the same machine and BLAS build. (OpenBLAS
// picks its sgemm kernel by CPU; another kernel may round the products'
// last bits differently, which can move a vector lying within rounding of a
// hyperplane to the neighbouring partition.) Persist the resolved
// parameters (MuveraParamsToMap) with the collection, so a change of the
// defaults here never changes the encoding of an existing field.
//
// The approximation is of the inner-product Chamfer similarity, the MaxSim of
// IP and COSINE fields (COSINE: normalize the vectors first). For L2 fields
// it is a proxy only: sum_q min_d |q-d|^2 ranks like -sum_q max_d <q,d> when
// the document vectors have equal norms.
//
// Measured (bench/muvera_tune, Fashion-MNIST patch sets: 60,000 documents
// and 200 queries of 16 x 65 dims; recall@10 of exact MaxSim after reranking
// the top N documents by exact FDE inner product; encode time per set, 1
// thread, on a shared 2-core machine, so +-30%):
//
//   R  k_sim d_proj final fill |  dims us/doc | N=100  200   500  1000  2000
//   20   4    16     -    yes  | 5,120   14   | 0.775 0.856 0.934 0.963 0.977
//   20   4    16     -    no   | 5,120   12   | 0.811 0.898 0.961 0.983 0.996
//   10   3    16     -    no   | 1,280    6   | 0.524 0.648 0.787 0.878 0.937
//   10   4    16     -    no   | 2,560    6   | 0.650 0.761 0.889 0.944 0.979
//   20   3    16     -    no   | 2,560   11   | 0.699 0.807 0.904 0.955 0.976
//   20   4     8     -    no   | 2,560    8   | 0.776 0.866 0.945 0.972 0.989
//   10   5     8     -    no   | 2,560    5   | 0.675 0.788 0.897 0.961 0.985
//   40   3     8     -    no   | 2,560   14   | 0.775 0.869 0.935 0.965 0.981
//    5   4    65     -    no   | 5,200    3   | 0.538 0.667 0.811 0.891 0.943
//   20   5    16     -    no   | 10,240  14   | 0.831 0.913 0.967 0.990 0.998
//   40   4    16     -    no   | 10,240  23   | 0.899 0.948 0.983 0.995 0.998
//   20   4    16   2048   no   | 2,048   14   | 0.703 0.819 0.934 0.970 0.990
//   40   4    16   1024   no   | 1,024   26   | 0.675 0.783 0.903 0.956 0.985
//   40   4    16   2048   yes  | 2,048   31   | 0.548 0.695 0.839 0.916 0.960
//   40   4    16   2048   no   | 2,048   27   | 0.796 0.881 0.967 0.988 0.996 <- defaults
//   40   4    16   4096   no   | 4,096   27   | 0.829 0.919 0.974 0.990 0.996
//   40   5     8   2048   no   | 2,048   22   | 0.803 0.883 0.956 0.985 0.996
//   80   4     8   2048   no   | 2,048   34   | 0.798 0.886 0.957 0.983 0.995
//   60   4    16   2048   no   | 2,048   38   | 0.806 0.889 0.962 0.986 0.996
//
// The defaults are the cheapest reaching recall@10 >= 0.95 by FDE dims x
// candidates (2,048 x 500; 1,024 x 1,000 ties on that product and loses on
// candidates, each one a rerank-table read). More repetitions sketched down
// beat fewer raw ones of the same length; d_proj = dim (no projection) and
// k_sim <= 3 lose. Query encoding costs about the same as a document's
// (~24 us for the defaults). <FDE(q), FDE(d)> against the Chamfer
// similarity on 20 x 500 Fashion pairs: Pearson 0.893 pooled, 0.902 within
// a query (defaults); 0.863 / 0.870 with fill_empty (R=20, k=4, d=16).
//
// Thread-safety: a MuveraEncoder is immutable after Create; Encode* may be
// called from any number of threads at once (scratch space is per thread).
// Each call runs on the calling thread only (BLAS set to one thread for its
// duration): encode many points from several threads to use more cores.
// Errors: parameters are validated once (INVALID_ARGUMENT naming the
// parameter and its range); encoding cannot fail.
#ifndef QUIVER_INDEX_MUVERA_H_
#define QUIVER_INDEX_MUVERA_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace quiver::index {

// Encoding parameters; names match the keys of
// MultiVectorOptions.encoding_params.
struct MuveraParams {
  // SimHash bits per repetition: 2^k_sim partitions. More partitions
  // separate a set's vectors better but leave more blocks empty and make the
  // encoding longer. Default 4. Range 0..10.
  uint32_t k_sim = 4;
  // Dimension of each partition's block. Default 16 (ParseMuveraParams:
  // min(16, dim)). Range 1..dim; dim means no projection.
  uint32_t d_proj = 16;
  // Independent repetitions, concatenated: more repetitions average out the
  // randomness of the partitions. Default 40. Range 1..256.
  uint32_t r_reps = 40;
  // Documents fill empty partitions from their Hamming-nearest vector (the
  // paper's rule). Default false: on the Fashion patch sets filling lowered
  // both the correlation with Chamfer similarity (0.86 against 0.89) and
  // recall (0.934 against 0.961 at 500 candidates, R=20 k=4 d=16): a filled
  // block is one unit vector where real blocks are averages, so it weighs
  // too much. Worth re-measuring on text (ColBERT-style) data.
  bool fill_empty = false;
  // Count-Sketch the raw encoding down to this many dims; 0 keeps the raw
  // r_reps * 2^k_sim * d_proj. Default 2048 (ParseMuveraParams: 0 when the
  // raw encoding is not longer). Range 0..raw dimension.
  uint32_t final_dim = 2048;
  // Seeds every random matrix. Default 1. Any uint64.
  uint64_t seed = 1;
};

// Largest encoding MuveraEncoder accepts (raw, before final_dim), and
// largest output: the API's limit on a vector field's dimension.
inline constexpr size_t kMuveraMaxRawDim = size_t{1} << 20;
inline constexpr size_t kMuveraMaxOutputDim = 65536;
// Largest random matrix an encoder may hold, in floats (dim x columns).
inline constexpr size_t kMuveraMaxMatrixFloats = size_t{1} << 24;

// Parses `params` (the keys k_sim, d_proj, r_reps, fill_empty ("true",
// "false", "1", "0"), final_dim, seed; absent keys take the defaults above)
// for vectors of `dim` dims and validates the result like
// ValidateMuveraParams. INVALID_ARGUMENT names an unknown key, a value that
// is not a number, or a value out of range, with the range.
absl::StatusOr<MuveraParams> ParseMuveraParams(
    const std::map<std::string, std::string>& params, size_t dim);

// OK if an encoder can be created for vectors of `dim` dims with `p`;
// otherwise INVALID_ARGUMENT naming the parameter and its range.
absl::Status ValidateMuveraParams(const MuveraParams& p, size_t dim);

// Every parameter by name, values as ParseMuveraParams reads them back.
std::map<std::string, std::string> MuveraParamsToMap(const MuveraParams& p);

class MuveraEncoder {
 public:
  // An encoder for sets of `dim`-dimensional vectors. INVALID_ARGUMENT as
  // ValidateMuveraParams.
  static absl::StatusOr<MuveraEncoder> Create(size_t dim, const MuveraParams& params);

  MuveraEncoder(MuveraEncoder&&) = default;
  MuveraEncoder& operator=(MuveraEncoder&&) = default;

  size_t dim() const { return dim_; }
  // Floats written by each Encode call.
  size_t output_dim() const { return output_dim_; }
  // r_reps * 2^k_sim * d_proj: the dimension before the final projection.
  size_t raw_dim() const { return raw_dim_; }
  const MuveraParams& params() const { return params_; }

  // Encodes a document of `n` vectors (n * dim floats, row-major) into
  // `out` (output_dim floats). n = 0 gives all zeros.
  void EncodeDocument(const float* vectors, size_t n, float* out) const;
  // The same for a query (sums, never filled).
  void EncodeQuery(const float* vectors, size_t n, float* out) const;

 private:
  MuveraEncoder() = default;
  void Encode(const float* vectors, size_t n, bool document, float* out) const;

  // Constant after construction.
  MuveraParams params_;
  size_t dim_ = 0;
  size_t partitions_ = 0;  // 2^k_sim
  size_t raw_dim_ = 0;
  size_t output_dim_ = 0;
  bool identity_ = false;  // d_proj == dim: no inner projection
  // dim x columns_, row-major: r_reps * k_sim hyperplane columns (rep-major),
  // then, unless identity_, r_reps * d_proj projection columns.
  size_t columns_ = 0;
  std::vector<float> matrix_;
  // Count-Sketch (final_dim > 0): raw coordinate j goes to bucket_[j] with
  // sign sign_[j].
  std::vector<uint32_t> bucket_;
  std::vector<float> sign_;
};

}  // namespace quiver::index

#endif  // QUIVER_INDEX_MUVERA_H_
