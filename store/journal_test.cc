#include "store/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "store/fault_env.h"
#include "tests/support/temp_dir.h"

namespace cellar::store {
namespace {

namespace fs = std::filesystem;

class JournalTest : public ::testing::Test {
 protected:
  std::unique_ptr<Journal> Reopen(Recovered* r, Env& env = RealEnv()) {
    auto j = Journal::Open(env, dir_, r);
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return j.ok() ? std::move(*j) : nullptr;
  }

  const cellar::testing::TempDir tmp_{"cellar-journal"};
  const fs::path dir_ = tmp_.path();
};

TEST_F(JournalTest, RecordsSurviveReopen) {
  Recovered r;
  {
    auto j = Reopen(&r);
    ASSERT_TRUE(j->Append("one").ok());
    ASSERT_TRUE(j->Append("two").ok());
  }
  auto j = Reopen(&r);
  EXPECT_EQ(r.records, (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(r.dropped_tail_bytes, 0u);
}

TEST_F(JournalTest, TornTailIsCutAndLaterAppendsSurvive) {
  FaultEnv env(RealEnv());
  Recovered r;
  {
    auto j = Reopen(&r, env);
    ASSERT_TRUE(j->Append("kept").ok());
    env.TearNextAppend(7);
    EXPECT_FALSE(j->Append("torn-record").ok());
    // The journal cut its own partial write, so the next record is not lost behind it.
    ASSERT_TRUE(j->Append("after").ok());
  }
  auto j = Reopen(&r);
  EXPECT_EQ(r.records, (std::vector<std::string>{"kept", "after"}));
}

TEST_F(JournalTest, CrashMidAppendLeavesTornTailThatRecoveryDrops) {
  Recovered r;
  {
    auto j = Reopen(&r);
    ASSERT_TRUE(j->Append("kept").ok());
  }
  // What a crash in the middle of write(2) leaves: half a record at the end.
  {
    std::ofstream log(dir_ / "log", std::ios::app | std::ios::binary);
    log.write("\x20\x00\x00\x00garbage", 11);
  }
  auto j = Reopen(&r);
  EXPECT_EQ(r.records, (std::vector<std::string>{"kept"}));
  EXPECT_EQ(r.dropped_tail_bytes, 11u);
  ASSERT_TRUE(j->Append("next").ok());
  j.reset();
  Reopen(&r);
  EXPECT_EQ(r.records, (std::vector<std::string>{"kept", "next"}));
}

TEST_F(JournalTest, FlippedByteEndsReplayAtThatRecord) {
  Recovered r;
  {
    auto j = Reopen(&r);
    ASSERT_TRUE(j->Append("first").ok());
    ASSERT_TRUE(j->Append("second").ok());
  }
  {
    std::fstream log(dir_ / "log", std::ios::in | std::ios::out | std::ios::binary);
    log.seekp(-2, std::ios::end);
    log.put('X');
  }
  Reopen(&r);
  EXPECT_EQ(r.records, (std::vector<std::string>{"first"}));
}

TEST_F(JournalTest, CompactionKeepsStateAndSkipsOldRecords) {
  Recovered r;
  {
    auto j = Reopen(&r);
    ASSERT_TRUE(j->Append("a").ok());
    ASSERT_TRUE(j->Append("b").ok());
    ASSERT_TRUE(j->Compact("state-ab").ok());
    ASSERT_TRUE(j->Append("c").ok());
  }
  Reopen(&r);
  EXPECT_EQ(r.snapshot, "state-ab");
  EXPECT_EQ(r.records, (std::vector<std::string>{"c"}));
}

TEST_F(JournalTest, CrashBetweenSnapshotAndLogTruncationReplaysNothingTwice) {
  Recovered r;
  std::string old_log;
  {
    auto j = Reopen(&r);
    ASSERT_TRUE(j->Append("a").ok());
    old_log = *RealEnv().ReadFile(dir_ / "log");
    ASSERT_TRUE(j->Compact("state-a").ok());
  }
  // Put the pre-compaction log back: as if the crash came before the truncation.
  ASSERT_TRUE(RealEnv().WriteFileAtomic(dir_ / "log", old_log).ok());
  Reopen(&r);
  EXPECT_EQ(r.snapshot, "state-a");
  EXPECT_TRUE(r.records.empty());
}

TEST_F(JournalTest, DamagedSnapshotIsDataLoss) {
  Recovered r;
  {
    auto j = Reopen(&r);
    ASSERT_TRUE(j->Compact("state").ok());
  }
  {
    std::fstream snap(dir_ / "snapshot", std::ios::in | std::ios::out | std::ios::binary);
    snap.seekp(-1, std::ios::end);
    snap.put('#');
  }
  auto j = Journal::Open(RealEnv(), dir_, &r);
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), Code::kDataLoss);
  EXPECT_NE(j.status().message().find("snapshot"), std::string::npos);
}

TEST_F(JournalTest, FailedSyncIsReported) {
  FaultEnv env(RealEnv());
  Recovered r;
  auto j = Reopen(&r, env);
  env.FailSyncs(true);
  Status st = j->Append("x");
  EXPECT_EQ(st.err(), EIO);
}

}  // namespace
}  // namespace cellar::store
