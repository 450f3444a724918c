// The journal's text form: every field of a volume survives a round trip, whatever the
// user put in names and parameters, and damaged text is DATA_LOSS, never a crash or a
// volume with a made-up id.
#include "store/volume_codec.h"

#include <gtest/gtest.h>

#include <limits>
#include <set>

namespace cellar::store {
namespace {

Volume FullVolume() {
  Volume v;
  v.id = "vol-0123456789abcdef0123456789abcdef";
  // Names and parameters come from users: YAML's special characters must survive.
  v.name = "pvc-1: {x} [y] # not a comment\n\"quoted\" 'single' ünïcode";
  v.slot = kMaxSlot;
  v.capacity_bytes = std::numeric_limits<uint64_t>::max();
  v.ephemeral = true;
  v.created_unix = -1;
  v.parameters["csi.storage.k8s.io/pvc/name"] = "data";
  v.parameters["csi.storage.k8s.io/pvc/namespace"] = "ml-team";
  v.parameters["empty"] = "";
  v.parameters["yes"] = "no";  // YAML 1.1 booleans stay strings
  Publication ro{"/var/lib/kubelet/pods/a b/volumes/x/mount",
                 true,
                 {"noexec", "nosuid"},
                 3,
                 "ml-team",
                 "train-7f",
                 "the FUSE connection behind it was lost: \"x\""};
  Publication rw{"/var/lib/kubelet/pods/c/volumes/y/mount", false, {}, 1, "", "", ""};
  v.publications[ro.target_path] = ro;
  v.publications[rw.target_path] = rw;
  v.replica_of = {"node-2: \"b\"", "10.0.0.2:7443"};
  return v;
}

void ExpectSameVolume(const Volume& a, const Volume& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.slot, b.slot);
  EXPECT_EQ(a.capacity_bytes, b.capacity_bytes);
  EXPECT_EQ(a.ephemeral, b.ephemeral);
  EXPECT_EQ(a.created_unix, b.created_unix);
  EXPECT_EQ(a.parameters, b.parameters);
  EXPECT_EQ(a.publications, b.publications);
  EXPECT_EQ(a.replica_of, b.replica_of);
  // Publication's == leaves the pod out (it is not part of the mount); compare it here.
  for (const auto& [target, p] : a.publications) {
    auto it = b.publications.find(target);
    if (it == b.publications.end()) continue;
    EXPECT_EQ(p.pod_namespace, it->second.pod_namespace) << target;
    EXPECT_EQ(p.pod_name, it->second.pod_name) << target;
    EXPECT_EQ(p.broken, it->second.broken) << target;
  }
}

TEST(VolumeCodecTest, PutRecordRoundTripsEveryField) {
  JournalRecord put{JournalRecord::Op::kPut, FullVolume()};
  std::string text = EncodeRecord(put);
  // One record is one line: the journal appends records line by line.
  EXPECT_EQ(text.find('\n'), std::string::npos) << text;
  Result<JournalRecord> back = DecodeRecord(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->op, JournalRecord::Op::kPut);
  ExpectSameVolume(back->volume, put.volume);
}

// Records journaled before publications kept their health read as healthy.
TEST(VolumeCodecTest, PublicationWithoutHealthIsHealthy) {
  std::string old =
      "{op: put, volume: {id: vol-0123456789abcdef0123456789abcdef, name: a, slot: 1, "
      "capacity: 1048576, ephemeral: false, created: 5, parameters: {}, publications: "
      "[{target: /t/1, readonly: false, access_mode: 1, flags: []}]}}";
  Result<JournalRecord> back = DecodeRecord(old);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->volume.publications.count("/t/1"), 1u);
  EXPECT_EQ(back->volume.publications["/t/1"].broken, "");
  // A healthy publication is written as before, without the key.
  EXPECT_EQ(EncodeRecord(*back).find("broken"), std::string::npos);
}

TEST(VolumeCodecTest, MinimalVolumeRoundTrips) {
  JournalRecord put;
  put.volume.id = NewVolumeId();
  Result<JournalRecord> back = DecodeRecord(EncodeRecord(put));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameVolume(back->volume, put.volume);
}

