// ScopedOmpThreads: sets the calling thread's OpenMP thread count for a
// scope and restores it after, so a single-query search does not start an
// OpenMP team (OpenBLAS and FAISS follow the calling thread's setting) and a
// build uses exactly the threads it was given. It touches only the calling
// thread's setting, so create and destroy it on the same thread; does not fail.
#ifndef QUIVER_INDEX_OMP_THREADS_H_
#define QUIVER_INDEX_OMP_THREADS_H_

#include <omp.h>

namespace quiver::index {

class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int n) : saved_(omp_get_max_threads()) {
    if (saved_ != n) omp_set_num_threads(n);
  }
  ~ScopedOmpThreads() {
    if (omp_get_max_threads() != saved_) omp_set_num_threads(saved_);
  }
  ScopedOmpThreads(const ScopedOmpThreads&) = delete;
  ScopedOmpThreads& operator=(const ScopedOmpThreads&) = delete;

 private:
  const int saved_;
};

}  // namespace quiver::index

#endif  // QUIVER_INDEX_OMP_THREADS_H_
