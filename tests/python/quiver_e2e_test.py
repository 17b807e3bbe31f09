#!/usr/bin/python3
"""End-to-end test of quiverd through its public gRPC API, from Python.

Uses only proto/ (stubs are generated at test time with protoc and
grpc_python_plugin), the standard library, grpcio and protobuf. Every result is
checked against a pure-Python reference model of the collection.

Usage:
  /usr/bin/python3 tests/python/quiver_e2e_test.py \
      --quiverd build/quiverd --proto proto [unittest args...]
or set QUIVERD and QUIVER_PROTO_DIR in the environment.
"""

import glob
import importlib
import math
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import zlib

import grpc

QUIVERD = os.environ.get("QUIVERD", "")
PROTO_DIR = os.environ.get("QUIVER_PROTO_DIR", "")
GRPC_PLUGIN = os.environ.get("GRPC_PYTHON_PLUGIN", "/usr/bin/grpc_python_plugin")
PROTOC = os.environ.get("PROTOC", "protoc")

RPC_TIMEOUT = 20.0
IMG_DIM = 16
EMB_DIM = 8
NUM_POINTS = 2000
BATCH = 250

# Generated modules, filled in by setUpModule.
pb = None  # quiver/v1/types_pb2
coll_pb = None
coll_grpc = None
pts_pb = None
pts_grpc = None
srch_pb = None
srch_grpc = None
health_pb = None
health_grpc = None
_stub_dir = None


def _parse_own_args(argv):
    """Takes --quiverd/--proto out of argv; returns the rest for unittest."""
    global QUIVERD, PROTO_DIR
    rest = [argv[0]]
    i = 1
    while i < len(argv):
        a = argv[i]
        for flag in ("--quiverd", "--proto"):
            if a == flag and i + 1 < len(argv):
                val = argv[i + 1]
                i += 1
                break
            if a.startswith(flag + "="):
                val = a[len(flag) + 1:]
                break
        else:
            rest.append(a)
            i += 1
            continue
        if a.startswith("--quiverd"):
            QUIVERD = val
        else:
            PROTO_DIR = val
        i += 1
    return rest


def setUpModule():
    global pb, coll_pb, coll_grpc, pts_pb, pts_grpc, srch_pb, srch_grpc
    global health_pb, health_grpc, _stub_dir
    if not QUIVERD or not os.access(QUIVERD, os.X_OK):
        raise RuntimeError("quiverd not found: pass --quiverd PATH or set QUIVERD (got %r)" % QUIVERD)
    if not PROTO_DIR or not os.path.isdir(os.path.join(PROTO_DIR, "quiver", "v1")):
        raise RuntimeError("proto dir not found: pass --proto DIR or set QUIVER_PROTO_DIR (got %r)"
                           % PROTO_DIR)
    _stub_dir = tempfile.mkdtemp(prefix="quiver_py_stubs_")
    unittest.addModuleCleanup(shutil.rmtree, _stub_dir, ignore_errors=True)
    protos = sorted(glob.glob(os.path.join(PROTO_DIR, "quiver", "v1", "*.proto")))
    _protoc(PROTO_DIR, protos)
    # health.proto would generate grpc/health/v1/health_pb2.py, whose package
    # path collides with the installed grpc package; compile a copy under
    # another path instead (the proto package, and so the service name
    # grpc.health.v1.Health on the wire, is unchanged).
    hdir = os.path.join(_stub_dir, "_health_proto")
    os.makedirs(os.path.join(hdir, "quiver_test_health"))
    hproto = os.path.join(hdir, "quiver_test_health", "health.proto")
    shutil.copy(os.path.join(PROTO_DIR, "grpc", "health", "v1", "health.proto"), hproto)
    _protoc(hdir, [hproto])
    sys.path.insert(0, _stub_dir)
    pb = importlib.import_module("quiver.v1.types_pb2")
    coll_pb = importlib.import_module("quiver.v1.collections_pb2")
    coll_grpc = importlib.import_module("quiver.v1.collections_pb2_grpc")
    pts_pb = importlib.import_module("quiver.v1.points_pb2")
    pts_grpc = importlib.import_module("quiver.v1.points_pb2_grpc")
    srch_pb = importlib.import_module("quiver.v1.search_pb2")
    srch_grpc = importlib.import_module("quiver.v1.search_pb2_grpc")
    health_pb = importlib.import_module("quiver_test_health.health_pb2")
    health_grpc = importlib.import_module("quiver_test_health.health_pb2_grpc")


def _protoc(include_dir, protos):
    cmd = [PROTOC, "-I" + include_dir, "--python_out=" + _stub_dir,
           "--grpc_python_out=" + _stub_dir,
           "--plugin=protoc-gen-grpc_python=" + GRPC_PLUGIN] + protos
    subprocess.run(cmd, check=True)


# ---------------------------------------------------------------------------
# Server process management.

