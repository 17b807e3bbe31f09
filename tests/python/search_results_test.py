#!/usr/bin/python3
"""Honest results, range and grouped search, and the filter null rule, from
Python through proto/ alone, against a real quiverd, each checked against a
brute-force reference computed here:

  - k past the collection for every index kind, with and without a filter:
    the list says how many it holds and why it is short, and exhaustive /
    min_results return every matching point;
  - range search (score_threshold) for L2 and COSINE;
  - grouped search (group_by, group_size);
  - SQL null logic in search, count and delete by filter, IS [NOT] NULL and
    id IN (...);
  - bad options: INVALID_ARGUMENT, and nothing changes.

Usage:
  /usr/bin/python3 tests/python/search_results_test.py --quiverd build/quiverd --proto proto
"""

import os
import random
import shutil
import sys
import tempfile
import time
import unittest

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quiver_e2e_test as base  # noqa: E402  (stub generation and the Server class)

DIM = 8
N = 5000  # the size at which HNSW and IVF_FLAT were seen to return 4,999 and 1,596
KINDS = ["FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8", "IVF_PQ"]


def setUpModule():
    base.setUpModule()


class SearchResultsTest(base.QuiverTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="quiver_py_results_")
        cls.server = base.Server(os.path.join(cls.tmp, "data"),
                                 ["--segment-max-rows", "2000", "--seal-idle-ms", "200",
                                  "--merge-target-mb", "0"])
        cls.server.start()
        rng = random.Random(5)
        cls.points = {}
        for i in range(N):
            attrs = {}
            if rng.random() > 0.2:
                attrs["n"] = rng.randint(0, 5)
            if rng.random() > 0.2:
                attrs["ok"] = rng.random() < 0.5
            if rng.random() > 0.2:
                attrs["brand"] = rng.choice(["acme", "bolt", "core", "dyna", "echo"])
            attrs["w"] = 0.5
            cls.points["p%d" % i] = ([rng.gauss(0, 1) for _ in range(DIM)], attrs)
        for kind in KINDS:
            cls.create("c_" + kind, kind, base.pb.L2)
        cls.create("cos", "HNSW", base.pb.COSINE)
        for name in ["c_" + k for k in KINDS] + ["cos"]:
            base.wait_indexed(cls.server, name, min_segments=3)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def create(cls, name, kind, metric):
        s = base.pb.CollectionSchema()
        f = s.vectors.add(name="v", dim=DIM, metric=metric)
        f.index.type = kind
        if kind == "IVF_PQ":
            f.index.params["m"] = "4"
        if kind == "HNSW":
            f.index.params["M"] = "4"
        s.attributes.add(name="n", type=base.pb.INT64, indexed=True)
        s.attributes.add(name="ok", type=base.pb.BOOL)
        s.attributes.add(name="brand", type=base.pb.STRING)
        s.attributes.add(name="w", type=base.pb.DOUBLE)
        cls.server.collections.CreateCollection(
            base.coll_pb.CreateCollectionRequest(name=name, schema=s), timeout=base.RPC_TIMEOUT)
        pts = [base.make_point(pid, {"v": v}, a) for pid, (v, a) in sorted(cls.points.items())]
        for at in range(0, len(pts), 1000):
            cls.server.points.UpsertPoints(
                base.pts_pb.UpsertPointsRequest(collection=name, points=pts[at:at + 1000]),
                timeout=base.RPC_TIMEOUT)

    def search(self, coll, query, k, **kw):
        req = base.srch_pb.SearchRequest(collection=coll, k=k, **kw)
        req.vectors.add(values=query)
        return self.server.search.Search(req, timeout=base.RPC_TIMEOUT)

    def ids(self, pred):
        return {pid for pid, (_, a) in self.points.items() if pred(a)}

    # -- k past the collection --
    def test_k_past_the_collection_says_what_happened(self):
        Sh = base.srch_pb
        cases = [("", lambda a: True),
                 ("n IN (1, 2) AND NOT ok", lambda a: a.get("n") in (1, 2) and a.get("ok") is False)]
        q = self.points["p0"][0]
        for kind in KINDS:
            for flt, pred in cases:
                with self.subTest(kind=kind, filter=flt):
                    want = self.ids(pred)
                    r = self.search("c_" + kind, q, 16384, filter=flt).results[0]
                    self.assertEqual(r.count, len(r.hits))
                    self.assertEqual(r.matching_points, len(want))
                    self.assertTrue(r.shortfall in (Sh.SHORTFALL_FEWER_MATCHES,
                                                    Sh.SHORTFALL_INDEX_STOPPED_EARLY))
                    if r.count == len(want):
                        self.assertEqual(r.shortfall, Sh.SHORTFALL_FEWER_MATCHES)
                        self.assertTrue(r.exhaustive)
                    else:
                        self.assertEqual(r.shortfall, Sh.SHORTFALL_INDEX_STOPPED_EARLY)
                        self.assertFalse(r.exhaustive)
                    self.assertTrue({h.id for h in r.hits} <= want)
                    for opt in ({"exhaustive": True}, {"min_results": 16384}):
                        resp = self.search("c_" + kind, q, 16384, filter=flt, explain=True, **opt)
                        full = resp.results[0]
                        self.assertEqual({h.id for h in full.hits}, want)
                        self.assertEqual(full.count, len(want))
                        self.assertTrue(full.exhaustive)
                        self.assertEqual(full.shortfall, Sh.SHORTFALL_FEWER_MATCHES)
                        if r.count < len(want):
                            self.assertIn("Fallback(", resp.explain.text)
        r = self.search("c_HNSW", q, 5).results[0]
        self.assertEqual((r.count, r.shortfall, r.matching_points), (5, Sh.SHORTFALL_NONE, 0))

    # -- range search --
    def test_range_search_matches_brute_force(self):
        q = self.points["p7"][0]
        for coll, metric in (("c_HNSW", "l2"), ("c_IVF_PQ", "l2"), ("cos", "cos")):
            for t in ((1.0, 4.0, 8.0) if metric == "l2" else (0.9, 0.5, 0.0)):
                for flt, pred in (("", lambda a: True), ("ok", lambda a: a.get("ok") is True)):
                    with self.subTest(coll=coll, threshold=t, filter=flt):
                        def inside(v):
                            return base.l2sqr(v, q) <= t if metric == "l2" else base.cosine(v, q) >= t
                        # Scores near the threshold differ in the last float bits
                        # between here and the server: leave those out of the check.
                        def near(v):
                            s = base.l2sqr(v, q) if metric == "l2" else base.cosine(v, q)
                            return abs(s - t) < 1e-4 * max(1.0, abs(t))
                        want = {pid for pid, (v, a) in self.points.items()
                                if pred(a) and inside(v) and not near(v)}
                        border = {pid for pid, (v, a) in self.points.items() if pred(a) and near(v)}
                        r = self.search(coll, q, N, filter=flt, score_threshold=t,
                                        exhaustive=True).results[0]
                        got = {h.id for h in r.hits}
                        self.assertEqual(got - border, want)
                        for h in r.hits:
                            if metric == "l2":
                                self.assertLessEqual(h.score, t)
                            else:
                                self.assertGreaterEqual(h.score, t)
                        self.assertEqual(r.count, len(got))
                        self.assertTrue(r.exhaustive)
                        if r.count < len(self.ids(pred)):
                            self.assertEqual(r.shortfall, base.srch_pb.SHORTFALL_SCORE_THRESHOLD)

    # -- grouped search --
    def test_grouped_search_matches_brute_force(self):
        q = self.points["p11"][0]
        for k, size, flt, pred in ((3, 1, "", lambda a: True), (4, 3, "n >= 2", None),
                                   (10, 2, "", lambda a: True)):
            if pred is None:
                pred = lambda a: a.get("n") is not None and a["n"] >= 2  # noqa: E731
            with self.subTest(k=k, size=size, filter=flt):
                ranked = sorted((base.l2sqr(v, q), pid) for pid, (v, a) in self.points.items() if pred(a))
                groups = []
                for _, pid in ranked:
                    key = self.points[pid][1].get("brand")
                    if key is None:
                        continue  # no group
                    g = next((g for g in groups if g[0] == key), None)
                    if g is None:
                        if len(groups) == k:
                            continue
                        g = (key, [])
                        groups.append(g)
                    if len(g[1]) < size:
                        g[1].append(pid)
                r = self.search("c_FLAT", q, k, filter=flt, group_by="brand",
                                group_size=size, exhaustive=True).results[0]
                got = [(g.key.string_value, [h.id for h in g.hits]) for g in r.groups]
                self.assertEqual(got, groups)
                self.assertEqual(len(r.hits), 0)
                self.assertEqual(r.count, len(groups))
                want_short = (base.srch_pb.SHORTFALL_FEWER_MATCHES if len(groups) < k
                              else base.srch_pb.SHORTFALL_NONE)
                self.assertEqual(r.shortfall, want_short)

    # -- null logic --
    def test_null_logic_in_search_count_and_delete(self):
        cases = [
            ("NOT ok", lambda a: a.get("ok") is False),
            ("NOT n = 3", lambda a: a.get("n") is not None and a["n"] != 3),
            ("n != 3 OR n IS NULL", lambda a: a.get("n") != 3),
            ("NOT (n < 2 OR ok)", lambda a: a.get("n") is not None and a["n"] >= 2
             and a.get("ok") is False),
            ("ok IS NULL AND brand IS NOT NULL", lambda a: "ok" not in a and "brand" in a),
            ("n = 1 OR NOT n = 1", lambda a: "n" in a),
            ('id IN ("p1", "p2", "p3") AND NOT ok', lambda a: False),  # checked below
        ]
        q = self.points["p0"][0]
        for flt, pred in cases:
            if flt.startswith("id IN"):
                want = {pid for pid in ("p1", "p2", "p3") if self.points[pid][1].get("ok") is False}
            else:
                want = self.ids(pred)
            for kind in ("HNSW", "IVF_FLAT"):
                with self.subTest(filter=flt, kind=kind):
                    self.assertEqual(self.count("c_" + kind, flt), len(want))
                    for strategy in (base.srch_pb.PRE_FILTER, base.srch_pb.FILTERED_INDEX,
                                     base.srch_pb.POST_FILTER):
                        r = self.search("c_" + kind, q, N, filter=flt, exhaustive=True,
                                        params=base.srch_pb.SearchParams(
                                            filter_strategy=strategy)).results[0]
                        self.assertEqual({h.id for h in r.hits}, want)
        # Delete by filter removes exactly the points the rule matches.
        gone = self.ids(lambda a: a.get("ok") is False and a.get("n") is not None and a["n"] >= 3)
        resp = self.server.points.DeletePoints(
            base.pts_pb.DeletePointsRequest(collection="c_IVF_FLAT", filter="NOT (ok OR n < 3)"),
            timeout=base.RPC_TIMEOUT)
        self.assertEqual(resp.deleted_count, len(gone))
        self.assertEqual(self.count("c_IVF_FLAT", ""), N - len(gone))
        self.assertEqual(self.count("c_IVF_FLAT", "NOT (ok OR n < 3)"), 0)
        # Put them back for the other tests.
        pts = [base.make_point(pid, {"v": self.points[pid][0]}, self.points[pid][1]) for pid in gone]
        if pts:
            self.server.points.UpsertPoints(
                base.pts_pb.UpsertPointsRequest(collection="c_IVF_FLAT", points=pts),
                timeout=base.RPC_TIMEOUT)

    # -- bad inputs --
    def test_bad_options_are_invalid_argument_and_change_nothing(self):
        q = self.points["p0"][0]
        bad = [
            dict(group_size=2),
            dict(group_by="nope"),
            dict(group_by="v"),
            dict(group_by="w"),
            dict(group_by="brand", group_size=20000),
            dict(score_threshold=float("nan")),
            dict(score_threshold=float("inf")),
            dict(min_results=11),
        ]
        for kw in bad:
            with self.subTest(**{k: str(v) for k, v in kw.items()}):
                kw.setdefault("k", 10)
                req = base.srch_pb.SearchRequest(collection="c_HNSW", **kw)
                req.vectors.add(values=q)
                with self.assertRaises(grpc.RpcError) as cm:
                    self.server.search.Search(req, timeout=base.RPC_TIMEOUT)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT,
                                 cm.exception.details())
        hybrid = base.srch_pb.SearchRequest(collection="c_HNSW", k=5, group_by="brand")
        hybrid.field_queries.add(field="v").vector.values.extend(q)
        with self.assertRaises(grpc.RpcError) as cm:
            self.server.search.Search(hybrid, timeout=base.RPC_TIMEOUT)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("hybrid", cm.exception.details())
        for flt in ("n IS 3", "id < 'a'", "id = 3"):
            with self.assertRaises(grpc.RpcError) as cm:
                self.count("c_HNSW", flt)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.count("c_HNSW", ""), N)


if __name__ == "__main__":
    unittest.main(argv=base._parse_own_args(sys.argv))
