#!/usr/bin/python3
"""Sparse vector fields and full-text (BM25) attributes from Python through
proto/ alone, against a real quiverd:

  - a collection with a dense and a sparse field: sparse searches (single,
    batched, filtered, forced exact, k past the matching points) return
    what a brute-force dot product over the same points returns, in order,
    before and after the segments are sealed and indexed;
  - overwrites, deletes and partial updates (set, remove) of sparse vectors
    are searched exactly;
  - hybrid search of the sparse and the dense field fuses their lists as
    RRF, WEIGHTED and DBSF compute by hand;
  - a multi-stage search re-scores the fused candidates by the sparse dot
    product, then by exact L2, as the same stages computed here do;
  - acknowledged writes survive kill -9 (searches and GetPoints after the
    restart), and VerifyCollection finds no defect;
  - bad sparse vectors and requests are INVALID_ARGUMENT and change nothing;
  - a collection with sparse fields only;
  - a text attribute (language "none", so terms are the lower-cased
    words): BM25 searches equal a brute force over the same documents
    with collection-wide statistics, after overwrites, deletes and kill -9;
    an english attribute stems.

Usage:
  /usr/bin/python3 tests/python/sparse_e2e_test.py --quiverd build/quiverd --proto proto
"""

import math
import os
import random
import shutil
import sys
import tempfile
import unittest

import grpc
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quiver_e2e_test as base  # noqa: E402  (stub generation and the Server class)

T = base.RPC_TIMEOUT


def setUpModule():
    base.setUpModule()


def sparse_msg(d):
    """A SparseVector message, indices given in descending order (the server
    sorts)."""
    items = sorted(d.items(), reverse=True)
    return base.pb.SparseVector(indices=[i for i, _ in items], values=[v for _, v in items])


def sparse_dot(q, d):
    """The dot product as the server sums it: float32, ascending index."""
    s = np.float32(0)
    hit = False
    for i in sorted(q):
        if i in d:
            s = np.float32(s + np.float32(q[i]) * np.float32(d[i]))
            hit = True
    return float(s), hit


