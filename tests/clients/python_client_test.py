"""The Python client package (client/python), installed with pip into a
venv (install_python_client.sh), against real quiverd processes: numpy in
and out, exact int64s, batched imports, a GetPoints response past gRPC's
default 4 MiB, one exception class per status code, `with`, API keys, TLS
and per-service health.

Usage (ctest runs it with the venv's python):
  VENV/bin/python tests/clients/python_client_test.py --quiverd build/quiverd
"""
import argparse
import hashlib
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import grpc
import numpy as np

import quiver
from quiver.v1 import points_pb2, search_pb2, types_pb2

QUIVERD = None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Quiverd:
    """A quiverd on a free loopback port with a temporary data dir."""

    def __init__(self, args=(), client_kwargs=None):
        self.tmp = tempfile.mkdtemp(prefix="quiver_pyclient_")
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.log = open(os.path.join(self.tmp, "quiverd.log"), "wb")
        self.proc = subprocess.Popen(
            [QUIVERD, "--listen", self.address, "--data-dir", os.path.join(self.tmp, "data"),
             "--log-level", "warn"] + list(args), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        with quiver.Client(self.address, timeout=1, **(client_kwargs or {})) as q:
            while True:
                try:
                    if q.health() == "SERVING":
                        return
                except quiver.QuiverError:
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("quiverd did not start")
                time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Quiverd()
        cls.q = quiver.Client(cls.server.address, timeout=30)

    @classmethod
    def tearDownClass(cls):
        cls.q.close()
        cls.server.stop()

    def test_round_trip_with_numpy(self):
        q = self.q
        info = q.create_collection(
            "shop", vectors={"img": (4, "L2", "HNSW"), "txt": {"dim": 2, "metric": "COSINE"}},
            attributes={"qty": "int64", "price": {"type": "double", "indexed": True},
                        "tags": "string_list", "ok": "bool"})
        self.assertEqual(info.name, "shop")
        self.assertIn("shop", q.list_collections())
        big = 2 ** 53 + 1
        img = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], dtype=np.float64)
        txt = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
        seq = q.upsert("shop", ["a", "b", "c"], {"img": img, "txt": txt},
                       attributes={"qty": [big, np.int64(2), -3], "price": [1.5, 3, None],
                                   "tags": [["x", "y"], None, []], "ok": [True, None, False]})
        self.assertIsInstance(seq, int)
        self.assertEqual(q.count("shop"), 3)
        self.assertEqual(q.count("shop", "qty > 9007199254740992"), 1)

        hits = q.search("shop", np.array([0.9, 0.1, 0, 0]), k=2, field="img",
                        output_attributes=["*"], with_vectors=True)
        self.assertEqual([h.id for h in hits], ["a", "b"])
        self.assertEqual(hits[0].attributes["qty"], big)
        self.assertEqual(hits[0].attributes["tags"], ["x", "y"])
        self.assertEqual(hits[0].vectors["img"].dtype, np.float32)
        np.testing.assert_array_equal(hits[0].vectors["img"], [1, 0, 0, 0])
        self.assertAlmostEqual(hits[0].score, 0.02, places=6)

        lists = q.search("shop", img[[0, 2]], k=1, field="img", filter="qty < 0 OR ok")
        self.assertEqual([[h.id for h in l] for l in lists], [["a"], ["c"]])
        exact = q.search("shop", [0, 1, 0, 0], k=1, field="img", params={"exact": True})
        self.assertEqual(exact[0].id, "b")

        pts = {p.id: p for p in q.get("shop", ["b", "missing", "a"], with_vectors=True)}
        self.assertEqual(sorted(pts), ["a", "b"])
        self.assertEqual(pts["b"].attributes, {"qty": 2, "price": 3.0})
        np.testing.assert_array_equal(pts["b"].vectors["img"], [0, 1, 0, 0])
        np.testing.assert_allclose(pts["a"].vectors["txt"], [1, 0])

        self.assertEqual(q.delete("shop", filter="qty < 0"), 1)
        self.assertEqual(q.delete("shop", ids=["b"]), 1)
        self.assertEqual(q.count("shop"), 1)
        self.assertEqual(q.get_collection("shop").stats.point_count, 1)

    def test_sparse_vectors(self):
        q = self.q
        q.create_collection("sp", vectors={}, attributes={"n": "int64"}, sparse_vectors=["kw"])
        q.upsert("sp", ["a", "b", "c"], {}, attributes={"n": [1, 2, 3]},
                 sparse_vectors={"kw": [{3: 1.0, 10: 2.0}, ([10], [0.5]), None]})
        hits = q.search_sparse("sp", "kw", {10: 1.0, 3: 1.0}, k=5, with_vectors=True)
        self.assertEqual([(h.id, h.score) for h in hits], [("a", 3.0), ("b", 0.5)])
        self.assertEqual(hits[0].sparse_vectors["kw"], {3: 1.0, 10: 2.0})
        lists = q.search_sparse("sp", "kw", [{3: 1.0}, ([10], [1.0])], k=5, filter="n >= 2")
        self.assertEqual([[h.id for h in l] for l in lists], [[], ["b"]])
        q.update("sp", [{"id": "c", "sparse_vectors": {"kw": {3: 9.0}}},
                        {"id": "a", "remove_vectors": ["kw"]}])
        self.assertEqual([h.id for h in q.search_sparse("sp", "kw", {3: 1.0})], ["c"])
        pts = {p.id: p for p in q.get("sp", ["a", "c"], with_vectors=True)}
        self.assertEqual(pts["a"].sparse_vectors, {})
        self.assertEqual(pts["c"].sparse_vectors, {"kw": {3: 9.0}})
        info = q.update_collection("sp", add_sparse_vectors=["kw2"])
        self.assertEqual([f.name for f in info.schema.sparse_vectors], ["kw", "kw2"])
        with self.assertRaises(quiver.InvalidArgumentError):
            q.upsert("sp", ["d"], {}, sparse_vectors={"kw": [{1: float("nan")}]})
        self.assertEqual(q.count("sp"), 3)

    def test_sparse_idf_modifier(self):
        q = self.q
        q.create_collection("idf", vectors={}, sparse_vectors=[("bm", "idf"), "raw"])
        q.upsert("idf", ["a", "b", "c"], {},
                 sparse_vectors={"bm": [{1: 1.0}, {2: 1.0}, {2: 1.0}],
                                 "raw": [{1: 1.0}, {2: 1.0}, {2: 1.0}]})
        # Index 1 is in one point of three, index 2 in two: IDF ln(1 + 2.5/1.5)
        # and ln(1 + 1.5/2.5).
        hits = q.search_sparse("idf", "bm", {1: 1.0, 2: 1.0}, k=3)
        self.assertEqual([h.id for h in hits], ["a", "b", "c"])
        self.assertAlmostEqual(hits[0].score, math.log(1 + 2.5 / 1.5), places=5)
        self.assertAlmostEqual(hits[1].score, math.log(1 + 1.5 / 2.5), places=5)
        # Without the modifier every point scores 1.
        self.assertEqual([h.score for h in q.search_sparse("idf", "raw", {1: 1.0, 2: 1.0})],
                         [1.0, 1.0, 1.0])
        info = q.get_collection("idf")
        self.assertEqual([f.modifier for f in info.schema.sparse_vectors],
                         [types_pb2.IDF, types_pb2.SPARSE_MODIFIER_NONE])
        with self.assertRaises(ValueError):
            q.update_collection("idf", add_sparse_vectors=[("x", "bm42")])

    def test_text_attributes(self):
        q = self.q
        q.create_collection("docs", vectors={"v": (2, "L2")},
                            attributes={"body": {"type": "string", "text": True},
                                        "titre": {"type": "string",
                                                  "text": {"language": "french"}}})
        q.upsert("docs", ["a", "b", "c"], {"v": np.zeros((3, 2))},
                 attributes={"body": ["Searching the index", "index of indexes", None],
                             "titre": [None, None, "Les chevaux"]})
        hits = q.search_text("docs", "body", "indexed", k=5, output_attributes=["body"])
        self.assertEqual([h.id for h in hits], ["b", "a"])
        self.assertEqual(hits[0].attributes["body"], "index of indexes")
        self.assertEqual([h.id for h in q.search_text("docs", "titre", "cheval")], ["c"])
        self.assertEqual([[h.id for h in l] for l in
                          q.search_text("docs", "body", ["search", "nothing"])], [["a"], []])
        with self.assertRaises(quiver.InvalidArgumentError):
            q.search_text("docs", "v", "x")

    def test_hybrid_and_multi_stage_search(self):
        q = self.q
        q.create_collection("hy", vectors={"v": (2, "L2")},
                            attributes={"body": {"type": "string", "text": True}},
                            sparse_vectors=["sp"])
        q.upsert("hy", ["a", "b", "c"], {"v": np.array([[0, 0], [1, 1], [5, 5]])},
                 attributes={"body": ["running fast", "they run", "walking"]},
                 sparse_vectors={"sp": [{1: 1.0}, {1: 3.0}, {2: 1.0}]})
        # Text ranks b then a, the vector b, a, c: b is first in both.
        hits = q.search_hybrid("hy", [{"field": "body", "text": "they run"},
                                      {"field": "v", "vector": [1, 1], "k": 3}], k=3)
        self.assertEqual(hits[0].id, "b")
        self.assertEqual(sorted(h.id for h in hits), ["a", "b", "c"])
        # BM25's candidates (a, b) re-scored by the sparse field: b (3) over
        # a (1); then by exact L2 to (0, 0), keeping 1: a.
        hits = q.search_hybrid("hy", [{"field": "body", "text": "run"}], k=1,
                               stages=[{"field": "sp", "sparse_vector": {1: 1.0}, "limit": 2},
                                       {"field": "v", "vector": [0, 0]}])
        self.assertEqual([(h.id, h.score) for h in hits], [("a", 0.0)])
        hits = q.search_hybrid("hy", [{"field": "body", "text": "run"}], k=2,
                               stages=[{"field": "sp", "sparse_vector": {1: 1.0}}])
        self.assertEqual([(h.id, h.score) for h in hits], [("b", 3.0), ("a", 1.0)])
        with self.assertRaises(quiver.InvalidArgumentError):
            q.search_hybrid("hy", [{"field": "body", "text": "run"}], k=2,
                            stages=[{"field": "v", "vector": [0, 0], "limit": 1}])
        with self.assertRaises(ValueError):
            q.search_hybrid("hy", [{"field": "v", "vector": [0, 0], "text": "x"}])

    def test_diversity(self):
        q = self.q
        q.create_collection("dv", vectors={"v": (2, "L2")})
        # Three near-copies at (0, 0) and one point at (1, 0).
        q.upsert("dv", ["a", "b", "c", "d"],
                 {"v": np.array([[0, 0], [0.01, 0], [0, 0.01], [1, 0]])})
        self.assertEqual([h.id for h in q.search("dv", [0, 0], k=2)], ["a", "b"])
        # MMR keeps the best, then the point unlike it.
        hits = q.search("dv", [0, 0], k=2, diversity=0.3)
        self.assertEqual([h.id for h in hits], ["a", "d"])
        self.assertAlmostEqual(hits[1].score, 1.0)  # its relevance: squared distance
        hits = q.search("dv", [0, 0], k=2, diversity={"lambda": 1.0, "fetch_k": 4})
        self.assertEqual([h.id for h in hits], ["a", "b"])
        with self.assertRaises(quiver.InvalidArgumentError):
            q.search("dv", [0, 0], k=2, diversity=2.0)

    def test_target_recall(self):
        q = self.q
        x = np.random.default_rng(3).standard_normal((1500, 8)).astype(np.float32)
        q.create_collection("tr", vectors={"v": (8, "L2", "HNSW")})
        q.upsert("tr", [str(i) for i in range(len(x))], {"v": x})
        # Sealed after a second without writes, then indexed and calibrated.
        deadline = time.time() + 120
        while True:
            segs = q.get_collection("tr").stats.segments
            if segs and all(s.state == s.INDEXED for s in segs):
                break
            self.assertLess(time.time(), deadline, "not indexed")
            time.sleep(0.1)
        hits = q.search("tr", x[:5], k=10, params={"target_recall": 0.95})
        self.assertEqual([len(h) for h in hits], [10] * 5)
        req = search_pb2.SearchRequest(collection="tr", k=10, explain=True,
                                       vectors=[types_pb2.Vector(values=x[7].tolist())])
        req.params.target_recall = 0.95
        resp = q.search_raw(req)
        self.assertGreaterEqual(resp.results[0].predicted_recall, 0.95)
        self.assertLessEqual(resp.results[0].predicted_recall, 1.0)
        self.assertIn("target_recall 0.95", resp.explain.text)
        self.assertIn("calibrated on 100 rows", resp.explain.text)
        with self.assertRaises(quiver.InvalidArgumentError):
            q.search("tr", x[0], params={"target_recall": 0.95, "ef": 64})
        with self.assertRaises(quiver.InvalidArgumentError):
            q.search("tr", x[0], params={"target_recall": 1.5})

    def test_target_recall_of_a_multi_vector_field(self):
        q = self.q
        rng = np.random.default_rng(5)
        sets = rng.standard_normal((1500, 4, 8)).astype(np.float32)
        field = types_pb2.VectorField(name="m", dim=8, metric=types_pb2.IP)
        field.index.type = "HNSW"
        field.multi_vector.max_vectors_per_point = 4
        q.create_collection("trm", vectors={"m": field})
        q.upsert("trm", [str(i) for i in range(len(sets))], {}, multi_vectors={"m": list(sets)})
        deadline = time.time() + 180
        while True:
            segs = q.get_collection("trm").stats.segments
            if segs and all(s.state == s.INDEXED for s in segs):
                break
            self.assertLess(time.time(), deadline, "not indexed")
            time.sleep(0.1)

        queries = sets[:20] + 0.3 * rng.standard_normal((20, 4, 8)).astype(np.float32)

        def request(**params):
            req = search_pb2.SearchRequest(collection="trm", field="m", k=10)
            for s in queries:
                req.multi_vectors.add().vectors.extend(
                    types_pb2.Vector(values=v.tolist()) for v in s)
            for name, value in params.items():
                setattr(req.params, name, value)
            return req

        req = request(target_recall=0.9)
        # Calibrated against exact MaxSim after the index is built: until
        # then the segment is scored exactly (explain says which).
        deadline = time.time() + 120
        while True:
            req.explain = True
            resp = q.search_raw(req)
            if "calibrated on 100 rows" in resp.explain.text:
                break
            self.assertLess(time.time(), deadline, resp.explain.text)
            time.sleep(0.2)
        self.assertIn("target_recall 0.9", resp.explain.text)
        self.assertGreaterEqual(resp.results[0].predicted_recall, 0.9)
        exact = q.search_raw(request(exact=True))
        found = sum(len({h.id for h in a.hits} & {h.id for h in b.hits})
                    for a, b in zip(resp.results, exact.results))
        self.assertGreaterEqual(found / (10 * len(exact.results)), 0.8)
        tokens = types_pb2.VectorField(name="t", dim=8, metric=types_pb2.IP)
        tokens.multi_vector.candidates = types_pb2.MultiVectorOptions.TOKENS
        q.create_collection("trt", vectors={"t": tokens})
        req = request(target_recall=0.9)
        req.collection, req.field = "trt", "t"
        with self.assertRaises(quiver.InvalidArgumentError):
            q.search_raw(req)

    def test_update_collection_changes_the_schema(self):
        q = self.q
        q.create_collection("evolve", vectors={"v": (2, "L2")}, attributes={"n": "int64"})
        q.upsert("evolve", ["a", "b"], {"v": np.eye(2)}, attributes={"n": [1, 2]})
        info = q.update_collection("evolve", attributes={"n": {"indexed": True},
                                                         "tag": "string"},
                                   add_vectors={"w": (3, "IP", "HNSW")},
                                   indexes={"v": ("IVF_FLAT", {"nlist": 4})})
        self.assertEqual([(f.name, f.optional, f.index.type) for f in info.schema.vectors],
                         [("v", False, "IVF_FLAT"), ("w", True, "HNSW")])
        self.assertEqual([(a.name, a.indexed) for a in info.schema.attributes],
                         [("n", True), ("tag", False)])
        q.update("evolve", [{"id": "a", "vectors": {"w": [1, 0, 0]}}])
        self.assertEqual([h.id for h in q.search("evolve", [1, 0, 0], k=5, field="w")], ["a"])
        info = q.update_collection("evolve", drop_vectors=["v"])
        self.assertEqual([f.name for f in info.schema.vectors], ["w"])
        with self.assertRaises(quiver.FailedPreconditionError):
            q.update_collection("evolve", drop_vectors=["w"])
        with self.assertRaises(quiver.InvalidArgumentError):
            q.search("evolve", [1, 0], k=1, field="v")

    def test_batched_import_and_large_get(self):
        q = self.q
        q.create_collection("mnist", vectors={"pixels": (784, "L2")}, attributes={"label": "int64"})
        rng = np.random.default_rng(7)
        x = rng.random((2000, 784), dtype=np.float32)
        ids = ["img-%d" % i for i in range(2000)]
        seen = []
        n = q.upsert_batches("mnist", ids, {"pixels": x}, attributes={"label": np.arange(2000) % 10},
                             batch_size=300, progress=lambda done, total: seen.append((done, total)))
        self.assertEqual(n, 2000)
        self.assertEqual(seen[-1], (2000, 2000))
        self.assertEqual(len(seen), 7)
        # 2,000 784-d vectors: a 6.3 MB response, past gRPC's default 4 MiB.
        got = q.get("mnist", ids, with_vectors=True)
        self.assertEqual(len(got), 2000)
        back = np.stack([p.vectors["pixels"] for p in sorted(got, key=lambda p: int(p.id[4:]))])
        np.testing.assert_array_equal(back, x)
        self.assertEqual(q.count("mnist", "label = 3"), 200)

    def test_scroll_and_partial_update(self):
        q = self.q
        q.create_collection("pages", vectors={"v": (3, "L2")},
                            attributes={"n": "int64", "tag": "string"})
        ids = ["p%03d" % i for i in range(250)]
        x = np.arange(750, dtype=np.float32).reshape(250, 3)
        q.upsert_batches("pages", ids, {"v": x},
                         attributes={"n": list(range(250)), "tag": ["t"] * 250}, batch_size=100)
        # Pages of 64 over 250 points: all of them once, in id order.
        got = list(q.scroll("pages", page_size=64, with_vectors=True))
        self.assertEqual([p.id for p in got], ids)
        np.testing.assert_array_equal(np.stack([p.vectors["v"] for p in got]), x)
        self.assertEqual([p.id for p in q.scroll("pages", filter="n >= 240")], ids[240:])

        r = q.update("pages", [{"id": "p001", "set_attributes": {"n": -1, "tag": None},
                                "vectors": {"v": [9, 9, 9]}},
                               {"id": "p002", "remove_attributes": ["tag"]}])
        self.assertEqual(r.updated_count, 2)
        p1, p2 = q.get("pages", ["p001", "p002"], with_vectors=True)
        self.assertEqual(p1.attributes, {"n": -1})
        np.testing.assert_array_equal(p1.vectors["v"], [9, 9, 9])
        self.assertEqual(p2.attributes, {"n": 2})
        np.testing.assert_array_equal(p2.vectors["v"], x[2])
        # A missing id fails the whole batch: p003 keeps its attribute.
        with self.assertRaises(quiver.NotFoundError):
            q.update("pages", [{"id": "p003", "set_attributes": {"n": 0}},
                               {"id": "nope", "set_attributes": {"n": 0}}])
        self.assertEqual(q.get("pages", ["p003"])[0].attributes["n"], 3)
        r = q.update("pages", [{"id": "new", "set_attributes": {"n": 7},
                                "vectors": {"v": [1, 2, 3]}}], upsert=True)
        self.assertEqual(r.created_count, 1)
        self.assertEqual(q.count("pages"), 251)

    def test_errors_are_typed(self):
        q = self.q
        with self.assertRaises(quiver.NotFoundError) as cm:
            q.count("nope")
        self.assertIsInstance(cm.exception, quiver.QuiverError)
        self.assertEqual(cm.exception.code, grpc.StatusCode.NOT_FOUND)
        self.assertIn("nope", cm.exception.message)
        q.create_collection("err", vectors={"v": (2, "IP")})
        with self.assertRaises(quiver.AlreadyExistsError):
            q.create_collection("err", vectors={"v": (2, "IP")})
        with self.assertRaises(quiver.InvalidArgumentError) as cm:
            q.search("err", [1, 0], filter="x >")
        self.assertIn("filter", str(cm.exception))
        with self.assertRaises(TypeError):
            q.search("err", [1, 0], no_such_option=1)
        with self.assertRaises(TypeError):
            q.upsert("err", ["a"], {"v": [[1, 0]]}, attributes=[{"x": object()}])
        self.assertEqual(set(quiver.ERRORS), set(grpc.StatusCode) - {grpc.StatusCode.OK})

    def test_aliases(self):
        q = self.q
        q.create_collection("al_v1", vectors={"v": (2, "L2")})
        q.create_collection("al_v2", vectors={"v": (2, "L2")})
        q.upsert("al_v1", ["a"], {"v": np.array([[1, 0]], dtype=np.float32)})
        q.upsert("al_v2", ["b", "c"], {"v": np.array([[1, 0], [0, 1]], dtype=np.float32)})
        seq = q.create_alias("al", "al_v1")
        self.assertGreater(seq, 0)
        self.assertEqual(q.count("al"), 1)
        self.assertEqual(q.get_collection("al").name, "al_v1")
        self.assertGreater(q.switch_alias("al", "al_v2"), seq)
        self.assertEqual(q.count("al"), 2)
        self.assertEqual([h.id for h in q.search("al", [1, 0], k=1)], ["b"])
        self.assertIn(("al", "al_v2"), q.list_aliases())
        self.assertEqual(q.list_aliases("al_v2"), [("al", "al_v2")])
        with self.assertRaises(quiver.AlreadyExistsError):
            q.create_alias("al_v1", "al_v2")
        with self.assertRaises(quiver.NotFoundError):
            q.switch_alias("no_alias", "al_v2")
        with self.assertRaises(quiver.InvalidArgumentError):
            q.create_alias("bad-name", "al_v2")
        with self.assertRaises(quiver.FailedPreconditionError) as cm:
            q.drop_collection("al_v2")
        self.assertIn("al", cm.exception.message)
        q.delete_alias("al")
        self.assertEqual(q.list_aliases("al_v2"), [])
        with self.assertRaises(quiver.NotFoundError):
            q.count("al")

    def test_any_rpc_through_call_and_options_by_name(self):
        q = self.q
        q.create_collection("raw", vectors={"v": (2, "L2")})
        q.upsert("raw", ["p"], {"v": [[1, 2]]})
        resp = q.call(q.stubs.points.CountPoints, points_pb2.CountPointsRequest(collection="raw"))
        self.assertEqual(resp.count, 1)
        req = search_pb2.SearchRequest(collection="raw", k=1, explain=True)
        req.vectors.add(values=[1, 2])
        self.assertTrue(q.search_raw(req).explain.text)
        # Every RPC of proto/ has a stub: the package is generated from it.
        from quiver.v1 import collections_pb2, points_pb2 as p2, search_pb2 as s2, snapshots_pb2
        for mod, stub in ((collections_pb2, q.stubs.collections), (p2, q.stubs.points),
                          (s2, q.stubs.search), (snapshots_pb2, q.stubs.snapshots)):
            for service in mod.DESCRIPTOR.services_by_name.values():
                for m in service.methods:
                    self.assertTrue(callable(getattr(stub, m.name)), m.full_name)
        from quiver.v1 import types_pb2
        q.create_collection("msg", vectors={"v": types_pb2.VectorField(dim=2, metric=types_pb2.L2)},
                            attributes={"a": types_pb2.AttributeField(type=types_pb2.INT64)})
        schema = q.get_collection("msg").schema
        self.assertEqual(([f.name for f in schema.vectors], [a.name for a in schema.attributes]),
                         (["v"], ["a"]))
        pkg = os.path.dirname(quiver.__file__)
        self.assertTrue(os.path.exists(os.path.join(pkg, "py.typed")))
        self.assertTrue(os.path.exists(os.path.join(pkg, "v1", "search_pb2.pyi")))

    def test_health_per_service_and_with_closes(self):
        with quiver.Client(self.server.address) as q:
            for s in ("", "quiver.v1.CollectionService", "quiver.v1.PointService",
                      "quiver.v1.SearchService", "quiver.v1.SnapshotService"):
                self.assertEqual(q.health(s), "SERVING", s)
            with self.assertRaises(quiver.NotFoundError):
                q.health("quiver.v1.Nope")
        with self.assertRaises(ValueError):  # the channel is closed
            q.list_collections()

    def test_snapshots(self):
        q = self.q
        q.create_collection("snap", vectors={"v": (2, "L2")})
        q.upsert("snap", ["p"], {"v": [[1, 2]]})
        info = q.create_snapshot("s1", collection="snap")
        self.assertEqual(info.name, "s1")
        self.assertIn("s1", [s.name for s in q.list_snapshots()])
        path = os.path.join(self.server.tmp, "s1.qsnap")
        self.assertEqual(q.download_snapshot("s1", path), os.path.getsize(path))
        q.delete_snapshot("s1")
        with self.assertRaises(quiver.NotFoundError):
            q.delete_snapshot("s1")


