#!/usr/bin/python3
"""ScrollPoints, UpdatePoints and `quiverctl export` from outside: a real
quiverd on a loopback port, Python stubs generated from proto/ alone, and the
quiverctl binary.

- scroll pages the whole collection while other threads upsert, overwrite and
  delete: ids ascend, nothing comes twice, every point that existed
  throughout comes; filter, attributes and with_vectors; refused requests;
- export (jsonl, npy with its .meta.jsonl and, for a multi-vector field, its
  .offsets.npy) then import into a new collection reproduces it: ids,
  vectors bit for bit, attributes with their types;
- UpdatePoints: each kind of change, NOT_FOUND and an invalid entry anywhere
  change nothing, upsert creates, and acknowledged updates survive kill -9.

Usage:
  /usr/bin/python3 tests/python/points_e2e_test.py --quiverd build/quiverd \
      --quiverctl build/quiverctl --proto proto
"""

import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import unittest

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quiver_e2e_test as base  # noqa: E402  (stub generation and the Server class)

QUIVERCTL = os.environ.get("QUIVERCTL", "")
T = base.RPC_TIMEOUT
DIM = 8


def setUpModule():
    base.setUpModule()


def vec(rng, dim=DIM):
    return base.f32vec([rng.gauss(0.0, 1.0) for _ in range(dim)])


def fbytes(values):
    return struct.pack("<%df" % len(values), *values)


def snapshot(points):
    """A point list as comparable data: vectors as bytes, values with kinds."""
    out = {}
    for p in points:
        vecs = {name: fbytes(v.values) for name, v in p.vectors.items()}
        for name, mv in p.multi_vectors.items():
            vecs[name] = [fbytes(v.values) for v in mv.vectors]
        attrs = {}
        for name, val in p.attributes.items():
            kind = val.WhichOneof("kind")
            attrs[name] = (kind, base.from_value(val))
        out[p.id] = (vecs, attrs)
    return out


class PointsTestCase(base.QuiverTestCase):
    ARGS = ["--segment-max-rows", "100", "--seal-idle-ms", "50"]

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="quiver_py_points_")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.server = base.Server(os.path.join(self.tmp, "data"), self.ARGS)
        self.server.start()
        self.addCleanup(self.server.stop)

    def make(self, name, sch):
        self.server.collections.CreateCollection(
            base.coll_pb.CreateCollectionRequest(name=name, schema=sch), timeout=T)

    def simple_schema(self):
        s = base.pb.CollectionSchema()
        s.vectors.add(name="v", dim=DIM, metric=base.pb.L2)
        s.attributes.add(name="n", type=base.pb.INT64, indexed=True)
        s.attributes.add(name="tag", type=base.pb.STRING)
        return s

    def scroll(self, name, page_size=0, **kw):
        """Every page; returns (points, pages)."""
        req = base.pts_pb.ScrollPointsRequest(collection=name, page_size=page_size, **kw)
        points, pages = [], 0
        while True:
            resp = self.server.points.ScrollPoints(req, timeout=T)
            pages += 1
            points.extend(resp.points)
            if not resp.next_cursor:
                return points, pages
            req.cursor = resp.next_cursor

    def update(self, name, updates, upsert=False):
        return self.server.points.UpdatePoints(
            base.pts_pb.UpdatePointsRequest(collection=name, updates=updates, upsert=upsert),
            timeout=T)

    def ctl(self, *args):
        cmd = [QUIVERCTL, "--addr", "127.0.0.1:%d" % self.server.port] + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, "%s\nstdout: %s\nstderr: %s" % (cmd, r.stdout, r.stderr))
        return r.stdout

    def schema_of(self, name):
        return self.server.collections.GetCollection(
            base.coll_pb.GetCollectionRequest(name=name), timeout=T).collection.schema

    def round_trip(self, name, fmt, out, import_args=()):
        before, _ = self.scroll(name, page_size=97, with_vectors=True)
        self.ctl("export", name, "--format", fmt, "-o", out, "--page-size", "97")
        copy = name + "_copy_" + fmt
        self.make(copy, self.schema_of(name))
        self.ctl("import", copy, out, "--format", fmt, *import_args)
        after, _ = self.scroll(copy, page_size=500, with_vectors=True)
        self.assertEqual(len(after), len(before))
        self.assertEqual(snapshot(after), snapshot(before))


