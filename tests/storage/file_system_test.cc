// storage/file_system.h (POSIX) and the fault-injecting file system of the
// tests (tests/common/fault_file_system.h): errors, atomic writes, and what
// a simulated power loss keeps.
#include "storage/file_system.h"

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "tests/common/fault_file_system.h"
#include "tests/common/test_util.h"

namespace quiver::storage {
namespace {

using ::quiver::testing::FaultFileSystem;
using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(FileSystemTest, ErrnoBecomesStatus) {
  EXPECT_THAT(IoError("write", "/x", ENOSPC),
              StatusIs(absl::StatusCode::kResourceExhausted, "disk full: write /x"));
  EXPECT_THAT(IoError("write", "/x", EDQUOT), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(IoError("open", "/x", ENOENT), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(IoError("fsync", "/x", EIO),
              StatusIs(absl::StatusCode::kInternal, "Input/output error"));
}

TEST(FileSystemTest, PosixWritesAtomicallyAndLists) {
  TempDir dir;
  FileSystem& fs = *FileSystem::Default();
  const std::string path = dir.path() + "/a/b/f";
  QUIVER_ASSERT_OK(fs.CreateDirs(dir.path() + "/a/b"));
  QUIVER_ASSERT_OK(WriteFileAtomic(fs, path, "one"));
  QUIVER_ASSERT_OK(WriteFileAtomic(fs, path, "two!"));
  EXPECT_EQ(*fs.ReadFile(path), "two!");
  EXPECT_EQ(*fs.FileSize(path), 4u);
  EXPECT_EQ(*fs.ListDir(dir.path() + "/a/b"), std::vector<std::string>{"f"});
  EXPECT_THAT(fs.ReadFile(dir.path() + "/none"), StatusIs(absl::StatusCode::kNotFound));
  QUIVER_ASSERT_OK(fs.DeleteTree(dir.path() + "/a"));
  EXPECT_FALSE(*fs.Exists(path));
  QUIVER_ASSERT_OK(fs.DeleteFile(path));  // missing is fine
}

// A file where a directory should be is an error, not a directory that
// "exists": writing into it would fail later, far from the cause.
TEST(FileSystemTest, CreateDirsRefusesAFileInTheWay) {
  TempDir dir;
  FileSystem& fs = *FileSystem::Default();
  QUIVER_ASSERT_OK(WriteFileAtomic(fs, dir.path() + "/x", "data"));
  EXPECT_FALSE(fs.CreateDirs(dir.path() + "/x").ok());
  EXPECT_FALSE(fs.CreateDirs(dir.path() + "/x/y").ok());
}

TEST(FaultFileSystemTest, PowerLossKeepsOnlySyncedData) {
  TempDir dir;
  auto fs = FaultFileSystem::Create(dir.path() + "/trash");
  const std::string d = dir.path() + "/d";
  QUIVER_ASSERT_OK(fs->CreateDirs(d));
  QUIVER_ASSERT_OK(fs->SyncDir(dir.path()));
  // Durable: written, synced, name synced.
  QUIVER_ASSERT_OK(WriteFileAtomic(*fs, d + "/durable", "kept"));
  // Name synced, data partly synced: cut back to what was synced.
  {
    auto f = fs->NewWritableFile(d + "/partial");
    QUIVER_ASSERT_OK(f);
    QUIVER_ASSERT_OK((*f)->Append("synced"));
    QUIVER_ASSERT_OK((*f)->Sync());
    QUIVER_ASSERT_OK(fs->SyncDir(d));
    QUIVER_ASSERT_OK((*f)->Append("-not"));
    QUIVER_ASSERT_OK((*f)->Close());
  }
  // An unsynced rename over a durable file and an unsynced delete undo.
  QUIVER_ASSERT_OK(WriteFileAtomic(*fs, d + "/replaced", "old"));
  QUIVER_ASSERT_OK(WriteFileSynced(*fs, d + "/new", "new"));
  QUIVER_ASSERT_OK(fs->Rename(d + "/new", d + "/replaced"));
  QUIVER_ASSERT_OK(fs->DeleteFile(d + "/durable"));
  EXPECT_FALSE(std::filesystem::exists(d + "/durable"));
  // Synced data, name never synced: gone.
  QUIVER_ASSERT_OK(WriteFileSynced(*fs, d + "/unnamed", "lost"));
  fs->PowerOff();
  QUIVER_ASSERT_OK(fs->Rename(d + "/partial", d + "/moved"));
  QUIVER_ASSERT_OK(fs->SyncDir(d));  // the power is off: no effect
  QUIVER_ASSERT_OK(fs->DropUnsyncedData());
  EXPECT_EQ(Slurp(d + "/durable"), "kept");
  EXPECT_FALSE(std::filesystem::exists(d + "/unnamed"));
  EXPECT_FALSE(std::filesystem::exists(d + "/moved"));
  EXPECT_EQ(Slurp(d + "/partial"), "synced");
  EXPECT_EQ(Slurp(d + "/replaced"), "old");
  EXPECT_FALSE(std::filesystem::exists(d + "/new"));
}

TEST(FaultFileSystemTest, InjectedFaultsFailTheChosenOperation) {
  TempDir dir;
  auto fs = FaultFileSystem::Create(dir.path() + "/trash");
  // A directory whose name holds a "b", as the random part of a temporary
  // directory's may: the pattern is anchored at the directory, so only the
  // file names can match its "b".
  const std::string d = dir.path() + "/b-dir";
  std::filesystem::create_directories(d);
  FaultFileSystem::Fault f;
  f.op = FaultFileSystem::Op::kSync;
  f.err = ENOSPC;
  f.path_contains = d + "/b*.idx";
  f.skip = 1;
  fs->Inject(f);
  QUIVER_ASSERT_OK(WriteFileSynced(*fs, d + "/a.idx", "x"));
  QUIVER_ASSERT_OK(WriteFileSynced(*fs, d + "/b1.idx", "x"));  // skipped
  EXPECT_THAT(WriteFileSynced(*fs, d + "/b2.idx", "x"),
              StatusIs(absl::StatusCode::kResourceExhausted, "disk full"));
  QUIVER_ASSERT_OK(WriteFileSynced(*fs, d + "/b3.idx", "x"));  // once only
  EXPECT_EQ(fs->faults_fired(), 1);

  f = {};
  f.op = FaultFileSystem::Op::kAppend;
  f.torn = true;
  fs->Inject(f);
  EXPECT_THAT(WriteFileSynced(*fs, dir.path() + "/torn", "abcdef"),
              StatusIs(absl::StatusCode::kInternal, "Input/output error"));
  EXPECT_EQ(Slurp(dir.path() + "/torn"), "abc");
}

}  // namespace
}  // namespace quiver::storage
