#!/usr/bin/python3
"""Schema evolution (UpdateCollection) from Python through proto/ alone,
against a real quiverd:

  - an attribute added to a collection with points: older points are null in
    it, new ones carry it, in count, search, get and scroll;
  - an attribute index turned on is built for every sealed segment (describe
    shows it per segment) and off again;
  - a type change is FAILED_PRECONDITION and changes nothing; malformed
    changes are INVALID_ARGUMENT;
  - a vector field added to a collection with points: older points lack it,
    searches of it find exactly the points given one (by upsert or partial
    update), in brute-force order, before and after its index is built;
  - a vector field dropped: no request can name it, its name is free, the
    rest of the collection answers as before;
  - refused vector-field changes (name taken, multi-vector, dropping the
    last field, unknown names) change nothing;
  - an acknowledged change survives kill -9 (and VerifyCollection finds no
    defect after one);
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
        # No merging by size: the tests keep segments written before a
        # field was added beside ones written after (several 100-row
        # segments, which four at a time would merge).
        self.server = base.Server(os.path.join(self.tmp, "data"),
                                  ["--segment-max-rows", "100", "--seal-idle-ms", "50",
                                   "--merge-target-mb", "0",
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

    def update_fields(self, add=(), drop=()):
        return self.server.collections.UpdateCollection(
            base.coll_pb.UpdateCollectionRequest(name="c", add_vectors=list(add),
                                                 drop_vectors=list(drop)), timeout=T)

    def nearest_w(self, w_of, query, k):
        """Ids of the k points nearest `query` by L2 over w_of (id -> w)."""
        def l2(a):
            return sum((x - y) ** 2 for x, y in zip(a, query))
        return [pid for pid, _ in sorted(w_of.items(), key=lambda kv: (l2(kv[1]), kv[0]))][:k]

    def verify_clean(self):
        resp = self.server.collections.VerifyCollection(
            base.coll_pb.VerifyCollectionRequest(name="c"), timeout=120)
        self.assertEqual(list(resp.defects), [])

    def test_add_and_drop_vector_fields_survive_kill9(self):
        self.put(0, 300)
        base.wait_indexed(self.server, "c", min_segments=3, sealed_only=True)
        w_field = base.pb.VectorField(name="w", dim=3, metric=base.pb.L2,
                                      index=base.pb.IndexSpec(type="HNSW"))
        resp = self.update_fields(add=[w_field])
        self.assertEqual([(f.name, f.optional) for f in resp.collection.schema.vectors],
                         [("v", False), ("w", True)])
        # No point has one yet: an empty answer that says why.
        res = self.search("c", "w", [[0.0, 0.0, 0.0]], 10)[0]
        self.assertEqual((len(res.hits), res.matching_points), (0, 0))

        w_of = {}
        pts = []
        for i in range(300, 340):
            w = [self.rng.gauss(0, 1) for _ in range(3)]
            w_of["p%d" % i] = w
            pts.append(base.make_point("p%d" % i, {"v": [self.rng.gauss(0, 1)] * DIM, "w": w},
                                       {"n": i}))
        self.upsert("c", pts)
        upd = base.pts_pb.UpdatePointsRequest(collection="c")
        for i in range(10):
            w = [self.rng.gauss(0, 1) for _ in range(3)]
            w_of["p%d" % i] = w
            u = upd.updates.add(id="p%d" % i)
            u.vectors["w"].values.extend(w)
        self.assertEqual(self.server.points.UpdatePoints(upd, timeout=T).updated_count, 10)

        query = [0.3, -0.2, 0.1]
        want = self.nearest_w(w_of, query, 100)
        self.assertEqual(len(want), 50)

        def check_w():
            for exact in (True, False):
                res = self.search("c", "w", [query], 100,
                                  params=base.srch_pb.SearchParams(exact=exact, ef=200))[0]
                self.assertEqual([h.id for h in res.hits], want, "exact=%s" % exact)
            got = {p.id: p for p in self.get("c", ["p1", "p100", "p310"], with_vectors=True)}
            self.assertIn("w", got["p1"].vectors)
            self.assertNotIn("w", got["p100"].vectors)
            self.assertEqual(len(got["p310"].vectors["w"].values), 3)
            self.assertEqual(self.count("c"), 340)

        check_w()
        # Segments written before the field have no index of it and need
        # none: they count as indexed.
        base.wait_indexed(self.server, "c", min_segments=3, sealed_only=True)
        check_w()
        for _ in range(2):  # the second start reads what the first wrote
            self.server.kill()
            self.server.start()
            base.wait_indexed(self.server, "c", min_segments=3, sealed_only=True)
            check_w()
        self.verify_clean()

        # Drop v: w answers as before; v is gone, its name free.
        resp = self.update_fields(drop=["v"])
        self.assertEqual([f.name for f in resp.collection.schema.vectors], ["w"])
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.server.search.Search,
                        base.srch_pb.SearchRequest(collection="c", field="v", k=1,
                                                   vectors=[base.pb.Vector(values=[0.0] * DIM)]))
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.upsert, "c",
                        [base.make_point("p0", {"v": [0.0] * DIM}, {})])
        self.upsert("c", [base.make_point("p400", {}, {"n": 400})])  # no vector at all now
        got = self.get("c", ["p1"], with_vectors=True)[0]
        self.assertEqual(sorted(got.vectors), ["w"])
        self.assertEqual([h.id for h in self.search("c", "", [query], 100)[0].hits], want)

        self.server.kill()
        self.server.start()
        info = self.describe()
        self.assertEqual([(f.name, f.optional) for f in info.schema.vectors], [("w", True)])
        self.assertEqual([s.name for s in info.stats.vectors], ["w"])
        self.assertEqual(self.count("c"), 341)
        self.assertEqual([h.id for h in self.search("c", "w", [query], 100)[0].hits], want)
        self.verify_clean()

        # The name is free again: a new v of another dim, empty at first.
        self.update_fields(add=[base.pb.VectorField(name="v", dim=2, metric=base.pb.IP)])
        self.assertEqual(len(self.search("c", "v", [[1.0, 0.0]], 10)[0].hits), 0)
        self.upsert("c", [base.make_point("p401", {"v": [1.0, 2.0]}, {})])
        self.assertEqual([h.id for h in self.search("c", "v", [[1.0, 0.0]], 10)[0].hits],
                         ["p401"])

    def test_refused_vector_field_changes_change_nothing(self):
        self.put(0, 50)
        before = self.describe()
        code = grpc.StatusCode
        w = base.pb.VectorField(name="w", dim=3, metric=base.pb.L2)
        for want, add, drop, substr in (
                (code.ALREADY_EXISTS, [base.pb.VectorField(name="v", dim=3, metric=base.pb.L2)],
                 [], 'already has a vector field "v"'),
                (code.ALREADY_EXISTS, [base.pb.VectorField(name="n", dim=3, metric=base.pb.L2)],
                 [], 'has an attribute "n"'),
                (code.INVALID_ARGUMENT, [base.pb.VectorField(
                    name="m", dim=3, metric=base.pb.IP,
                    multi_vector=base.pb.MultiVectorOptions())], [], "multi-vector"),
                (code.INVALID_ARGUMENT, [base.pb.VectorField(name="d", dim=3, metric=base.pb.L2,
                                                             storage=base.pb.DISK)], [], "DISK"),
                (code.INVALID_ARGUMENT, [base.pb.VectorField(name="z", dim=0, metric=base.pb.L2)],
                 [], "dim"),
                (code.INVALID_ARGUMENT, [w, w], [], "duplicate"),
                (code.INVALID_ARGUMENT, [], ["nope"], 'no vector field "nope"'),
                (code.INVALID_ARGUMENT, [], ["v", "v"], "more than once"),
                (code.FAILED_PRECONDITION, [], ["v"], "no vector field left")):
            err = self.assertCode(want, self.update_fields, add, drop)
            self.assertIn(substr, err.details())
        after = self.describe()
        self.assertEqual(after.schema, before.schema)
        self.assertEqual(after.stats.last_sequence, before.stats.last_sequence)
        # Dropping v and adding its replacement in one request is allowed.
        resp = self.update_fields(add=[base.pb.VectorField(name="v", dim=5, metric=base.pb.L2)],
                                  drop=["v"])
        self.assertEqual([(f.name, f.dim) for f in resp.collection.schema.vectors], [("v", 5)])
        self.assertEqual(self.count("c"), 50)

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