class BackpressureTest(unittest.TestCase):
    def test_unavailable_carries_the_retry_hint(self):
        # Slow HNSW builds behind a fast importer, until upserts are refused
        # (as the server's WriteLimitsE2eTest).
        server = Quiverd(["--segment-max-rows", "1000", "--max-unindexed-rows", "2000",
                          "--max-write-delay-ms", "100", "--index-build-workers", "1",
                          "--index-build-threads", "1"])
        self.addCleanup(server.stop)
        with quiver.Client(server.address, timeout=60) as q:
            q.create_collection("c", vectors={"v": {"dim": 256, "metric": "L2", "index": "HNSW",
                                                    "params": {"M": 100, "ef_construction": 4096}}})
            x = np.random.default_rng(3).random((250, 256), dtype=np.float32)
            with self.assertRaises(quiver.UnavailableError) as cm:
                for batch in range(200):
                    q.upsert("c", ["p%d" % (batch * 250 + i) for i in range(250)], {"v": x})
            self.assertIn("--max-unindexed-rows=2000", cm.exception.message)
            self.assertGreaterEqual(cm.exception.retry_after, 0.1)


class AuthAndTlsTest(unittest.TestCase):
    def test_api_key_and_tls(self):
        tmp = tempfile.mkdtemp(prefix="quiver_pyclient_tls_")
        self.addCleanup(shutil.rmtree, tmp, True)
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=quiver.test",
                        "-addext", "subjectAltName=DNS:quiver.test"],
                       check=True, capture_output=True)
        keys = os.path.join(tmp, "keys")
        with open(keys, "w") as f:
            f.write("%s admin\n" % hashlib.sha256(b"qk_py_admin").hexdigest())
        tls = {"ca_cert": cert, "server_name": "quiver.test"}
        server = Quiverd(["--tls-cert", cert, "--tls-key", key, "--api-keys-file", keys],
                         client_kwargs=tls)
        self.addCleanup(server.stop)
        with quiver.Client(server.address, api_key="", **tls) as q:
            with self.assertRaises(quiver.UnauthenticatedError):
                q.list_collections()
        with quiver.Client(server.address, api_key="qk_py_admin", **tls) as q:
            self.assertEqual(q.list_collections(), [])
        os.environ["QUIVER_API_KEY"] = "qk_py_admin"
        try:
            with open(cert, "rb") as f:
                pem = f.read()
            with quiver.Client(server.address, ca_cert=pem, server_name="quiver.test") as q:
                self.assertEqual(q.list_collections(), [])
        finally:
            del os.environ["QUIVER_API_KEY"]
        with quiver.Client(server.address, api_key="qk_py_admin", timeout=2) as q:
            with self.assertRaises(quiver.UnavailableError):  # plaintext to a TLS port
                q.list_collections()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quiverd", required=True)
    args, rest = parser.parse_known_args()
    QUIVERD = args.quiverd
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
