// FileMapping: a whole file mapped read-only, for data used in place
// instead of copied into memory (HNSW index files: index/hnsw_index.h).
// The pages are the page cache's: shared with the file, dropped under
// memory pressure and read back on use, so a mapped index costs no
// anonymous memory and loading it copies nothing.
//
// The mapping reads the file as it is now, not as it was when mapped: a
// file changed in place shows through, and a file truncated under a live
// mapping makes reads past its new end fault (SIGBUS). Quiver only maps
// files it replaces by rename and never writes in place; whoever maps one
// checks its checksum first (storage/segment_files.h).
//
// Ownership: shared; the mapping is removed when the last holder lets go
// (segments reading their rows in a mapped index hold it too).
// Thread-safety: immutable once made; read from any thread.
#ifndef QUIVER_STORAGE_FILE_MAPPING_H_
#define QUIVER_STORAGE_FILE_MAPPING_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace quiver::storage {

class FileMapping {
 public:
  // Maps all of `path` and faults its pages in (they are about to be read
  // whole: a checksum or a graph check). NOT_FOUND if it does not exist,
  // RESOURCE_EXHAUSTED if it cannot be mapped for want of memory or address
  // space, INTERNAL for other errors. An empty file maps to size() 0.
  static absl::StatusOr<std::shared_ptr<const FileMapping>> Map(const std::string& path);

  ~FileMapping();
  FileMapping(const FileMapping&) = delete;
  FileMapping& operator=(const FileMapping&) = delete;

  const char* data() const { return static_cast<const char*>(base_); }
  uint64_t size() const { return size_; }

 private:
  FileMapping(void* base, uint64_t size) : base_(base), size_(size) {}
  void* base_;
  uint64_t size_;
};

}  // namespace quiver::storage

#endif  // QUIVER_STORAGE_FILE_MAPPING_H_