class SparseTest(base.QuiverTestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="quiver_py_sparse_")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.server = base.Server(os.path.join(self.tmp, "data"),
                                  ["--segment-max-rows", "200", "--seal-idle-ms", "50",
                                   "--merge-target-mb", "0"])
        self.server.start()
        self.addCleanup(self.server.stop)
        self.rng = random.Random(11)
        self.points = {}  # id -> (sparse dict or None, dense list, cat)

    def create_collection(self, dense=True):
        sch = base.pb.CollectionSchema(
            attributes=[base.pb.AttributeField(name="cat", type=base.pb.INT64, indexed=True)],
            sparse_vectors=[base.pb.SparseVectorField(name="sp")])
        if dense:
            sch.vectors.add(name="v", dim=4, metric=base.pb.L2)
        self.create("c", sch)

    def rand_sparse(self, lo, hi):
        d = {}
        n = self.rng.randint(lo, hi)
        while len(d) < n:
            # A power law over the vocabulary, spread over the uint32 range.
            d[int(3000 ** self.rng.random()) * 1_000_003 % (2 ** 32)] = \
                float(np.float32(0.05 + self.rng.random()))
        return d

    def put(self, ids, dense=True):
        pts = []
        for pid in ids:
            sp = self.rand_sparse(1, 30) if self.rng.random() > 0.1 else None
            vec = [float(np.float32(self.rng.random())) for _ in range(4)] if dense else []
            cat = self.rng.randrange(5)
            self.points[pid] = (sp, vec, cat)
            p = base.pb.Point(id=pid)
            if dense:
                p.vectors["v"].values.extend(vec)
            if sp is not None:
                p.sparse_vectors["sp"].CopyFrom(sparse_msg(sp))
            p.attributes["cat"].int_value = cat
            pts.append(p)
        return self.upsert("c", pts)

    def truth(self, q, cats=None):
        out = []
        for pid, (sp, _, cat) in self.points.items():
            if sp is None or (cats is not None and cat not in cats):
                continue
            s, hit = sparse_dot(q, sp)
            if hit:
                out.append((s, pid))
        out.sort(key=lambda t: (-t[0], t[1]))
        return out

    def sparse_search(self, queries, k, flt="", exact=False, **kw):
        req = base.srch_pb.SearchRequest(collection="c", field="sp", k=k, filter=flt,
                                         sparse_vectors=[sparse_msg(q) for q in queries], **kw)
        req.params.exact = exact
        return self.server.search.Search(req, timeout=T)

    def check_searches(self, label):
        for rnd in range(12):
            queries = [self.rand_sparse(1, 10) for _ in range(1 + rnd % 3)]
            k = [1, 10, 2000][rnd % 3]
            cats = {0, 2} if rnd % 4 == 1 else None
            resp = self.sparse_search(queries, k, "cat IN (0, 2)" if cats else "",
                                      exact=rnd % 5 == 4)
            self.assertEqual(len(resp.results), len(queries))
            for q, res in zip(queries, resp.results):
                want = self.truth(q, cats)[:k]
                ctx = "%s round %d k %d" % (label, rnd, k)
                self.assertEqual(len(res.hits), len(want), ctx)
                self.assertEqual(res.count, len(want), ctx)
                self.assertTrue(res.exhaustive, ctx)
                if len(want) < k:
                    self.assertEqual(res.shortfall, base.srch_pb.SHORTFALL_FEWER_MATCHES, ctx)
                seen = set()
                for h, (ws, _) in zip(res.hits, want):
                    self.assertTrue(base.close(h.score, ws, 1e-4, 1e-5), "%s: %s vs %s" %
                                    (ctx, h.score, ws))
                    own, hit = sparse_dot(q, self.points[h.id][0])
                    self.assertTrue(hit, ctx)
                    self.assertTrue(base.close(h.score, own, 1e-4, 1e-5), ctx)
                    if cats:
                        self.assertIn(self.points[h.id][2], cats, ctx)
                    self.assertNotIn(h.id, seen, ctx)
                    seen.add(h.id)

    def verify_clean(self):
        resp = self.server.collections.VerifyCollection(
            base.coll_pb.VerifyCollectionRequest(name="c"), timeout=T)
        self.assertEqual(resp.defects_total, 0, resp)

    def test_searches_writes_and_kill9(self):
        self.create_collection()
        ids = ["p%d" % i for i in range(900)]
        for i in range(0, len(ids), 150):
            self.put(ids[i:i + 150])
        self.check_searches("growing and sealed")
        base.wait_indexed(self.server, "c", min_segments=4, sealed_only=True)
        self.check_searches("indexed")

        # Overwrites, deletes, partial updates.
        self.put(["p%d" % i for i in range(100, 200)])
        gone = ["p%d" % i for i in range(300, 420)]
        self.server.points.DeletePoints(base.pts_pb.DeletePointsRequest(collection="c", ids=gone),
                                        timeout=T)
        for pid in gone:
            del self.points[pid]
        req = base.pts_pb.UpdatePointsRequest(collection="c")
        for i in range(500, 560):
            pid = "p%d" % i
            u = req.updates.add(id=pid)
            sp, vec, cat = self.points[pid]
            if i % 2:
                u.remove_vectors.append("sp")
                self.points[pid] = (None, vec, cat)
            else:
                new = self.rand_sparse(2, 6)
                u.sparse_vectors["sp"].CopyFrom(sparse_msg(new))
                self.points[pid] = (new, vec, cat)
        self.server.points.UpdatePoints(req, timeout=T)
        self.check_searches("after writes")

        # The last batch is acknowledged, then quiverd is killed.
        self.put(["q%d" % i for i in range(50)])
        self.server.kill()
        self.server.start()
        self.assertEqual(self.count("c"), len(self.points))
        self.check_searches("after kill -9")
        got = {p.id: p for p in self.get("c", ["p500", "p501", "q7", "p0"], with_vectors=True)}
        for pid, p in got.items():
            sp = self.points[pid][0]
            if sp is None:
                self.assertNotIn("sp", p.sparse_vectors)
            else:
                self.assertEqual(list(p.sparse_vectors["sp"].indices), sorted(sp))
                self.assertEqual(list(p.sparse_vectors["sp"].values), [sp[i] for i in sorted(sp)])
        base.wait_indexed(self.server, "c", min_segments=4, sealed_only=True)
        self.check_searches("after kill -9, indexed")
        self.verify_clean()

        # Hits carry the sparse vectors with with_vectors.
        q = self.rand_sparse(3, 3)
        res = self.sparse_search([q], 3, with_vectors=True).results[0]
        for h in res.hits:
            self.assertEqual(dict(zip(h.sparse_vectors["sp"].indices,
                                      h.sparse_vectors["sp"].values)), self.points[h.id][0])

    def test_hybrid_fusion_by_hand(self):
        self.create_collection()
        self.put(["p%d" % i for i in range(600)])
        base.wait_indexed(self.server, "c", min_segments=3, sealed_only=True)
        for fusion in ("RRF", "WEIGHTED", "DBSF"):
            req = base.srch_pb.SearchRequest(
                collection="c", k=10, fusion=base.srch_pb.FusionMethod.Value(fusion),
                with_field_results=True)
            a = req.field_queries.add(field="sp", k=40, weight=0.7)
            a.sparse_vector.CopyFrom(sparse_msg(self.rand_sparse(3, 6)))
            b = req.field_queries.add(field="v", k=40, weight=0.3)
            b.vector.values.extend([0.5, 0.5, 0.5, 0.5])
            resp = self.server.search.Search(req, timeout=T)
            # Lists as (id, distance): sparse scores are similarities.
            lists = [([(h.id, -h.score) for h in resp.field_results[0].hits], 0.7),
                     ([(h.id, h.score) for h in resp.field_results[1].hits], 0.3)]
            fused = {}
            for hits, w in lists:
                if not hits:
                    continue
                ds = [d for _, d in hits]
                mean = sum(ds) / len(ds)
                sd = math.sqrt(max(0.0, sum(d * d for d in ds) / len(ds) - mean * mean))
                lo, hi = min(ds), max(ds)
                for rank, (pid, d) in enumerate(hits, 1):
                    if fusion == "RRF":
                        c = w / (60 + rank)
                    elif fusion == "WEIGHTED":
                        c = w * ((hi - d) / (hi - lo) if hi > lo else 1.0)
                    else:
                        c = w * (min(1.0, max(0.0, (mean + 3 * sd - d) / (6 * sd)))
                                 if sd > 1e-12 else 0.5)
                    fused[pid] = fused.get(pid, 0.0) + c
            want = sorted(fused.items(), key=lambda t: (-t[1], t[0]))[:10]
            got = [(h.id, h.score) for h in resp.results[0].hits]
            self.assertEqual(len(got), len(want), fusion)
            for (gid, gs), (wid, ws) in zip(got, want):
                self.assertTrue(base.close(gs, ws, 1e-4, 1e-5), "%s: %s vs %s" % (fusion, gs, ws))

    def test_multi_stage_by_hand(self):
        # The fused candidates of a sparse and a dense search, re-scored by
        # the sparse dot product (keeping 20), then by exact L2 (keeping k),
        # against the same stages computed here over the candidates.
        self.create_collection()
        self.put(["p%d" % i for i in range(600)])
        for label in ("growing", "indexed"):
            if label == "indexed":
                base.wait_indexed(self.server, "c", min_segments=3, sealed_only=True)
            for rnd in range(4):
                qs = self.rand_sparse(3, 6)
                qv = [float(np.float32(self.rng.random())) for _ in range(4)]
                flt = "cat IN (0, 1, 2)" if rnd % 2 else ""
                req = base.srch_pb.SearchRequest(collection="c", k=10, filter=flt,
                                                 with_field_results=True, explain=True)
                a = req.field_queries.add(field="sp", k=40)
                a.sparse_vector.CopyFrom(sparse_msg(qs))
                b = req.field_queries.add(field="v", k=40)
                b.vector.values.extend(qv)
                st = req.stages.add(field="sp", limit=20)
                st.sparse_vector.CopyFrom(sparse_msg(qs))
                st = req.stages.add(field="v")
                st.vector.values.extend(qv)
                resp = self.server.search.Search(req, timeout=T)
                cand = {h.id for fr in resp.field_results for h in fr.hits}
                # Stage 1: points without a sparse vector are dropped, the
                # others score their dot product (0 without a shared index).
                scored = [(sparse_dot(qs, self.points[pid][0])[0], pid) for pid in cand
                          if self.points[pid][0] is not None]
                scored.sort(key=lambda t: -t[0])
                kept = [pid for _, pid in scored[:20]]
                q32 = np.asarray(qv, dtype=np.float32)
                dist = sorted((float(np.sum((np.asarray(self.points[pid][1], dtype=np.float32)
                                             - q32) ** 2)), pid) for pid in kept)[:10]
                got = [(h.id, h.score) for h in resp.results[0].hits]
                ctx = "%s round %d" % (label, rnd)
                if len(scored) > 20 and scored[19][0] == scored[20][0]:
                    continue  # a tie at the cut: either point may go on
                self.assertEqual(len(got), len(dist), ctx)
                for (gid, gs), (wd, wid) in zip(got, dist):
                    self.assertTrue(base.close(gs, wd, 1e-4, 1e-5), "%s: %s vs %s" % (ctx, gs, wd))
                    self.assertEqual(gid, wid, ctx)
                self.assertIn("MultiStageSearch(", resp.explain.text)
                self.assertIn('Rescore(field="sp", dot product, limit=20', resp.explain.text)
        # A stage limit under k, and stages without field_queries, are refused.
        req = base.srch_pb.SearchRequest(collection="c", k=10)
        req.field_queries.add(field="v").vector.values.extend([0, 0, 0, 0])
        st = req.stages.add(field="v", limit=5)
        st.vector.values.extend([0, 0, 0, 0])
        with self.assertRaises(grpc.RpcError) as e:
            self.server.search.Search(req, timeout=T)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("limit must be 0 (k) or in k..", e.exception.details())

    def test_bad_inputs_change_nothing(self):
        self.create_collection()
        self.put(["p%d" % i for i in range(20)])
        before = self.count("c")
        bad = [
            base.pb.SparseVector(indices=[1, 2], values=[1.0]),
            base.pb.SparseVector(indices=[1], values=[float("nan")]),
            base.pb.SparseVector(indices=[4, 4], values=[1.0, 2.0]),
        ]
        for sv in bad:
            p = base.pb.Point(id="bad")
            p.vectors["v"].values.extend([0, 0, 0, 0])
            p.sparse_vectors["sp"].CopyFrom(sv)
            self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.upsert, "c", [p])
        p = base.pb.Point(id="bad")
        p.vectors["v"].values.extend([0, 0, 0, 0])
        p.sparse_vectors["nope"].CopyFrom(base.pb.SparseVector(indices=[1], values=[1]))
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.upsert, "c", [p])
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.sparse_search, [{}], 5)
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.sparse_search, [{1: 1.0}], 5,
                        group_by="cat")
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.server.search.Search,
                        base.srch_pb.SearchRequest(collection="c", field="sp", k=3,
                                                   vectors=[base.pb.Vector(values=[1, 2])]))
        self.assertEqual(self.count("c"), before)
        self.check_searches("after bad inputs")

    def test_sparse_only_collection(self):
        self.create_collection(dense=False)
        self.put(["p%d" % i for i in range(450)], dense=False)
        self.check_searches("sparse only")
        self.server.kill()
        self.server.start()
        self.check_searches("sparse only after kill -9")