def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One quiverd process on a loopback port with a given data dir."""

    def __init__(self, data_dir, extra_args=()):
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.proc = None
        self.channel = None
        self.port = None
        self.log_path = os.path.join(os.path.dirname(data_dir), "quiverd-%s.log" % os.path.basename(data_dir))

    def start(self, timeout=15.0):
        last_err = None
        for _ in range(3):  # the free port may be taken between probe and bind
            self.port = _free_port()
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [QUIVERD, "--listen", "127.0.0.1:%d" % self.port, "--data-dir", self.data_dir,
                 "--log-level", "warn"] + self.extra_args,
                stdout=log, stderr=subprocess.STDOUT)
            log.close()
            try:
                self._wait_healthy(timeout)
                self.collections = coll_grpc.CollectionServiceStub(self.channel)
                self.points = pts_grpc.PointServiceStub(self.channel)
                self.search = srch_grpc.SearchServiceStub(self.channel)
                return
            except RuntimeError as e:
                last_err = e
                self.kill()
        raise RuntimeError("quiverd did not become healthy: %s\n--- log ---\n%s" % (last_err, self.log()))

    def _wait_healthy(self, timeout):
        deadline = time.monotonic() + timeout
        # Wait for the port to accept connections first: a gRPC channel that
        # fails to connect backs off for seconds before it retries.
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("quiverd exited with %s" % self.proc.returncode)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("port %d not accepting after %.0fs" % (self.port, timeout))
                time.sleep(0.02)
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.port)
        stub = health_grpc.HealthStub(self.channel)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("quiverd exited with %s" % self.proc.returncode)
            try:
                resp = stub.Check(health_pb.HealthCheckRequest(service=""), timeout=1.0,
                                  wait_for_ready=True)
                if resp.status == health_pb.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.02)
        raise RuntimeError("not SERVING after %.0fs" % timeout)

    def log(self, tail=4000):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
                return (data[-tail:] if tail else data).decode("utf-8", "replace")
        except OSError:
            return ""

    def _close_channel(self):
        if self.channel is not None:
            self.channel.close()
            self.channel = None

    def stop(self, grace=10.0):
        """SIGTERM, then SIGKILL if it does not exit in `grace` seconds."""
        self._close_channel()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def kill(self):
        """SIGKILL, as a crash would."""
        self._close_channel()
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc = None


# ---------------------------------------------------------------------------
# Data generation and the reference model.

def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def f32vec(v):
    return list(struct.unpack("<%df" % len(v), struct.pack("<%df" % len(v), *v)))


def rand_vec(rng, dim):
    return f32vec([rng.gauss(0.0, 1.0) for _ in range(dim)])


def dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def l2sqr(a, b):
    return sum((x - y) * (x - y) for x, y in zip(a, b))


def norm(a):
    return math.sqrt(dot(a, a))


def cosine(a, b):
    return dot(a, b) / (norm(a) * norm(b))


CATEGORIES = ["a", "b", "c", "d"]
TAGS = ["red", "green", "blue", "black", "white"]


def rand_attrs(rng):
    """A dict of attribute values; roughly 10% of each is left null."""
    attrs = {}
    if rng.random() > 0.1:
        attrs["qty"] = rng.randint(-5, 40)
    if rng.random() > 0.1:
        attrs["price"] = round(rng.uniform(0.0, 100.0), 2)
    if rng.random() > 0.1:
        attrs["in_stock"] = rng.random() < 0.5
    if rng.random() > 0.1:
        attrs["category"] = rng.choice(CATEGORIES)
    if rng.random() > 0.1:
        attrs["tags"] = sorted(rng.sample(TAGS, rng.randint(0, 3)))
    return attrs


def to_value(v):
    if isinstance(v, bool):
        return pb.Value(bool_value=v)
    if isinstance(v, int):
        return pb.Value(int_value=v)
    if isinstance(v, float):
        return pb.Value(double_value=v)
    if isinstance(v, str):
        return pb.Value(string_value=v)
    if isinstance(v, list):
        return pb.Value(string_list_value=pb.StringList(values=v))
    raise TypeError(v)


def from_value(val):
    kind = val.WhichOneof("kind")
    if kind == "string_list_value":
        return list(val.string_list_value.values)
    return getattr(val, kind)


def make_point(pid, vectors, attrs):
    p = pb.Point(id=pid)
    for name, vec in vectors.items():
        p.vectors[name].values.extend(vec)
    for name, v in attrs.items():
        p.attributes[name].CopyFrom(to_value(v))
    return p


def schema(index_type=""):
    s = pb.CollectionSchema()
    img = s.vectors.add(name="img", dim=IMG_DIM, metric=pb.L2)
    if index_type:
        img.index.type = index_type
    s.vectors.add(name="emb", dim=EMB_DIM, metric=pb.COSINE)
    s.attributes.add(name="qty", type=pb.INT64)
    s.attributes.add(name="price", type=pb.DOUBLE, indexed=True)
    s.attributes.add(name="in_stock", type=pb.BOOL)
    s.attributes.add(name="category", type=pb.STRING)
    s.attributes.add(name="tags", type=pb.STRING_LIST)
    return s


# Filters used by the tests, each with its Python meaning under the documented
# null semantics (SQL's): a comparison with a null attribute is UNKNOWN, NOT
# UNKNOWN is UNKNOWN, and only TRUE matches.
FILTERS = [
    ('price < 50 AND tags CONTAINS "red"',
     lambda a: a.get("price") is not None and a["price"] < 50 and "red" in (a.get("tags") or [])),
    ('category IN ("a","b") AND NOT in_stock',
     lambda a: a.get("category") in ("a", "b") and a.get("in_stock") is False),
    ('qty BETWEEN 10 AND 20 OR category = "c"',
     lambda a: (a.get("qty") is not None and 10 <= a["qty"] <= 20) or a.get("category") == "c"),
    ('tags CONTAINS ANY ("blue", "white") AND price >= 25.5',
     lambda a: bool(set(a.get("tags") or []) & {"blue", "white"})
     and a.get("price") is not None and a["price"] >= 25.5),
    ('qty != 3 AND NOT (category = "d")',
     lambda a: a.get("qty") is not None and a["qty"] != 3
     and a.get("category") is not None and a["category"] != "d"),
    ('qty IS NULL OR NOT (price < 50 OR in_stock)',
     lambda a: a.get("qty") is None
     or (a.get("price") is not None and a["price"] >= 50 and a.get("in_stock") is False)),
    ('in_stock = true AND qty > 30',
     lambda a: a.get("in_stock") is True and a.get("qty") is not None and a["qty"] > 30),
]


class Model:
    """What the collection should hold: id -> (vectors, attrs)."""

    def __init__(self):
        self.points = {}

    def upsert(self, pid, vectors, attrs):
        self.points[pid] = (vectors, attrs)

    def score(self, field, stored, query):
        if field == "img":
            return l2sqr(stored, query)
        return cosine(stored, query)

    def topk(self, field, query, k, pred=None):
        """Reference (id, score) list, best first."""
        scored = []
        for pid, (vecs, attrs) in self.points.items():
            if pred is not None and not pred(attrs):
                continue
            scored.append((pid, self.score(field, vecs[field], query)))
        higher_better = field != "img"
        scored.sort(key=lambda t: -t[1] if higher_better else t[1])
        return scored[:k], scored


def close(a, b, rel=1e-3, abs_tol=1e-4):
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_tol)


def wait_indexed(server, name, min_segments=1, timeout=120.0, sealed_only=False):
    """Waits until collection `name` has at least min_segments segments
    (sealed ones only, with sealed_only) and all of them are INDEXED;
    RuntimeError with the segments and the server's log after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        info = server.collections.GetCollection(
            coll_pb.GetCollectionRequest(name=name), timeout=RPC_TIMEOUT).collection
        segs = [s for s in info.stats.segments
                if not sealed_only or s.state != coll_pb.SegmentInfo.GROWING]
        if len(segs) >= min_segments and all(s.state == coll_pb.SegmentInfo.INDEXED
                                              for s in segs):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("segments of %s not indexed: %s\n%s"
                               % (name, info.stats.segments, server.log()))
        time.sleep(0.1)