class ScrollTest(PointsTestCase):
    def test_pages_complete_and_without_repeats_under_writes(self):
        self.make("s", self.simple_schema())
        rng = random.Random(1)
        stable = {}
        for first in range(0, 3000, 500):
            pts = []
            for i in range(first, first + 500):
                pid = "k%05d" % i
                stable[pid] = vec(rng)
                pts.append(base.make_point(pid, {"v": stable[pid]}, {"n": i}))
            self.upsert("s", pts)
        stop = threading.Event()
        errors = []

        def churn(seed):
            r = random.Random(seed)
            channel = grpc.insecure_channel("127.0.0.1:%d" % self.server.port)
            stub = base.pts_grpc.PointServiceStub(channel)
            try:
                while not stop.is_set():
                    pts = [base.make_point("k%05d-c" % i, {"v": vec(r)}, {"n": -1})
                           for i in r.sample(range(3000), 30)]
                    # Overwrites keep a stable point existing (its new version).
                    pid = "k%05d" % r.randrange(3000)
                    pts.append(base.make_point(pid, {"v": stable[pid]}, {"n": int(pid[1:])}))
                    stub.UpsertPoints(base.pts_pb.UpsertPointsRequest(collection="s", points=pts),
                                      timeout=T)
                    stub.DeletePoints(base.pts_pb.DeletePointsRequest(
                        collection="s", ids=["k%05d-c" % r.randrange(3000) for _ in range(25)]),
                        timeout=T)
            except grpc.RpcError as e:  # reported below, after the threads stop
                errors.append(e)
            finally:
                channel.close()

        threads = [threading.Thread(target=churn, args=(s,)) for s in (2, 3)]
        for t in threads:
            t.start()
        try:
            for run in range(3):
                points, pages = self.scroll("s", page_size=113, with_vectors=True)
                ids = [p.id for p in points]
                self.assertEqual(ids, sorted(ids), "run %d: ids out of order" % run)
                self.assertEqual(len(ids), len(set(ids)), "run %d: a point came twice" % run)
                got = {p.id: p for p in points if not p.id.endswith("-c")}
                self.assertEqual(set(got), set(stable), "run %d: stable points missing" % run)
                for pid, p in got.items():
                    self.assertEqual(fbytes(p.vectors["v"].values), fbytes(stable[pid]))
                self.assertGreater(pages, 26)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(errors, [])

    def test_filter_attributes_and_vectors(self):
        self.make("f", self.simple_schema())
        rng = random.Random(5)
        vecs = {}
        pts = []
        for i in range(400):
            vecs[i] = vec(rng)
            pts.append(base.make_point("f%04d" % i, {"v": vecs[i]}, {"n": i, "tag": "t%d" % (i % 4)}))
        self.upsert("f", pts)
        points, _ = self.scroll("f", page_size=17, filter='n >= 50 AND tag = "t2"',
                                attributes=["n"], with_vectors=True)
        want = [i for i in range(50, 400) if i % 4 == 2]
        self.assertEqual([p.id for p in points], ["f%04d" % i for i in want])
        for p in points:
            self.assertEqual(list(p.attributes), ["n"])
            self.assertEqual(fbytes(p.vectors["v"].values), fbytes(vecs[p.attributes["n"].int_value]))
        points, pages = self.scroll("f")  # defaults: 256 a page, all attributes, no vectors
        self.assertEqual(len(points), 400)
        self.assertEqual(pages, 2)
        self.assertEqual(len(points[0].vectors), 0)
        self.assertEqual(set(points[0].attributes), {"n", "tag"})

    def test_refusals(self):
        self.make("r", self.simple_schema())
        self.make("r2", self.simple_schema())
        self.upsert("r", [base.make_point("a%d" % i, {"v": [1.0] * DIM}, {}) for i in range(10)])
        self.upsert("r2", [base.make_point("a%d" % i, {"v": [1.0] * DIM}, {}) for i in range(10)])
        scroll = self.server.points.ScrollPoints
        req = base.pts_pb.ScrollPointsRequest
        e = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, scroll,
                            req(collection="r", page_size=10001))
        self.assertIn("page_size must be at most 10000", e.details())
        for bad in ("nonsense", "AAAAAAAAAAAAAAAA", "%%%"):
            e = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, scroll,
                                req(collection="r", cursor=bad))
            self.assertIn("cursor", e.details())
        foreign = scroll(req(collection="r2", page_size=3), timeout=T).next_cursor
        e = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, scroll,
                            req(collection="r", cursor=foreign))
        self.assertIn("another collection", e.details())
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, scroll, req(collection="r", filter="n <"))
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, scroll,
                        req(collection="r", attributes=["nope"]))
        self.assertCode(grpc.StatusCode.NOT_FOUND, scroll, req(collection="nope"))


