#include "server/arena_allocator.h"

#include <new>
#include <vector>

#include "base/mutex.h"

namespace quiver::server {
namespace {

struct Pool {
  Mutex mu;
  std::vector<void*> blocks ABSL_GUARDED_BY(mu);
};

Pool& ThePool() {
  static Pool* const pool = new Pool();  // never destroyed: gRPC threads may outlive main
  return *pool;
}

}  // namespace

void* ArenaBlockPool::Allocate(size_t bytes) {
  if (bytes == kBlockBytes) {
    Pool& p = ThePool();
    MutexLock lock(&p.mu);
    if (!p.blocks.empty()) {
      void* b = p.blocks.back();
      p.blocks.pop_back();
      return b;
    }
  }
  return ::operator new(bytes);
}

void ArenaBlockPool::Free(void* block, size_t bytes) {
  if (bytes == kBlockBytes) {
    Pool& p = ThePool();
    MutexLock lock(&p.mu);
    if (p.blocks.size() < kKeptBytes / kBlockBytes) {
      p.blocks.push_back(block);
      return;
    }
  }
  ::operator delete(block);
}

size_t ArenaBlockPool::Kept() {
  Pool& p = ThePool();
  MutexLock lock(&p.mu);
  return p.blocks.size();
}

}  // namespace quiver::server