class QuiverTestCase(unittest.TestCase):
    server = None

    def assertCode(self, code, fn, *args, **kwargs):
        if isinstance(fn, grpc.UnaryUnaryMultiCallable):
            kwargs.setdefault("timeout", RPC_TIMEOUT)
        with self.assertRaises(grpc.RpcError) as cm:
            fn(*args, **kwargs)
        got = cm.exception.code()
        self.assertEqual(got, code, "expected %s, got %s: %s" % (code, got, cm.exception.details()))
        return cm.exception

    # -- RPC helpers --
    def create(self, name, sch=None):
        return self.server.collections.CreateCollection(
            coll_pb.CreateCollectionRequest(name=name, schema=sch or schema()), timeout=RPC_TIMEOUT)

    def drop(self, name):
        self.server.collections.DropCollection(coll_pb.DropCollectionRequest(name=name),
                                               timeout=RPC_TIMEOUT)

    def count(self, name, flt=""):
        return self.server.points.CountPoints(
            pts_pb.CountPointsRequest(collection=name, filter=flt), timeout=RPC_TIMEOUT).count

    def upsert(self, name, points):
        return self.server.points.UpsertPoints(
            pts_pb.UpsertPointsRequest(collection=name, points=points), timeout=RPC_TIMEOUT)

    def get(self, name, ids, with_vectors=False, attributes=()):
        return list(self.server.points.GetPoints(
            pts_pb.GetPointsRequest(collection=name, ids=ids, with_vectors=with_vectors,
                                    attributes=list(attributes)), timeout=RPC_TIMEOUT).points)

    def search(self, name, field, queries, k, flt="", **kw):
        req = srch_pb.SearchRequest(collection=name, field=field, k=k, filter=flt, **kw)
        for q in queries:
            req.vectors.add(values=q)
        return self.server.search.Search(req, timeout=RPC_TIMEOUT).results

    def fill(self, name, model, rng, n, prefix="p", batch=BATCH):
        pts = []
        for i in range(n):
            pid = "%s%05d" % (prefix, i)
            vecs = {"img": rand_vec(rng, IMG_DIM), "emb": rand_vec(rng, EMB_DIM)}
            attrs = rand_attrs(rng)
            model.upsert(pid, vecs, attrs)
            pts.append(make_point(pid, vecs, attrs))
        for i in range(0, len(pts), batch):
            resp = self.upsert(name, pts[i:i + batch])
            self.assertEqual(resp.upserted_count, len(pts[i:i + batch]))

    # -- result checking --
    def check_hits(self, model, field, query, k, hits, pred=None, label=""):
        """Hits must equal the brute-force top k, allowing ties at the boundary."""
        ref, all_scored = model.topk(field, query, k, pred)
        msg = "%s field=%s" % (label, field)
        self.assertEqual(len(hits), len(ref), msg)
        if not ref:
            return
        higher_better = field != "img"
        ids = [h.id for h in hits]
        self.assertEqual(len(set(ids)), len(ids), "duplicate ids in result " + msg)
        ref_score = dict(all_scored)
        prev = None
        for rank, h in enumerate(hits):
            self.assertIn(h.id, ref_score, "hit %s not eligible %s" % (h.id, msg))
            # The score is the true score of that point...
            self.assertTrue(close(h.score, ref_score[h.id]),
                            "%s: score of %s is %r, reference %r" % (msg, h.id, h.score, ref_score[h.id]))
            # ...and the score at each rank matches the reference ranking.
            self.assertTrue(close(h.score, ref[rank][1]),
                            "%s: rank %d score %r, reference %r" % (msg, rank, h.score, ref[rank][1]))
            if prev is not None:
                if higher_better:
                    self.assertLessEqual(h.score, prev + 1e-6, msg)
                else:
                    self.assertGreaterEqual(h.score, prev - 1e-6, msg)
            prev = h.score
        # Every reference point clearly better than the k-th must be present.
        kth = ref[-1][1]
        for pid, s in ref:
            if not close(s, kth):
                self.assertIn(pid, ids, "%s: missing %s (score %r, kth %r)" % (msg, pid, s, kth))


# ---------------------------------------------------------------------------

