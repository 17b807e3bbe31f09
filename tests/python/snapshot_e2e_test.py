#!/usr/bin/python3
"""Snapshots from Python through proto/ alone: create, list, download
(server streaming), restore by upload (client streaming) and by name,
refusal of an altered file, delete, and an offline restore of the
downloaded file with quiverd --restore-from.

Usage:
  /usr/bin/python3 tests/python/snapshot_e2e_test.py --quiverd build/quiverd --proto proto
"""

import importlib
import os
import shutil
import sys
import tempfile
import unittest

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quiver_e2e_test as base  # noqa: E402  (stub generation and the Server class)

snap_pb = None
snap_grpc = None
DIM = 8
N = 600


def setUpModule():
    global snap_pb, snap_grpc
    base.setUpModule()
    snap_pb = importlib.import_module("quiver.v1.snapshots_pb2")
    snap_grpc = importlib.import_module("quiver.v1.snapshots_pb2_grpc")


def vec(i):
    return [float((i * 31 + d * 7) % 101) for d in range(DIM)]


class SnapshotTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="quiver_py_snap_")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.server = base.Server(os.path.join(self.tmp, "data"),
                                  ["--segment-max-rows", "200", "--seal-idle-ms", "200"])
        self.server.start()
        self.addCleanup(self.server.stop)
        self.snaps = snap_grpc.SnapshotServiceStub(self.server.channel)
        s = base.pb.CollectionSchema()
        f = s.vectors.add(name="v", dim=DIM, metric=base.pb.L2)
        f.index.type = "HNSW"
        s.attributes.add(name="n", type=base.pb.INT64)
        self.server.collections.CreateCollection(
            base.coll_pb.CreateCollectionRequest(name="py", schema=s), timeout=base.RPC_TIMEOUT)
        points = [base.make_point("p%d" % i, {"v": vec(i)}, {"n": i}) for i in range(N)]
        self.server.points.UpsertPoints(
            base.pts_pb.UpsertPointsRequest(collection="py", points=points),
            timeout=base.RPC_TIMEOUT)

    def content(self, stub_points, coll):
        resp = stub_points.GetPoints(base.pts_pb.GetPointsRequest(
            collection=coll, ids=["p%d" % i for i in range(N)], with_vectors=True),
            timeout=base.RPC_TIMEOUT)
        return {p.id: (list(p.vectors["v"].values), p.attributes["n"].int_value)
                for p in resp.points}

    def download(self, name):
        data = bytearray()
        info = None
        for msg in self.snaps.DownloadSnapshot(snap_pb.DownloadSnapshotRequest(name=name),
                                               timeout=base.RPC_TIMEOUT):
            if info is None:
                info = msg.snapshot
            data += msg.chunk
        return info, bytes(data)

    def upload(self, data, target):
        def requests():
            yield snap_pb.RestoreSnapshotRequest(new_collection=target)
            for at in range(0, len(data), 100000):
                yield snap_pb.RestoreSnapshotRequest(chunk=data[at:at + 100000])
        return self.snaps.RestoreSnapshot(requests(), timeout=base.RPC_TIMEOUT)

    def test_create_download_restore(self):
        want = self.content(self.server.points, "py")
        self.assertEqual(len(want), N)
        created = self.snaps.CreateSnapshot(
            snap_pb.CreateSnapshotRequest(collection="py", name="pysnap"),
            timeout=base.RPC_TIMEOUT).snapshot
        self.assertEqual(created.name, "pysnap")
        self.assertEqual(list(created.collections), ["py"])
        listed = self.snaps.ListSnapshots(snap_pb.ListSnapshotsRequest(), timeout=base.RPC_TIMEOUT)
        self.assertEqual([s.name for s in listed.snapshots], ["pysnap"])

        info, data = self.download("pysnap")
        self.assertEqual(info.sequence, created.sequence)
        self.assertEqual(len(data), created.size_bytes)

        restored = self.upload(data, "py_uploaded")
        self.assertEqual(restored.collection.name, "py_uploaded")
        self.assertEqual(restored.sequence, created.sequence)
        self.assertEqual(self.content(self.server.points, "py_uploaded"), want)

        by_name = self.snaps.RestoreSnapshot(iter([snap_pb.RestoreSnapshotRequest(
            snapshot="pysnap", new_collection="py_named")]), timeout=base.RPC_TIMEOUT)
        self.assertEqual(by_name.collection.stats.point_count, N)
        self.assertEqual(self.content(self.server.points, "py_named"), want)

        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0x01
        with self.assertRaises(grpc.RpcError) as cm:
            self.upload(bytes(flipped), "py_bad")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DATA_LOSS)
        self.assertRegex(cm.exception.details(), r"file (db|segments)/\S+ failed its checksum")
        with self.assertRaises(grpc.RpcError) as cm:
            self.upload(data[:len(data) - 100], "py_cut")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DATA_LOSS)
        names = [c.name for c in self.server.collections.ListCollections(
            base.coll_pb.ListCollectionsRequest(), timeout=base.RPC_TIMEOUT).collections]
        self.assertEqual(sorted(names), ["py", "py_named", "py_uploaded"])

        self.snaps.DeleteSnapshot(snap_pb.DeleteSnapshotRequest(name="pysnap"),
                                  timeout=base.RPC_TIMEOUT)
        with self.assertRaises(grpc.RpcError) as cm:
            self.snaps.DeleteSnapshot(snap_pb.DeleteSnapshotRequest(name="pysnap"),
                                      timeout=base.RPC_TIMEOUT)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

        # Offline: the downloaded file into a fresh data directory.
        path = os.path.join(self.tmp, "pysnap.qsnap")
        with open(path, "wb") as f:
            f.write(data)
        offline = base.Server(os.path.join(self.tmp, "fresh"), ["--restore-from", path])
        offline.start()
        self.addCleanup(offline.stop)
        self.assertEqual(self.content(offline.points, "py"), want)


if __name__ == "__main__":
    argv = base._parse_own_args(sys.argv)
    unittest.main(argv=argv, verbosity=2)