class ExportImportTest(PointsTestCase):
    def rich(self):
        s = base.pb.CollectionSchema()
        s.vectors.add(name="img", dim=12, metric=base.pb.L2)
        s.vectors.add(name="emb", dim=6, metric=base.pb.COSINE)
        s.attributes.add(name="i", type=base.pb.INT64)
        s.attributes.add(name="d", type=base.pb.DOUBLE, indexed=True)
        s.attributes.add(name="b", type=base.pb.BOOL)
        s.attributes.add(name="s", type=base.pb.STRING)
        s.attributes.add(name="l", type=base.pb.STRING_LIST)
        self.make("rich", s)
        rng = random.Random(9)
        specials_i = [2 ** 62 + 1, -2 ** 63, 2 ** 53 + 1, 0, -1]
        specials_d = [0.1, 3.0, -0.0, 1e300, 5e-324, -2.5]
        pts = []
        for n in range(700):
            attrs = {}
            if n % 5:
                attrs["i"] = specials_i[n % len(specials_i)] if n < 50 else rng.randint(-10 ** 12, 10 ** 12)
            if n % 7:
                attrs["d"] = specials_d[n % len(specials_d)] if n < 50 else rng.uniform(-1e6, 1e6)
            if n % 3:
                attrs["b"] = bool(n % 2)
            if n % 4:
                attrs["s"] = ["", "ünïcödé ✓", "quote \" and \\ back", "line\nbreak"][n % 4]
            if n % 6:
                attrs["l"] = [] if n % 11 == 0 else ["x%d" % j for j in range(n % 4)]
            pid = ["p%04d" % n, "ü-%d" % n, "id with space %d" % n, "%d" % n][n % 4]
            img = vec(rng, 12)
            if n % 10 == 0:
                img[3] = 1e-40  # a subnormal
                img[4] = -0.0
            pts.append(base.make_point(pid, {"img": img, "emb": vec(rng, 6)}, attrs))
        for i in range(0, len(pts), 200):
            self.upsert("rich", pts[i:i + 200])

    def test_jsonl_round_trip(self):
        self.rich()
        self.round_trip("rich", "jsonl", os.path.join(self.tmp, "rich.jsonl"))

    def test_jsonl_to_stdout_and_filter(self):
        self.rich()
        out = self.ctl("export", "rich", "--filter", "b = true", "--no-progress")
        lines = [ln for ln in out.splitlines() if ln.strip()]
        self.assertEqual(len(lines), sum(1 for n in range(700) if n % 3 and n % 2))

    def test_npy_round_trip(self):
        self.make("one", self.simple_schema())
        rng = random.Random(3)
        self.upsert("one", [base.make_point("o%05d" % i, {"v": vec(rng)},
                                            {"n": i} if i % 3 else {"tag": "t"})
                            for i in range(1500)])
        out = os.path.join(self.tmp, "one.npy")
        self.round_trip("one", "npy", out, ["--meta", os.path.join(self.tmp, "one.meta.jsonl")])
        with open(out, "rb") as f:
            head = f.read(128)
        self.assertTrue(head.startswith(b"\x93NUMPY"))
        self.assertIn(b"'shape': (1500, 8)", head)
        self.assertEqual(os.path.getsize(out), 128 + 1500 * DIM * 4)
        # Several vector fields do not fit one npy file.
        self.rich()
        r = subprocess.run([QUIVERCTL, "--addr", "127.0.0.1:%d" % self.server.port, "export",
                            "rich", "--format", "npy", "-o", os.path.join(self.tmp, "x.npy")],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--format jsonl", r.stderr + r.stdout)

    def test_multi_vector_round_trips(self):
        s = base.pb.CollectionSchema()
        f = s.vectors.add(name="tok", dim=4, metric=base.pb.IP)
        f.multi_vector.max_vectors_per_point = 8
        s.attributes.add(name="n", type=base.pb.INT64)
        self.make("mv", s)
        rng = random.Random(4)
        pts = []
        for i in range(300):
            p = base.pb.Point(id="m%04d" % i)
            for _ in range(1 + i % 5):
                p.multi_vectors["tok"].vectors.add(values=vec(rng, 4))
            p.attributes["n"].int_value = i
            pts.append(p)
        self.upsert("mv", pts)
        self.round_trip("mv", "jsonl", os.path.join(self.tmp, "mv.jsonl"))
        self.round_trip("mv", "npy", os.path.join(self.tmp, "mv.npy"),
                        ["--meta", os.path.join(self.tmp, "mv.meta.jsonl"),
                         "--offsets", os.path.join(self.tmp, "mv.offsets.npy")])


class UpdateTest(PointsTestCase):
    def fill(self, name, n=300):
        self.make(name, self.simple_schema())
        rng = random.Random(8)
        vecs = {}
        pts = []
        for i in range(n):
            vecs["u%04d" % i] = vec(rng)
            pts.append(base.make_point("u%04d" % i, {"v": vecs["u%04d" % i]},
                                       {"n": i, "tag": "t%d" % (i % 2)}))
        self.upsert(name, pts)
        return vecs

    def state(self, name):
        return snapshot(self.scroll(name, page_size=1000, with_vectors=True)[0])

    def test_each_change(self):
        vecs = self.fill("u")
        new_v = vec(random.Random(99))
        upd = base.pts_pb.PointUpdate
        resp = self.update("u", [
            upd(id="u0001", set_attributes={"tag": base.pb.Value(string_value="set")}),
            upd(id="u0002", remove_attributes=["n"]),
            upd(id="u0003", vectors={"v": base.pb.Vector(values=new_v)}),
            upd(id="u0004", set_attributes={"n": base.pb.Value()}),  # no kind: removes
        ])
        self.assertEqual((resp.updated_count, resp.created_count), (4, 0))
        got = {p.id: p for p in self.get("u", ["u0001", "u0002", "u0003", "u0004"], with_vectors=True)}
        self.assertEqual(got["u0001"].attributes["tag"].string_value, "set")
        self.assertEqual(got["u0001"].attributes["n"].int_value, 1)
        self.assertEqual(fbytes(got["u0001"].vectors["v"].values), fbytes(vecs["u0001"]))
        self.assertNotIn("n", got["u0002"].attributes)
        self.assertEqual(got["u0002"].attributes["tag"].string_value, "t0")
        self.assertEqual(fbytes(got["u0003"].vectors["v"].values), fbytes(new_v))
        self.assertEqual(got["u0003"].attributes["n"].int_value, 3)
        self.assertNotIn("n", got["u0004"].attributes)
        hits = self.search("u", "v", [new_v], 1, params=base.srch_pb.SearchParams(exact=True))[0].hits
        self.assertEqual((hits[0].id, hits[0].score), ("u0003", 0.0))
        self.assertEqual(self.count("u", 'tag = "set"'), 1)
        self.assertEqual(self.count("u"), 300)

    def test_not_found_and_invalid_change_nothing(self):
        self.fill("u")
        before = self.state("u")
        upd = base.pts_pb.PointUpdate
        good = upd(id="u0010", set_attributes={"n": base.pb.Value(int_value=-5)})
        e = self.assertCode(grpc.StatusCode.NOT_FOUND, self.update, "u",
                            [good, upd(id="ghost", remove_attributes=["n"])])
        self.assertIn("ghost", e.details())
        bad_entries = [
            upd(id="u0011", vectors={"v": base.pb.Vector(values=[1.0] * (DIM + 1))}),
            upd(id="u0011", set_attributes={"n": base.pb.Value(string_value="x")}),
            upd(id="u0011", remove_attributes=["nope"]),
            upd(id="u0011"),
            upd(id="u0010", remove_attributes=["tag"]),  # the same id twice
            upd(id="u0011", vectors={"v": base.pb.Vector(values=[float("nan")] * DIM)}),
        ]
        for bad in bad_entries:
            for order in ([good, bad], [bad, good]):
                self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.update, "u", order)
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.update, "missing", [good])
        self.assertEqual(self.state("u"), before)

    def test_upsert_creates(self):
        self.fill("u", 10)
        upd = base.pts_pb.PointUpdate
        v = vec(random.Random(7))
        resp = self.update("u", [upd(id="fresh", vectors={"v": base.pb.Vector(values=v)},
                                     set_attributes={"n": base.pb.Value(int_value=77)}),
                                 upd(id="u0001", remove_attributes=["tag"])], upsert=True)
        self.assertEqual((resp.updated_count, resp.created_count), (1, 1))
        p = self.get("u", ["fresh"], with_vectors=True)[0]
        self.assertEqual((fbytes(p.vectors["v"].values), p.attributes["n"].int_value),
                         (fbytes(v), 77))
        e = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.update, "u",
                            [upd(id="fresh2", remove_attributes=["n"])], upsert=True)
        self.assertIn("needs vector field", e.details())
        self.assertEqual(self.get("u", ["fresh2"]), [])

    def test_acknowledged_updates_survive_kill_9(self):
        self.fill("u", 500)
        upd = base.pts_pb.PointUpdate
        rng = random.Random(12)
        for round_ in range(20):
            ids = rng.sample(range(500), 10)
            self.update("u", [upd(id="u%04d" % i,
                                  set_attributes={"n": base.pb.Value(int_value=1000 * round_ + i)},
                                  vectors={"v": base.pb.Vector(values=[float(round_)] * DIM)})
                              for i in ids])
        want = self.state("u")
        self.server.kill()
        self.server.start()
        self.assertEqual(self.state("u"), want)