class QuiverE2ETest(QuiverTestCase):
    """Tests against one shared server; the searched collection is read-only."""

    MAIN = "products"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="quiver_e2e_")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        cls.server = Server(os.path.join(cls.tmp, "data"))
        cls.addClassCleanup(cls.server.stop)  # no-op after tearDownClass's stop
        cls.server.start()
        # Load the shared collection through an instance to reuse the helpers.
        loader = cls("test_create_and_describe")
        loader.create(cls.MAIN)
        cls.model = Model()
        loader.fill(cls.MAIN, cls.model, random.Random(20240601), NUM_POINTS)

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        if rc not in (0, None):
            raise AssertionError("quiverd exited with %s on SIGTERM" % rc)

    def queries(self, field, n, seed):
        rng = random.Random(seed)
        dim = IMG_DIM if field == "img" else EMB_DIM
        return [rand_vec(rng, dim) for _ in range(n)]

    # -- collections --
    def test_create_and_describe(self):
        info = self.server.collections.GetCollection(
            coll_pb.GetCollectionRequest(name=self.MAIN), timeout=RPC_TIMEOUT).collection
        self.assertEqual(info.name, self.MAIN)
        self.assertEqual(info.stats.point_count, NUM_POINTS)
        self.assertEqual([(v.name, v.dim, v.metric) for v in info.schema.vectors],
                         [("img", IMG_DIM, pb.L2), ("emb", EMB_DIM, pb.COSINE)])
        self.assertEqual([(a.name, a.type) for a in info.schema.attributes],
                         [("qty", pb.INT64), ("price", pb.DOUBLE), ("in_stock", pb.BOOL),
                          ("category", pb.STRING), ("tags", pb.STRING_LIST)])
        names = [c.name for c in self.server.collections.ListCollections(
            coll_pb.ListCollectionsRequest(), timeout=RPC_TIMEOUT).collections]
        self.assertIn(self.MAIN, names)
        self.assertEqual(names, sorted(names))
        self.assertEqual(self.count(self.MAIN), NUM_POINTS)

    # -- search --
    def test_search_each_field_matches_brute_force(self):
        for field in ("img", "emb"):
            for qi, q in enumerate(self.queries(field, 5, seed=zlib.crc32(field.encode()))):
                res = self.search(self.MAIN, field, [q], 10)
                self.assertEqual(len(res), 1)
                self.check_hits(self.model, field, q, 10, res[0].hits, label="query %d" % qi)

    def test_search_exact_param_and_large_k(self):
        q = self.queries("img", 1, seed=7)[0]
        res = self.search(self.MAIN, "img", [q], 300, params=srch_pb.SearchParams(exact=True))
        self.check_hits(self.model, "img", q, 300, res[0].hits, label="k=300 exact")
        # k larger than the collection returns every point.
        res = self.search(self.MAIN, "emb", [self.queries("emb", 1, seed=8)[0]], 5000)
        self.assertEqual(len(res[0].hits), NUM_POINTS)

    def test_filtered_search_and_count(self):
        for fi, (expr, pred) in enumerate(FILTERS):
            expected = sum(1 for _, a in self.model.points.values() if pred(a))
            self.assertEqual(self.count(self.MAIN, expr), expected, expr)
            for field in ("img", "emb"):
                q = self.queries(field, 1, seed=100 + fi)[0]
                res = self.search(self.MAIN, field, [q], 10, flt=expr, output_attributes=["*"])
                self.check_hits(self.model, field, q, 10, res[0].hits, pred=pred, label=expr)
                for h in res[0].hits:
                    got = {k: from_value(v) for k, v in h.attributes.items()}
                    self.assertEqual(got, self.model.points[h.id][1], h.id)
                    self.assertTrue(pred(got), "%s: hit %s fails the filter" % (expr, h.id))

    def test_filter_matching_nothing(self):
        q = self.queries("img", 1, seed=3)[0]
        res = self.search(self.MAIN, "img", [q], 10, flt="qty > 1000")
        self.assertEqual(len(res), 1)
        self.assertEqual(len(res[0].hits), 0)

    def test_batch_search_in_order(self):
        qs = self.queries("emb", 7, seed=42)
        res = self.search(self.MAIN, "emb", qs, 10)
        self.assertEqual(len(res), len(qs))
        for i, q in enumerate(qs):
            self.check_hits(self.model, "emb", q, 10, res[i].hits, label="batch[%d]" % i)
            single = self.search(self.MAIN, "emb", [q], 10)[0]
            self.assertEqual([h.id for h in res[i].hits][:5], [h.id for h in single.hits][:5])
        # A batch with a filter, on the L2 field.
        expr, pred = FILTERS[0]
        qs = self.queries("img", 4, seed=43)
        res = self.search(self.MAIN, "img", qs, 10, flt=expr)
        self.assertEqual(len(res), 4)
        for i, q in enumerate(qs):
            self.check_hits(self.model, "img", q, 10, res[i].hits, pred=pred, label="batch+filter[%d]" % i)

    def test_search_output_attributes_and_vectors(self):
        q = self.queries("img", 1, seed=5)[0]
        hits = self.search(self.MAIN, "img", [q], 5)[0].hits
        for h in hits:  # default: no attributes, no vectors
            self.assertEqual(len(h.attributes), 0)
            self.assertEqual(len(h.vectors), 0)
        hits = self.search(self.MAIN, "img", [q], 5, output_attributes=["price", "tags"],
                           with_vectors=True)[0].hits
        for h in hits:
            vecs, attrs = self.model.points[h.id]
            want = {k: v for k, v in attrs.items() if k in ("price", "tags")}
            self.assertEqual({k: from_value(v) for k, v in h.attributes.items()}, want)
            self.assertIn("img", h.vectors)
            self.assertEqual(list(h.vectors["img"].values), vecs["img"])

    def test_get_points(self):
        ids = ["p00003", "missing-id", "p01999", "p00000", "p00500"]
        pts = self.get(self.MAIN, ids)
        self.assertEqual([p.id for p in pts], ["p00003", "p01999", "p00000", "p00500"])
        for p in pts:
            vecs, attrs = self.model.points[p.id]
            self.assertEqual(len(p.vectors), 0, "vectors returned without with_vectors")
            self.assertEqual({k: from_value(v) for k, v in p.attributes.items()}, attrs)
        pts = self.get(self.MAIN, ids, with_vectors=True)
        self.assertEqual(len(pts), 4)
        for p in pts:
            vecs, attrs = self.model.points[p.id]
            self.assertEqual(set(p.vectors.keys()), {"img", "emb"})
            self.assertEqual(list(p.vectors["img"].values), vecs["img"])  # bit-exact
            # COSINE vectors are stored normalized.
            n = norm(vecs["emb"])
            for got, want in zip(p.vectors["emb"].values, vecs["emb"]):
                self.assertAlmostEqual(got, want / n, delta=1e-5)
            self.assertEqual({k: from_value(v) for k, v in p.attributes.items()}, attrs)
        pts = self.get(self.MAIN, ["p00010"], attributes=["category"])
        want = {k: v for k, v in self.model.points["p00010"][1].items() if k == "category"}
        self.assertEqual({k: from_value(v) for k, v in pts[0].attributes.items()}, want)

    # -- writes on their own collections --
    def test_overwrite(self):
        name = "overwrite_t"
        self.create(name)
        model, rng = Model(), random.Random(11)
        self.fill(name, model, rng, 200)
        # Move p00007 far away from everything, then query right at it.
        far = f32vec([50.0 + i for i in range(IMG_DIM)])
        old_vecs, _ = model.points["p00007"]
        new_attrs = {"qty": 7, "category": "z", "tags": ["new"]}
        new_vecs = {"img": far, "emb": rand_vec(rng, EMB_DIM)}
        self.upsert(name, [make_point("p00007", new_vecs, new_attrs)])
        model.upsert("p00007", new_vecs, new_attrs)
        self.assertEqual(self.count(name), 200)
        hits = self.search(name, "img", [far], 3)[0].hits
        self.assertEqual(hits[0].id, "p00007")
        self.assertAlmostEqual(hits[0].score, 0.0, delta=1e-2)
        self.assertEqual(len({h.id for h in hits}), 3)
        # Querying at the old vector no longer finds it.
        hits = self.search(name, "img", [old_vecs["img"]], 200)[0].hits
        self.assertEqual(len(hits), 200)
        self.assertEqual(sum(1 for h in hits if h.id == "p00007"), 1)
        self.check_hits(model, "img", old_vecs["img"], 10, hits[:10], label="after overwrite")
        self.assertNotEqual(hits[0].id, "p00007")
        # Old attributes are replaced, not merged.
        p = self.get(name, ["p00007"])[0]
        self.assertEqual({k: from_value(v) for k, v in p.attributes.items()}, new_attrs)
        self.assertEqual(self.count(name, 'category = "z"'), 1)
        self.drop(name)

    def test_delete_by_ids_and_filter(self):
        name = "delete_t"
        self.create(name)
        model, rng = Model(), random.Random(12)
        self.fill(name, model, rng, 300)
        ids = ["p00001", "p00002", "p00003", "nope"]
        resp = self.server.points.DeletePoints(
            pts_pb.DeletePointsRequest(collection=name, ids=ids), timeout=RPC_TIMEOUT)
        self.assertEqual(resp.deleted_count, 3)
        for pid in ids[:3]:
            del model.points[pid]
        self.assertEqual(self.count(name), 297)
        self.assertEqual(self.get(name, ids), [])
        expr, pred = FILTERS[1]
        expected = sum(1 for _, a in model.points.values() if pred(a))
        self.assertGreater(expected, 0)
        resp = self.server.points.DeletePoints(
            pts_pb.DeletePointsRequest(collection=name, filter=expr), timeout=RPC_TIMEOUT)
        self.assertEqual(resp.deleted_count, expected)
        model.points = {k: v for k, v in model.points.items() if not pred(v[1])}
        self.assertEqual(self.count(name), len(model.points))
        self.assertEqual(self.count(name, expr), 0)
        q = rand_vec(rng, IMG_DIM)
        self.check_hits(model, "img", q, 10, self.search(name, "img", [q], 10)[0].hits,
                        label="after delete")
        # Deleting again removes nothing.
        resp = self.server.points.DeletePoints(
            pts_pb.DeletePointsRequest(collection=name, ids=ids), timeout=RPC_TIMEOUT)
        self.assertEqual(resp.deleted_count, 0)
        # Exactly one of ids / filter.
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.server.points.DeletePoints,
                        pts_pb.DeletePointsRequest(collection=name, ids=["p00010"], filter="qty > 1"))
        self.assertEqual(self.count(name), len(model.points))
        self.drop(name)

    def test_drop_collection(self):
        name = "drop_t"
        self.create(name)
        self.fill(name, Model(), random.Random(13), 20)
        self.drop(name)
        nf = grpc.StatusCode.NOT_FOUND
        self.assertCode(nf, self.server.collections.GetCollection, coll_pb.GetCollectionRequest(name=name))
        self.assertCode(nf, self.server.points.CountPoints, pts_pb.CountPointsRequest(collection=name))
        self.assertCode(nf, self.server.collections.DropCollection, coll_pb.DropCollectionRequest(name=name))
        names = [c.name for c in self.server.collections.ListCollections(
            coll_pb.ListCollectionsRequest(), timeout=RPC_TIMEOUT).collections]
        self.assertNotIn(name, names)
        # The name can be reused, and the new collection starts empty.
        self.create(name)
        self.assertEqual(self.count(name), 0)
        self.drop(name)

    # -- errors --
    def test_verify_collection(self):
        resp = self.server.collections.VerifyCollection(
            coll_pb.VerifyCollectionRequest(name=self.MAIN), timeout=RPC_TIMEOUT)
        self.assertEqual(resp.defects_total, 0, str(resp))
        self.assertEqual(list(resp.defects), [])
        self.assertEqual(resp.rows_checked, NUM_POINTS)
        self.assertGreaterEqual(resp.segments_checked, 1)
        # Every row's vector in both fields.
        self.assertEqual(resp.vectors_checked, 2 * NUM_POINTS)
        self.assertGreater(resp.sequence, 0)
        sampled = self.server.collections.VerifyCollection(
            coll_pb.VerifyCollectionRequest(name=self.MAIN, vector_sample_rows=5, seed=3,
                                            skip_index_check=True), timeout=RPC_TIMEOUT)
        self.assertEqual(sampled.defects_total, 0, str(sampled))
        self.assertLessEqual(sampled.vectors_checked, 2 * 5 * sampled.segments_checked)
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.server.collections.VerifyCollection,
                        coll_pb.VerifyCollectionRequest(name="nope"))
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT,
                        self.server.collections.VerifyCollection,
                        coll_pb.VerifyCollectionRequest(name=self.MAIN, index_samples=10001))

    def test_error_unknown_collection(self):
        nf = grpc.StatusCode.NOT_FOUND
        self.assertCode(nf, self.server.collections.GetCollection, coll_pb.GetCollectionRequest(name="nope"))
        self.assertCode(nf, self.server.points.CountPoints, pts_pb.CountPointsRequest(collection="nope"))
        self.assertCode(nf, self.server.points.GetPoints, pts_pb.GetPointsRequest(collection="nope", ids=["a"]))
        self.assertCode(nf, self.server.points.DeletePoints,
                        pts_pb.DeletePointsRequest(collection="nope", ids=["a"]))
        self.assertCode(nf, self.server.points.UpsertPoints, pts_pb.UpsertPointsRequest(
            collection="nope", points=[make_point("a", {"img": [0.0] * IMG_DIM, "emb": [1.0] * EMB_DIM}, {})]))
        req = srch_pb.SearchRequest(collection="nope", field="img", k=10)
        req.vectors.add(values=[0.0] * IMG_DIM)
        self.assertCode(nf, self.server.search.Search, req)

    def test_error_duplicate_create(self):
        e = self.assertCode(grpc.StatusCode.ALREADY_EXISTS, self.create, self.MAIN)
        self.assertEqual(self.count(self.MAIN), NUM_POINTS)
        del e

    def test_error_bad_names_and_schemas(self):
        ia = grpc.StatusCode.INVALID_ARGUMENT
        for bad in ["", "1abc", "bad-name", "has space", "x" * 65, "ünï"]:
            self.assertCode(ia, self.create, bad)
        # Bad schemas.
        s = schema()
        s.vectors[0].dim = 0
        self.assertCode(ia, self.create, "bad_dim", s)
        s = pb.CollectionSchema()
        self.assertCode(ia, self.create, "no_vectors", s)
        s = schema()
        s.attributes.add(name="img", type=pb.INT64)  # shared namespace
        self.assertCode(ia, self.create, "dup_field", s)

    def test_hybrid_search_fuses_field_lists(self):
        qi = self.queries("img", 1, seed=21)[0]
        qe = self.queries("emb", 1, seed=22)[0]
        for fusion in (srch_pb.RRF, srch_pb.WEIGHTED):
            r = srch_pb.SearchRequest(collection=self.MAIN, k=10, fusion=fusion,
                                      with_field_results=True, filter="price < 80")
            r.field_queries.add(field="img", k=25, weight=2.0).vector.values.extend(qi)
            r.field_queries.add(field="emb", k=25).vector.values.extend(qe)
            resp = self.server.search.Search(r, timeout=RPC_TIMEOUT)
            self.assertEqual([f.field for f in resp.field_results], ["img", "emb"])
            # Each field's list is that field's own filtered search.
            for fr, q in zip(resp.field_results, (qi, qe)):
                own = self.search(self.MAIN, fr.field, [q], 25, flt="price < 80")[0]
                self.assertEqual([h.id for h in fr.hits], [h.id for h in own.hits])
            # The fused list follows the documented arithmetic.
            scores = {}
            for fr, w in zip(resp.field_results, (2.0, 1.0)):
                ds = [h.score if fr.field == "img" else -h.score for h in fr.hits]
                lo, hi = min(ds), max(ds)
                for rank, (h, d) in enumerate(zip(fr.hits, ds), start=1):
                    if fusion == srch_pb.RRF:
                        part = w / (60 + rank)
                    else:
                        part = w * ((hi - d) / (hi - lo) if hi > lo else 1.0)
                    scores[h.id] = scores.get(h.id, 0.0) + part
            want = sorted(scores.items(), key=lambda kv: -kv[1])[:10]
            got = [(h.id, h.score) for h in resp.results[0].hits]
            self.assertEqual(len(got), 10)
            for (gid, gs), (wid, ws) in zip(got, want):
                self.assertAlmostEqual(gs, ws, places=5)
            self.assertEqual({g[0] for g in got if g[1] > want[-1][1] + 1e-6},
                             {w[0] for w in want if w[1] > want[-1][1] + 1e-6})
        ia = grpc.StatusCode.INVALID_ARGUMENT
        r = srch_pb.SearchRequest(collection=self.MAIN, field="img", k=1)
        r.field_queries.add(field="img", k=1).vector.values.extend(qi)
        self.assertCode(ia, self.server.search.Search, r)
        r = srch_pb.SearchRequest(collection=self.MAIN, k=1)
        r.field_queries.add(field="img").vector.values.extend(qi)
        r.field_queries.add(field="img").vector.values.extend(qi)
        self.assertCode(ia, self.server.search.Search, r)

    def test_error_unimplemented_features(self):
        un = grpc.StatusCode.UNIMPLEMENTED
        s = schema("HNSW")
        s.vectors[0].index.params["M"] = "1"
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.create, "hnsw_t", s)
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.server.collections.GetCollection,
                        coll_pb.GetCollectionRequest(name="hnsw_t"))
        s = schema("IVF_FLAT")
        s.vectors[0].index.params["no_such_param"] = "1"
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.create, "ivf_t", s)
        s = schema()
        s.vectors[1].multi_vector.max_vectors_per_point = 100000
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.create, "multi_t", s)
        s = schema()
        s.vectors[0].storage = pb.DISK
        # DISK needs an index over compressed codes; FLAT keeps full vectors.
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.create, "disk_t", s)
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.create, "unknown_index_t", schema("FOO"))
        q = [0.5] * IMG_DIM
        r = srch_pb.SearchRequest(collection=self.MAIN, field="img", k=1)
        r.multi_vectors.add().vectors.add(values=q)
        # img is a single-vector field: multi_vectors is a client error.
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.server.search.Search, r)
        r = srch_pb.SearchRequest(collection=self.MAIN, field="img", k=1, explain=True)
        r.vectors.add(values=q)
        resp = self.server.search.Search(r, timeout=RPC_TIMEOUT)
        self.assertTrue(resp.explain.segments, resp)
        self.assertIn("MergeTopK", resp.explain.text)
        names = [c.name for c in self.server.collections.ListCollections(
            coll_pb.ListCollectionsRequest(), timeout=RPC_TIMEOUT).collections]
        self.assertFalse(set(names) & {"ivf_t", "multi_t", "disk_t", "unknown_index_t"}, names)

    def _bad_batch(self, name, bad_point, what):
        """A batch of two good new points and one bad one: rejected whole."""
        rng = random.Random(zlib.crc32(what.encode()))
        good = [make_point("new_%s_%d" % (what, i),
                           {"img": rand_vec(rng, IMG_DIM), "emb": rand_vec(rng, EMB_DIM)},
                           {"qty": i}) for i in range(2)]
        before = self.count(name)
        e = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.upsert, name,
                            [good[0], bad_point, good[1]])
        self.assertEqual(self.count(name), before, what + ": part of the batch was applied")
        self.assertEqual(self.get(name, [p.id for p in good]), [], what)
        return e

    def test_error_invalid_points(self):
        name = "invalid_t"
        self.create(name)
        self.fill(name, Model(), random.Random(14), 50)
        rng = random.Random(15)

        def vecs(img_dim=IMG_DIM, emb_dim=EMB_DIM):
            return {"img": rand_vec(rng, img_dim), "emb": rand_vec(rng, emb_dim)}

        self._bad_batch(name, make_point("p00001", vecs(img_dim=IMG_DIM - 1), {}), "dim_short")
        self._bad_batch(name, make_point("p00001", vecs(emb_dim=EMB_DIM + 1), {}), "dim_long")
        v = vecs()
        v["img"][3] = float("nan")
        self._bad_batch(name, make_point("p00002", v, {}), "nan")
        v = vecs()
        v["emb"][0] = float("inf")
        self._bad_batch(name, make_point("p00002", v, {}), "inf")
        self._bad_batch(name, make_point("", vecs(), {}), "empty_id")
        self._bad_batch(name, make_point("x" * 513, vecs(), {}), "long_id")
        self._bad_batch(name, make_point("new_dup_ids_0", vecs(), {}), "dup_ids")
        self._bad_batch(name, make_point("p00003", vecs(), {"qty": "seven"}), "attr_type_str")
        self._bad_batch(name, make_point("p00003", vecs(), {"qty": 5.0}), "attr_type_double_for_int")
        self._bad_batch(name, make_point("p00003", vecs(), {"price": float("nan")}), "attr_nan")
        self._bad_batch(name, make_point("p00003", vecs(), {"tags": "red"}), "attr_type_str_for_list")
        self._bad_batch(name, make_point("p00003", vecs(), {"in_stock": 1}), "attr_type_int_for_bool")
        self._bad_batch(name, make_point("p00004", {"img": rand_vec(rng, IMG_DIM)}, {}), "missing_field")
        v = vecs()
        v["nope"] = [1.0]
        self._bad_batch(name, make_point("p00004", v, {}), "unknown_field")
        v = vecs()
        v["emb"] = [0.0] * EMB_DIM
        self._bad_batch(name, make_point("p00004", v, {}), "zero_cosine")
        # The existing points were not touched by any of it.
        self.assertEqual(self.count(name), 50)
        # An integer for a DOUBLE attribute is accepted and widened (the
        # server does this on purpose: storage/schema_message.h AttrFromMessage).
        self.upsert(name, [make_point("p00003", vecs(), {"price": 5})])
        got = self.get(name, ["p00003"])[0].attributes["price"]
        self.assertEqual(got.WhichOneof("kind"), "double_value")
        self.assertEqual(got.double_value, 5.0)
        self.drop(name)

    def test_error_bad_search_requests(self):
        ia = grpc.StatusCode.INVALID_ARGUMENT
        q = self.queries("img", 1, seed=9)[0]

        def req(**kw):
            r = srch_pb.SearchRequest(collection=self.MAIN, **kw)
            return r

        r = req(field="img", k=10, filter='price < AND tags CONTAINS "red"')
        r.vectors.add(values=q)
        e = self.assertCode(ia, self.server.search.Search, r)
        self.assertIn("position", e.details())
        e = self.assertCode(ia, self.count, self.MAIN, "price <")
        self.assertIn("position", e.details())
        for k in (0, 16385, 100000):
            r = req(field="img", k=k)
            r.vectors.add(values=q)
            self.assertCode(ia, self.server.search.Search, r)
        r = req(field="img", k=16384)  # the largest k is accepted
        r.vectors.add(values=q)
        self.assertEqual(len(self.server.search.Search(r, timeout=RPC_TIMEOUT).results[0].hits),
                         NUM_POINTS)
        r = req(field="img", k=1)  # at most 1024 query vectors
        for _ in range(1025):
            r.vectors.add(values=q)
        self.assertCode(ia, self.server.search.Search, r)
        r = req(field="emb", k=1)  # a COSINE query must not be all zeros
        r.vectors.add(values=[0.0] * EMB_DIM)
        self.assertCode(ia, self.server.search.Search, r)
        r = req(field="img", k=10)
        r.vectors.add(values=q[:-1])  # wrong dimension
        self.assertCode(ia, self.server.search.Search, r)
        r = req(field="img", k=10)  # no query vector
        self.assertCode(ia, self.server.search.Search, r)
        r = req(field="nope", k=10)
        r.vectors.add(values=q)
        self.assertCode(ia, self.server.search.Search, r)
        r = req(field="", k=10)  # two vector fields: the field is required
        r.vectors.add(values=q)
        self.assertCode(ia, self.server.search.Search, r)
        r = req(field="img", k=10, filter="no_such_attr = 1")
        r.vectors.add(values=q)
        self.assertCode(ia, self.server.search.Search, r)
        r = req(field="img", k=10, filter='qty = "x"')  # type mismatch
        r.vectors.add(values=q)
        self.assertCode(ia, self.server.search.Search, r)
        r = req(field="img", k=10)
        r.vectors.add(values=q[:3] + [float("nan")] + q[4:])
        self.assertCode(ia, self.server.search.Search, r)


