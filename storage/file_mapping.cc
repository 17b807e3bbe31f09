#include "storage/file_mapping.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "storage/file_system.h"

namespace quiver::storage {

absl::StatusOr<std::shared_ptr<const FileMapping>> FileMapping::Map(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open", path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return IoError("cannot stat", path, err);
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  void* base = nullptr;
  if (size > 0) {
    base = mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (base == MAP_FAILED) {
      const int err = errno;
      close(fd);
      if (err == ENOMEM) {
        return absl::ResourceExhaustedError(absl::StrCat("cannot map ", path, ": out of memory"));
      }
      return IoError("cannot map", path, err);
    }
  }
  // The mapping keeps the file's pages; the descriptor is not needed.
  close(fd);
  return std::shared_ptr<const FileMapping>(new FileMapping(base, size));
}

FileMapping::~FileMapping() {
  if (base_ != nullptr) munmap(base_, size_);
}

}  // namespace quiver::storage