class OptionalVectorTest(PointsTestCase):
    """Optional vector fields from outside, through each index kind."""

    def test_optional_field_through_every_index_kind(self):
        kinds = [("FLAT", {}), ("HNSW", {}), ("IVF_FLAT", {}), ("IVF_SQ8", {}),
                 ("IVF_PQ", {"m": "4"}), ("HNSW_SQ8", {})]
        for kind, params in kinds:
            with self.subTest(kind=kind):
                name = "opt_" + kind.lower()
                s = base.pb.CollectionSchema()
                s.vectors.add(name="r", dim=DIM, metric=base.pb.L2)
                o = s.vectors.add(name="o", dim=DIM, metric=base.pb.COSINE, optional=True)
                o.index.type = kind
                o.index.params.update(params)
                s.attributes.add(name="n", type=base.pb.INT64)
                self.make(name, s)
                rng = random.Random(kind)
                pts = []
                for i in range(500):
                    vecs = {"r": vec(rng)}
                    if i % 4:
                        vecs["o"] = vec(rng)
                    pts.append(base.make_point("q%04d" % i, vecs, {"n": i}))
                self.upsert(name, pts)
                without = {"q%04d" % i for i in range(0, 500, 4)}
                base.wait_indexed(self.server, name, timeout=30.0)
                self.check_skips(name, without)
                e = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.update, name,
                                    [base.pts_pb.PointUpdate(id="q0001", remove_vectors=["r"])])
                self.assertIn("required", e.details())
                self.update(name, [base.pts_pb.PointUpdate(id="q0001", remove_vectors=["o"])])
                without.add("q0001")
                self.check_skips(name, without)
                p = self.get(name, ["q0001", "q0002"], with_vectors=True)
                self.assertEqual((sorted(p[0].vectors), sorted(p[1].vectors)), (["r"], ["o", "r"]))

    def check_skips(self, name, without):
        q = vec(random.Random(1))
        for exact in (False, True):
            for flt in ("", "n >= 0", "n < 250"):
                hits = self.search(name, "o", [q], 200, flt,
                                   params=base.srch_pb.SearchParams(exact=exact))[0].hits
                self.assertTrue(hits)
                bad = [h.id for h in hits if h.id in without]
                self.assertEqual(bad, [], "exact=%s filter=%r" % (exact, flt))
        hits = self.search(name, "o", [q], 500, params=base.srch_pb.SearchParams(exact=True))[0].hits
        self.assertEqual(len(hits), 500 - len(without))
        self.assertEqual(len(self.search(name, "r", [q], 500,
                                         params=base.srch_pb.SearchParams(exact=True))[0].hits), 500)

    def test_optional_round_trip_and_kill_9(self):
        s = base.pb.CollectionSchema()
        s.vectors.add(name="r", dim=DIM, metric=base.pb.L2)
        s.vectors.add(name="o", dim=DIM, metric=base.pb.IP, optional=True)
        self.make("ko", s)
        rng = random.Random(2)
        self.upsert("ko", [base.make_point("k%04d" % i, {"r": vec(rng), "o": vec(rng)} if i % 2
                                           else {"r": vec(rng)}, {}) for i in range(300)])
        self.round_trip("ko", "jsonl", os.path.join(self.tmp, "ko.jsonl"))
        self.update("ko", [base.pts_pb.PointUpdate(id="k0001", remove_vectors=["o"]),
                           base.pts_pb.PointUpdate(id="k0002", vectors={"o": base.pb.Vector(values=[1.0] * DIM)})])
        want = snapshot(self.scroll("ko", page_size=1000, with_vectors=True)[0])
        self.server.kill()
        self.server.start()
        self.assertEqual(snapshot(self.scroll("ko", page_size=1000, with_vectors=True)[0]), want)
        self.assertNotIn("o", want["k0001"][0])
        self.assertIn("o", want["k0002"][0])
        info = self.server.collections.GetCollection(
            base.coll_pb.GetCollectionRequest(name="ko"), timeout=T).collection
        self.assertEqual([v.optional for v in info.schema.vectors], [False, True])


if __name__ == "__main__":
    argv = [sys.argv[0]]
    i = 1
    while i < len(sys.argv):
        a = sys.argv[i]
        if a == "--quiverctl" and i + 1 < len(sys.argv):
            QUIVERCTL = sys.argv[i + 1]
            i += 2
            continue
        if a.startswith("--quiverctl="):
            QUIVERCTL = a[len("--quiverctl="):]
        else:
            argv.append(a)
        i += 1
    argv = base._parse_own_args(argv)
    unittest.main(argv=argv, verbosity=2)