class QuiverLimitsTest(QuiverTestCase):
    """Requests that cost far more than they weigh, or cannot be decoded."""

    LIMIT = 1 << 20  # --max-message-bytes

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="quiver_e2e_limits_")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        cls.server = Server(os.path.join(cls.tmp, "data"),
                            ["--max-message-bytes", str(cls.LIMIT)])
        cls.addClassCleanup(cls.server.stop)
        cls.server.start()
        loader = cls("test_oversized_response_is_refused")
        loader.create("c")
        rng = random.Random(7)
        loader.fill("c", Model(), rng, 300)

    def _raw(self, method):
        """A unary call that sends the given bytes as they are."""
        return self.server.channel.unary_unary(
            method, request_serializer=lambda b: b, response_deserializer=lambda b: b)

    def test_undecodable_request_says_why_and_logs_are_rate_limited(self):
        # CountPointsRequest{collection: "c", filter: <bytes ff fe>}: not UTF-8.
        bad = b"\x0a\x01c" + b"\x12\x02\xff\xfe"
        count = self._raw("/quiver.v1.PointService/CountPoints")
        before = self.server.log(tail=0).count("invalid UTF-8")
        errors = []
        for _ in range(40):
            with self.assertRaises(grpc.RpcError) as cm:
                count(bad, timeout=RPC_TIMEOUT)
            errors.append(cm.exception)
        time.sleep(0.5)  # the log is written by the server asynchronously to us
        logged = self.server.log(tail=0).count("invalid UTF-8") - before
        # At most 5 lines per 10 s for one kind of line (the 40 requests may
        # straddle two windows), not one per request.
        self.assertLessEqual(logged, 10, self.server.log())
        self.assertGreaterEqual(logged, 1, self.server.log())
        for e in errors:
            self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT, e.details())
            self.assertIn("could not be decoded", e.details())
            self.assertIn("quiver.v1.CountPointsRequest.filter", e.details())
            self.assertIn("invalid UTF-8", e.details())
        # A valid request on the same channel still works.
        self.assertEqual(self.count("c"), 300)

    def test_long_input_is_cut_in_error_messages(self):
        name = "a" * 60000
        e = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.server.points.CountPoints,
                            pts_pb.CountPointsRequest(collection="c", filter=name + " = 1"))
        self.assertIn("unknown attribute", e.details())
        self.assertIn("(60000 bytes, cut)", e.details())
        self.assertLess(len(e.details()), 1024)
        e = self.assertCode(grpc.StatusCode.NOT_FOUND, self.server.points.CountPoints,
                            pts_pb.CountPointsRequest(collection=name))
        self.assertIn("(60000 bytes, cut)", e.details())
        self.assertLess(len(e.details()), 1024)

    def test_oversized_response_is_refused(self):
        # 40 queries x 300 hits, each with a 16-float and an 8-float vector
        # and five attributes: ~2.4 MB, over the 1 MiB limit.
        req = srch_pb.SearchRequest(collection="c", field="img", k=300, with_vectors=True,
                                    output_attributes=["*"])
        for q in range(40):
            req.vectors.add(values=[float(q)] * IMG_DIM)
        e = self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.server.search.Search, req)
        self.assertIn("--max-message-bytes=%d" % self.LIMIT, e.details())
        self.assertIn("40 result lists x 300 hits", e.details())
        # Fewer queries fit and are answered in full.
        del req.vectors[2:]
        res = self.server.search.Search(req, timeout=RPC_TIMEOUT).results
        self.assertEqual([len(r.hits) for r in res], [300, 300])
        get = pts_pb.GetPointsRequest(collection="c", ids=["p%05d" % i for i in range(300)] * 20,
                                      with_vectors=True)
        e = self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.server.points.GetPoints, get)
        self.assertIn("6000 points found", e.details())


