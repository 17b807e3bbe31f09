#!/usr/bin/python3
"""Schema evolution (UpdateCollection) from Python through proto/ alone,
against a real quiverd:

  - an attribute added to a collection with points: older points are null in
    it, new ones carry it, in count, search, get and scroll;
  - an attribute index turned on is built for every sealed segment (describe
    shows it per segment) and off again;
  - a type change is FAILED_PRECONDITION and changes nothing; malformed
    changes are INVALID_ARGUMENT;
  - an acknowledged change survives kill -9;
  - PATCH /v1/collections/{name} on the HTTP endpoint carries the same
    fields.

Usage:
  /usr/bin/python3 tests/python/schema_update_e2e_test.py --quiverd build/quiverd --proto proto
"""

import json
import os
import random
import shutil
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quiver_e2e_test as base  # noqa: E402  (stub generation and the Server class)

T = base.RPC_TIMEOUT
DIM = 8


def setUpModule():
    base.setUpModule()


class SchemaUpdateTest(base.QuiverTestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="quiver_py_schema_")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.http_port = base._free_port()
        self.server = base.Server(os.path.join(self.tmp, "data"),
                                  ["--segment-max-rows", "100", "--seal-idle-ms", "50",
                                   "--http-listen", "127.0.0.1:%d" % self.http_port])
        self.server.start()
        self.addCleanup(self.server.stop)
        sch = base.pb.CollectionSchema(
            vectors=[base.pb.VectorField(name="v", dim=DIM, metric=base.pb.L2,
                                         index=base.pb.IndexSpec(type="HNSW"))],
            attributes=[base.pb.AttributeField(name="n", type=base.pb.INT64)])
        self.create("c", sch)
        self.rng = random.Random(3)

    def put(self, first, last, tag=False):
        pts = []
        for i in range(first, last):
            attrs = {"n": i}
            if tag:
                attrs["tag"] = "t%d" % (i % 4)
            pts.append(base.make_point("p%d" % i, {"v": [self.rng.gauss(0, 1) for _ in range(DIM)]},
                                       attrs))
        self.upsert("c", pts)

    def update(self, *attrs):
        return self.server.collections.UpdateCollection(
            base.coll_pb.UpdateCollectionRequest(name="c", attributes=list(attrs)), timeout=T)

    def describe(self):
        return self.server.collections.GetCollection(
            base.coll_pb.GetCollectionRequest(name="c"), timeout=T).collection

    def sealed_coverage(self, attr):
        """(sealed segments, those with an attribute index on `attr`)."""
        segs = [s for s in self.describe().stats.segments
                if s.state != base.coll_pb.SegmentInfo.GROWING]
        return len(segs), sum(attr in s.indexed_attributes for s in segs)

    def test_add_attribute_index_it_and_survive_kill9(self):
        self.put(0, 300)
        base.wait_indexed(self.server, "c", min_segments=3, sealed_only=True)
        resp = self.update(base.pb.AttributeField(name="tag", type=base.pb.STRING, indexed=True))
        self.assertEqual([a.name for a in resp.collection.schema.attributes], ["n", "tag"])
        self.assertGreater(resp.sequence, 0)
        self.put(300, 340, tag=True)
        self.assertEqual(self.count("c", 'tag IS NULL'), 300)
        self.assertEqual(self.count("c", 'tag = "t1"'), 10)
        hits = self.search("c", "v", [[0.0] * DIM], 100, flt='tag = "t2"')[0].hits
        self.assertEqual(sorted(h.id for h in hits), sorted("p%d" % i for i in range(302, 340, 4)))
        got = {p.id: p for p in self.get("c", ["p1", "p301"])}
        self.assertNotIn("tag", got["p1"].attributes)
        self.assertEqual(got["p301"].attributes["tag"].string_value, "t1")
        page = self.server.points.ScrollPoints(base.pts_pb.ScrollPointsRequest(
            collection="c", page_size=1000, attributes=["tag"]), timeout=T)
        self.assertEqual(sum("tag" in p.attributes for p in page.points), 40)

        # The index on n, turned on for segments sealed before.
        self.update(base.pb.AttributeField(name="n", indexed=True))
        base.wait_indexed(self.server, "c", min_segments=3, sealed_only=True)
        sealed, covered = self.sealed_coverage("n")
        self.assertEqual(covered, sealed)
        self.assertEqual(self.sealed_coverage("tag")[1], sealed)

        self.server.kill()
        self.server.start()
        info = self.describe()
        self.assertEqual([(a.name, a.type, a.indexed) for a in info.schema.attributes],
                         [("n", base.pb.INT64, True), ("tag", base.pb.STRING, True)])
        self.assertEqual(self.count("c", 'tag = "t1"'), 10)
        self.assertEqual(self.count("c", 'tag IS NULL'), 300)

        self.update(base.pb.AttributeField(name="n", type=base.pb.INT64, indexed=False))
        base.wait_indexed(self.server, "c", min_segments=3, sealed_only=True)
        self.assertEqual(self.sealed_coverage("n")[1], 0)
        self.assertFalse(self.describe().schema.attributes[0].indexed)
        self.assertEqual(self.count("c", "n < 10"), 10)

    def test_refused_changes_change_nothing(self):
        self.put(0, 50)
        before = self.describe()
        err = self.assertCode(
            grpc.StatusCode.FAILED_PRECONDITION, self.server.collections.UpdateCollection,
            base.coll_pb.UpdateCollectionRequest(name="c", attributes=[
                base.pb.AttributeField(name="new", type=base.pb.BOOL),
                base.pb.AttributeField(name="n", type=base.pb.STRING)]))
        self.assertIn('attribute "n" of collection "c" is INT64', err.details())
        for attrs in ([base.pb.AttributeField(name="x")],  # no type
                      [base.pb.AttributeField(name="x", type=base.pb.INT64)] * 2,
                      [base.pb.AttributeField(name="v", type=base.pb.INT64)],
                      [base.pb.AttributeField(name="s", type=base.pb.STRING, window=True)]):
            self.assertCode(grpc.StatusCode.INVALID_ARGUMENT,
                            self.server.collections.UpdateCollection,
                            base.coll_pb.UpdateCollectionRequest(name="c", attributes=attrs))
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.server.collections.UpdateCollection,
                        base.coll_pb.UpdateCollectionRequest(name="nope", attributes=[
                            base.pb.AttributeField(name="x", type=base.pb.INT64)]))
        after = self.describe()
        self.assertEqual(after.schema, before.schema)
        self.assertEqual(after.stats.last_sequence, before.stats.last_sequence)

    def test_http_patch_carries_attributes(self):
        body = json.dumps({"attributes": [{"name": "score", "type": "DOUBLE", "window": True}]})
        req = urllib.request.Request("http://127.0.0.1:%d/v1/collections/c" % self.http_port,
                                     data=body.encode(), method="PATCH",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            out = json.loads(resp.read())
        attrs = out["collection"]["schema"]["attributes"]
        self.assertEqual(attrs[1], {"name": "score", "type": "DOUBLE", "indexed": True,
                                    "window": True})
        body = json.dumps({"attributes": [{"name": "score", "type": "STRING"}]})
        req = urllib.request.Request("http://127.0.0.1:%d/v1/collections/c" % self.http_port,
                                     data=body.encode(), method="PATCH",
                                     headers={"Content-Type": "application/json"})
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=30)
        self.assertEqual(cm.exception.code, 400)


if __name__ == "__main__":
    unittest.main(argv=base._parse_own_args(sys.argv))