class TextTest(base.QuiverTestCase):
    WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota",
             "kappa"] + ["w%d" % i for i in range(200)]

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="quiver_py_text_")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.server = base.Server(os.path.join(self.tmp, "data"),
                                  ["--segment-max-rows", "150", "--seal-idle-ms", "50",
                                   "--merge-target-mb", "0"])
        self.server.start()
        self.addCleanup(self.server.stop)
        self.rng = random.Random(5)
        self.docs = {}
        sch = base.pb.CollectionSchema(
            vectors=[base.pb.VectorField(name="v", dim=2, metric=base.pb.L2)],
            attributes=[base.pb.AttributeField(name="body", type=base.pb.STRING,
                                               text=base.pb.TextOptions(language="none")),
                        base.pb.AttributeField(name="en", type=base.pb.STRING,
                                               text=base.pb.TextOptions(k1=1.5, b=0.5)),
                        base.pb.AttributeField(name="cat", type=base.pb.INT64)])
        self.create("t", sch)

    def text(self):
        n = self.rng.randint(1, 25)
        return " ".join(self.WORDS[min(len(self.WORDS) - 1, int(len(self.WORDS) **
                                                                 self.rng.random()) - 1)]
                        for _ in range(n))

    def put(self, ids):
        pts = []
        for pid in ids:
            body = self.text() if self.rng.random() > 0.1 else None
            self.docs[pid] = (body, self.rng.randrange(3))
            p = base.pb.Point(id=pid)
            p.vectors["v"].values.extend([0.0, 1.0])
            if body is not None:
                p.attributes["body"].string_value = body.upper() if self.rng.random() < 0.2 \
                    else body
            p.attributes["cat"].int_value = self.docs[pid][1]
            pts.append(p)
        self.upsert("t", pts)

    def truth(self, query, k1=1.2, b=0.75, cats=None):
        tfs = {pid: {} for pid, (body, _) in self.docs.items() if body is not None}
        for pid in tfs:
            for w in self.docs[pid][0].split():
                tfs[pid][w] = tfs[pid].get(w, 0) + 1
        n_docs = len(tfs)
        avg = sum(sum(t.values()) for t in tfs.values()) / n_docs
        df = {}
        for t in tfs.values():
            for w in t:
                df[w] = df.get(w, 0) + 1
        qtf = {}
        for w in query.lower().split():
            qtf[w] = qtf.get(w, 0) + 1
        out = []
        for pid, t in tfs.items():
            if cats is not None and self.docs[pid][1] not in cats:
                continue
            dl = sum(t.values())
            s, hit = 0.0, False
            for w, c in qtf.items():
                if w in t:
                    idf = math.log(1 + (n_docs - df[w] + 0.5) / (df[w] + 0.5))
                    s += idf * c * t[w] * (k1 + 1) / (t[w] + k1 * (1 - b + b * dl / avg))
                    hit = True
            if hit:
                out.append((s, pid))
        out.sort(key=lambda x: (-x[0], x[1]))
        return out

    def check(self, label):
        for rnd in range(10):
            q = " ".join(self.rng.choice(self.WORDS[:40]) for _ in range(self.rng.randint(1, 4)))
            k = [5, 50, 1000][rnd % 3]
            cats = {0, 2} if rnd % 2 else None
            req = base.srch_pb.SearchRequest(collection="t", field="body", k=k, texts=[q],
                                             filter="cat IN (0, 2)" if cats else "")
            res = self.server.search.Search(req, timeout=T).results[0]
            want = self.truth(q, cats=cats)[:k]
            ctx = "%s: %r k %d" % (label, q, k)
            self.assertEqual(len(res.hits), len(want), ctx)
            own = dict((pid, s) for s, pid in self.truth(q, cats=cats))
            for h, (ws, _) in zip(res.hits, want):
                self.assertTrue(base.close(h.score, ws, 1e-4, 1e-5), "%s: %s vs %s" %
                                (ctx, h.score, ws))
                self.assertTrue(base.close(h.score, own[h.id], 1e-4, 1e-5), ctx)

    def test_bm25_against_brute_force_and_kill9(self):
        self.put(["d%d" % i for i in range(600)])
        self.check("growing and sealed")
        base.wait_indexed(self.server, "t", min_segments=4, sealed_only=True)
        self.check("indexed")
        self.put(["d%d" % i for i in range(100, 180)])  # overwrites
        gone = ["d%d" % i for i in range(200, 320)]
        self.server.points.DeletePoints(base.pts_pb.DeletePointsRequest(collection="t", ids=gone),
                                        timeout=T)
        for pid in gone:
            del self.docs[pid]
        self.check("after writes")
        self.server.kill()
        self.server.start()
        self.check("after kill -9")
        base.wait_indexed(self.server, "t", min_segments=3, sealed_only=True)
        self.check("after kill -9, indexed")

    def test_english_stems_and_bad_requests(self):
        p = base.pb.Point(id="e1")
        p.vectors["v"].values.extend([0.0, 0.0])
        p.attributes["en"].string_value = "The connections were running"
        self.upsert("t", [p])
        res = self.server.search.Search(base.srch_pb.SearchRequest(
            collection="t", field="en", k=3, texts=["connected runs"]), timeout=T).results[0]
        self.assertEqual([h.id for h in res.hits], ["e1"])
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.server.search.Search,
                        base.srch_pb.SearchRequest(collection="t", field="cat", k=3,
                                                   texts=["x"]))
        bad = base.pb.CollectionSchema(
            vectors=[base.pb.VectorField(name="v", dim=2, metric=base.pb.L2)],
            attributes=[base.pb.AttributeField(name="b", type=base.pb.STRING,
                                               text=base.pb.TextOptions(language="elvish"))])
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.create, "u", bad)


if __name__ == "__main__":
    unittest.main(argv=base._parse_own_args(sys.argv), verbosity=2)