class QuiverPersistenceTest(QuiverTestCase):
    """Acknowledged writes survive kill -9 and a restart on the same data dir."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="quiver_e2e_persist_")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.server = Server(os.path.join(self.tmp, "data"))
        self.addCleanup(self.server.stop)  # cleanups run last-in first-out
        self.server.start()

    def test_survives_sigkill(self):
        name = "durable"
        self.create(name)
        model, rng = Model(), random.Random(99)
        self.fill(name, model, rng, 600, batch=100)
        # Overwrites and deletes are durable too.
        over = {"qty": 1234, "tags": ["over"]}
        ovecs = {"img": rand_vec(rng, IMG_DIM), "emb": rand_vec(rng, EMB_DIM)}
        self.upsert(name, [make_point("p00005", ovecs, over)])
        model.upsert("p00005", ovecs, over)
        self.server.points.DeletePoints(pts_pb.DeletePointsRequest(
            collection=name, ids=["p00006", "p00007"]), timeout=RPC_TIMEOUT)
        del model.points["p00006"], model.points["p00007"]
        self.create("dropped_before_kill")
        self.drop("dropped_before_kill")
        self.assertEqual(self.count(name), len(model.points))

        self.server.kill()
        self.server.start()

        self.assertEqual(self.count(name), len(model.points))
        self.assertCode(grpc.StatusCode.NOT_FOUND, self.server.collections.GetCollection,
                        coll_pb.GetCollectionRequest(name="dropped_before_kill"))
        ids = sorted(model.points) + ["p00006", "p00007"]
        pts = self.get(name, ids, with_vectors=True)
        self.assertEqual([p.id for p in pts], sorted(model.points))
        for p in pts:
            vecs, attrs = model.points[p.id]
            self.assertEqual(list(p.vectors["img"].values), vecs["img"], p.id)
            n = norm(vecs["emb"])
            for got, want in zip(p.vectors["emb"].values, vecs["emb"]):
                self.assertAlmostEqual(got, want / n, delta=1e-5, msg=p.id)
            self.assertEqual({k: from_value(v) for k, v in p.attributes.items()}, attrs, p.id)
        # Search over the recovered data agrees with the model.
        for field, dim in (("img", IMG_DIM), ("emb", EMB_DIM)):
            q = rand_vec(rng, dim)
            self.check_hits(model, field, q, 10, self.search(name, field, [q], 10)[0].hits,
                            label="after restart")
        expr, pred = FILTERS[0]
        self.assertEqual(self.count(name, expr), sum(1 for _, a in model.points.values() if pred(a)))
        # What the restart rebuilt agrees with the stored points.
        verified = self.server.collections.VerifyCollection(
            coll_pb.VerifyCollectionRequest(name=name), timeout=RPC_TIMEOUT)
        self.assertEqual(verified.defects_total, 0, str(verified))
        self.assertEqual(verified.rows_checked, len(model.points))
        # And the server still takes writes.
        self.upsert(name, [make_point("after", {"img": rand_vec(rng, IMG_DIM),
                                                "emb": rand_vec(rng, EMB_DIM)}, {})])
        self.assertEqual(self.count(name), len(model.points) + 1)


class QuiverRebuildAfterRestartTest(QuiverTestCase):
    """An index rebuilt after a restart, over segments whose deleted points
    left empty slots, still finds every point (it once found a third of
    them: the slots' zero vectors cut the HNSW graph apart)."""

    DIM = 64
    N = 10000

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="quiver_e2e_rebuild_")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        # Small segments, and no compaction or merge to rewrite the deleted
        # rows away.
        self.server = Server(os.path.join(self.tmp, "data"),
                             ["--segment-max-rows", "2000", "--compact-deleted-ratio", "0.99",
                              "--seal-idle-ms", "200", "--merge-target-mb", "0"])
        self.addCleanup(self.server.stop)
        self.server.start()

    def wait_indexed(self, name, timeout=120.0):
        wait_indexed(self.server, name, min_segments=5, timeout=timeout, sealed_only=True)

    def own_vector_misses(self, name, vectors, live):
        misses = 0
        for i in live:
            hits = self.search(name, "v", [vectors[i]], 1,
                               params=srch_pb.SearchParams(ef=256))[0].hits
            misses += not hits or hits[0].id != "p%05d" % i
        return misses

    def test_index_change_after_restart_with_deletes(self):
        name = "rebuild"
        sch = pb.CollectionSchema()
        sch.vectors.add(name="v", dim=self.DIM, metric=pb.L2).index.type = "HNSW"
        self.create(name, sch)
        rng = random.Random(5)
        vectors = [[rng.gauss(0.0, 1.0) for _ in range(self.DIM)] for _ in range(self.N)]
        for first in range(0, self.N, 1000):
            self.upsert(name, [make_point("p%05d" % i, {"v": vectors[i]}, {})
                               for i in range(first, first + 1000)])
        self.wait_indexed(name)
        deleted = set(rng.sample(range(self.N), 2000))
        self.server.points.DeletePoints(pts_pb.DeletePointsRequest(
            collection=name, ids=["p%05d" % i for i in sorted(deleted)]), timeout=RPC_TIMEOUT)
        live = [i for i in range(0, self.N, 7) if i not in deleted][:300]

        self.server.stop()
        self.server.start()
        upd = coll_pb.UpdateCollectionRequest(name=name)
        field = upd.vectors.add(field="v")
        field.index.type = "HNSW"
        field.index.params["M"] = "10"
        self.server.collections.UpdateCollection(upd, timeout=RPC_TIMEOUT)
        self.wait_indexed(name)
        # A healthy graph over random points leaves a few unreachable (2-4
        # of 300 here); the broken rebuild missed most of them.
        misses = self.own_vector_misses(name, vectors, live)
        self.assertLessEqual(misses, 9, "%d of 300 points not found by their own vector" % misses)
        self.server.stop()
        self.server.start()
        self.wait_indexed(name)
        misses = self.own_vector_misses(name, vectors, live)
        self.assertLessEqual(misses, 9, "%d of 300 after loading the rebuilt files" % misses)


if __name__ == "__main__":
    argv = _parse_own_args(sys.argv)
    unittest.main(argv=argv, verbosity=2)
