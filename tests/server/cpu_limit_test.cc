// The cores quiverd may use: cgroup quota parsing, and the affinity mask
// capping what DetectCpuLimit reports.
#include "server/cpu_limit.h"

#include <sched.h>

#include <thread>

#include "gtest/gtest.h"

namespace quiver::server {
namespace {

TEST(CpuLimitTest, CgroupV2CpuMax) {
  EXPECT_EQ(CoresFromCpuMax("max 100000\n"), 0);
  EXPECT_EQ(CoresFromCpuMax("200000 100000\n"), 2);
  // A share rounds up: 1.5 cores keep two threads busy part of the time.
  EXPECT_EQ(CoresFromCpuMax("150000 100000"), 2);
  EXPECT_EQ(CoresFromCpuMax("50000 100000"), 1);
  EXPECT_EQ(CoresFromCpuMax("400000"), 4);  // the default period
  EXPECT_EQ(CoresFromCpuMax(""), 0);
  EXPECT_EQ(CoresFromCpuMax("lots 100000"), 0);
}

TEST(CpuLimitTest, CgroupV1Quota) {
  EXPECT_EQ(CoresFromCfsQuota(-1, 100000), 0);
  EXPECT_EQ(CoresFromCfsQuota(300000, 100000), 3);
  EXPECT_EQ(CoresFromCfsQuota(10000, 100000), 1);
  EXPECT_EQ(CoresFromCfsQuota(100000, 0), 0);
}

TEST(CpuLimitTest, TheAffinityMaskCapsTheCores) {
  cpu_set_t all;
  CPU_ZERO(&all);
  ASSERT_EQ(sched_getaffinity(0, sizeof(all), &all), 0);
  const CpuLimit here = DetectCpuLimit();
  EXPECT_GE(here.cores, 1);
  EXPECT_LE(here.cores, CPU_COUNT(&all));
  // A thread allowed one CPU sees one core.
  int first = 0;
  while (!CPU_ISSET(first, &all)) ++first;
  CpuLimit pinned;
  std::thread t([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
    pinned = DetectCpuLimit();
  });
  t.join();
  EXPECT_EQ(pinned.cores, 1);
  EXPECT_FALSE(pinned.source.empty());
}

}  // namespace
}  // namespace quiver::server
