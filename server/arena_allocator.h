// ArenaMessageAllocator: gives each call of one callback-API method its
// request and response on a protobuf Arena, so that parsing the request
// and filling the response cost bump allocations instead of a malloc and a
// free per message and per string (a Search response holds a Hit and an id
// string per hit). The first kInitialBlock bytes come with the holder, one
// allocation for a small call.
//
// Ownership: gRPC calls AllocateMessages once per call and Release once the
// call is done; the holder owns the arena, and the arena everything on it.
// Request and response stay valid until Release, which gRPC calls after the
// reactor's OnDone, so a handler may use them until it calls Finish, as
// without an allocator. The allocator itself must outlive the server.
// Thread-safety: AllocateMessages is called concurrently; it keeps no state.
#ifndef QUIVER_SERVER_ARENA_ALLOCATOR_H_
#define QUIVER_SERVER_ARENA_ALLOCATOR_H_

#include <cstddef>

#include "google/protobuf/arena.h"
#include "grpcpp/support/message_allocator.h"

namespace quiver::server {

template <typename Request, typename Response>
class ArenaMessageAllocator final : public grpc::MessageAllocator<Request, Response> {
 public:
  // Enough for a search's request and a response of a few dozen hits.
  static constexpr size_t kInitialBlock = 8192;

  grpc::MessageHolder<Request, Response>* AllocateMessages() override { return new Holder(); }

 private:
  class Holder final : public grpc::MessageHolder<Request, Response> {
   public:
    Holder() : arena_(Options(initial_)) {
      this->set_request(google::protobuf::Arena::CreateMessage<Request>(&arena_));
      this->set_response(google::protobuf::Arena::CreateMessage<Response>(&arena_));
    }
    void Release() override { delete this; }
    // The request goes with the arena, in Release.
    void FreeRequest() override {}

   private:
    static google::protobuf::ArenaOptions Options(char* block) {
      google::protobuf::ArenaOptions o;
      o.initial_block = block;
      o.initial_block_size = kInitialBlock;
      return o;
    }
    // Declared before the arena, which takes it as its first block (the
    // arena never frees a block it was given).
    alignas(16) char initial_[kInitialBlock];
    google::protobuf::Arena arena_;
  };
};

// Blocks of kBlockBytes for arenas of calls whose requests run to megabytes
// (an UpsertPoints of a thousand 784-d points is 3 MB). A fresh arena's
// blocks would be fresh memory every call, each page faulted in while the
// request is parsed; these are kept once freed (up to kKeptBytes in all)
// and handed to the next call warm. Any thread.
class ArenaBlockPool {
 public:
  static constexpr size_t kBlockBytes = size_t{1} << 20;
  static constexpr size_t kKeptBytes = size_t{32} << 20;

  // ArenaOptions::block_alloc / block_dealloc. A block of another size
  // (one allocation larger than a block) is the heap's.
  static void* Allocate(size_t bytes);
  static void Free(void* block, size_t bytes);
  // Blocks kept now (tests).
  static size_t Kept();
};

// As ArenaMessageAllocator, for large requests: the arena's blocks come
// from ArenaBlockPool, a whole block from the first allocation (a small
// call's messages fit in the first; a large one's need few blocks).
template <typename Request, typename Response>
class PooledArenaMessageAllocator final : public grpc::MessageAllocator<Request, Response> {
 public:
  grpc::MessageHolder<Request, Response>* AllocateMessages() override { return new Holder(); }

 private:
  class Holder final : public grpc::MessageHolder<Request, Response> {
   public:
    Holder() : arena_(Options()) {
      this->set_request(google::protobuf::Arena::CreateMessage<Request>(&arena_));
      this->set_response(google::protobuf::Arena::CreateMessage<Response>(&arena_));
    }
    void Release() override { delete this; }
    void FreeRequest() override {}

   private:
    static google::protobuf::ArenaOptions Options() {
      google::protobuf::ArenaOptions o;
      o.start_block_size = ArenaBlockPool::kBlockBytes;
      o.max_block_size = ArenaBlockPool::kBlockBytes;
      o.block_alloc = &ArenaBlockPool::Allocate;
      o.block_dealloc = &ArenaBlockPool::Free;
      return o;
    }
    google::protobuf::Arena arena_;
  };
};

}  // namespace quiver::server

#endif  // QUIVER_SERVER_ARENA_ALLOCATOR_H_