TEST(VolumeCodecTest, DeleteRecordCarriesOnlyTheId) {
  JournalRecord del{JournalRecord::Op::kDelete, FullVolume()};
  std::string text = EncodeRecord(del);
  EXPECT_EQ(text.find("pvc-1"), std::string::npos) << text;
  Result<JournalRecord> back = DecodeRecord(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->op, JournalRecord::Op::kDelete);
  EXPECT_EQ(back->volume.id, del.volume.id);
  EXPECT_TRUE(back->volume.publications.empty());
}

TEST(VolumeCodecTest, SnapshotRoundTripsSeveralVolumes) {
  std::map<std::string, Volume> volumes;
  Volume a = FullVolume();
  Volume b;
  b.id = NewVolumeId();
  b.name = "second";
  b.slot = 1;
  b.capacity_bytes = 1 << 20;
  volumes[a.id] = a;
  volumes[b.id] = b;
  Result<std::map<std::string, Volume>> back = DecodeSnapshot(EncodeSnapshot(volumes));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), 2u);
  ExpectSameVolume(back->at(a.id), a);
  ExpectSameVolume(back->at(b.id), b);

  Result<std::map<std::string, Volume>> empty = DecodeSnapshot(EncodeSnapshot({}));
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->empty());
}

TEST(VolumeCodecTest, DamagedRecordsAreDataLoss) {
  std::string good = EncodeRecord({JournalRecord::Op::kPut, FullVolume()});
  const std::vector<std::string> damaged = {
      "",
      "{op: put",                                                // cut mid-record
      good.substr(0, good.size() / 2),                           // likewise
      "{op: rename, id: vol-0123456789abcdef0123456789abcdef}",  // unknown op
      "{op: delete, id: ../../etc}",                             // an id that would be a path
      "{op: delete, id: vol-0123456789ABCDEF0123456789ABCDEF}",  // not ours: upper case
      "{op: delete}",                                            // no id
      "{op: put, volume: {id: vol-0123456789abcdef0123456789abcdef}}",  // fields missing
      "{op: put, volume: {id: vol-0123456789abcdef0123456789abcdef, name: n, slot: x, "
      "capacity: 1, ephemeral: false, created: 0, parameters: {}, publications: []}}",
      "[1, 2, 3]",
  };
  for (const std::string& text : damaged) {
    Result<JournalRecord> r = DecodeRecord(text);
    EXPECT_EQ(r.status().code(), Code::kDataLoss) << "text: " << text;
  }
}

TEST(VolumeCodecTest, DamagedSnapshotsAreDataLoss) {
  Volume v = FullVolume();
  std::string good = EncodeSnapshot({{v.id, v}});
  std::string newer = good;
  newer.replace(newer.find("version: 1"), 10, "version: 2");
  Result<std::map<std::string, Volume>> r = DecodeSnapshot(newer);
  EXPECT_EQ(r.status().code(), Code::kDataLoss);
  EXPECT_NE(r.status().message().find("version 2"), std::string::npos) << r.status().message();

  std::string bad_id = good;
  bad_id.replace(bad_id.find(v.id), v.id.size(), "vol-../../../etc/passwd");
  EXPECT_EQ(DecodeSnapshot(bad_id).status().code(), Code::kDataLoss);
  // (A snapshot cut short can still be valid YAML: the journal's CRC framing is what
  // catches torn snapshots and records before they reach this codec; journal_test.cc.)
  EXPECT_EQ(DecodeSnapshot("").status().code(), Code::kDataLoss);
}

TEST(VolumeCodecTest, VolumeIds) {
  EXPECT_TRUE(IsVolumeId("vol-0123456789abcdef0123456789abcdef"));
  EXPECT_FALSE(IsVolumeId(""));
  EXPECT_FALSE(IsVolumeId("vol-0123456789abcdef0123456789abcde"));    // short
  EXPECT_FALSE(IsVolumeId("vol-0123456789abcdef0123456789abcdef0"));  // long
  EXPECT_FALSE(IsVolumeId("VOL-0123456789abcdef0123456789abcdef"));
  EXPECT_FALSE(IsVolumeId("vol-0123456789abcdef0123456789abcde/"));
  EXPECT_FALSE(IsVolumeId("vol-../../../../../../../../etc/pass"));
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewVolumeId();
    EXPECT_TRUE(IsVolumeId(id)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace cellar::store
