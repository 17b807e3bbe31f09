#!/usr/bin/python3
"""Compressed and DISK vector fields searched from Python through proto/
alone, against a real quiverd, checked against brute force computed here:

  - IVF_SQ8 and HNSW_SQ8 fields, DISK (full vectors in rerank tables) and
    MEMORY, L2 and COSINE: recall@10 after the exact rerank;
  - a batch of queries in one request answers each query exactly as the
    query alone does (a batch's DISK reads are submitted a chunk of queries
    at a time), filtered or not, and explain says in how many batches it
    read;
  - after kill -9 and a restart the same requests give the same answers
    (the SQ8 indexes' per-code norms are computed again when they load).

Usage:
  /usr/bin/python3 tests/python/disk_search_e2e_test.py --quiverd build/quiverd --proto proto
"""

import math
import os
import random
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quiver_e2e_test as base  # noqa: E402  (stub generation and the Server class)

DIM = 48
N = 3000
K = 10
NQ = 40
# (collection, index kind, storage, metric)
FIELDS = [("ivf_disk_l2", "IVF_SQ8", "DISK", "L2"),
          ("ivf_mem_l2", "IVF_SQ8", "MEMORY", "L2"),
          ("ivf_disk_cos", "IVF_SQ8", "DISK", "COSINE"),
          ("hnsw_disk_l2", "HNSW_SQ8", "DISK", "L2"),
          ("hnsw_disk_cos", "HNSW_SQ8", "DISK", "COSINE")]


def setUpModule():
    base.setUpModule()


def clustered(rng, n):
    """n points around 30 centres: neighbours that an index must find."""
    centres = [[rng.gauss(0, 4) for _ in range(DIM)] for _ in range(30)]
    pts = []
    for i in range(n):
        c = centres[i % len(centres)]
        pts.append([base.f32(x + rng.gauss(0, 1)) for x in c])
    return pts


class DiskSearchTest(base.QuiverTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="quiver_py_disk_")
        cls.server = base.Server(os.path.join(cls.tmp, "data"),
                                 ["--segment-max-rows", "1000", "--seal-idle-ms", "200",
                                  "--merge-target-mb", "0"])
        cls.server.start()
        rng = random.Random(11)
        cls.vectors = clustered(rng, N)
        cls.bucket = [rng.randint(0, 9) for _ in range(N)]
        cls.queries = [[base.f32(x + rng.gauss(0, 1)) for x in cls.vectors[rng.randrange(N)]]
                       for _ in range(NQ)]
        for name, kind, storage, metric in FIELDS:
            s = base.pb.CollectionSchema()
            f = s.vectors.add(name="v", dim=DIM, metric=getattr(base.pb, metric))
            f.index.type = kind
            f.storage = getattr(base.pb, storage)
            s.attributes.add(name="b", type=base.pb.INT64, indexed=True)
            cls.server.collections.CreateCollection(
                base.coll_pb.CreateCollectionRequest(name=name, schema=s),
                timeout=base.RPC_TIMEOUT)
            pts = [base.make_point("p%d" % i, {"v": v}, {"b": cls.bucket[i]})
                   for i, v in enumerate(cls.vectors)]
            for at in range(0, N, 500):
                cls.server.points.UpsertPoints(
                    base.pts_pb.UpsertPointsRequest(collection=name, points=pts[at:at + 500]),
                    timeout=base.RPC_TIMEOUT)
        for name, _, _, _ in FIELDS:
            base.wait_indexed(cls.server, name, min_segments=3, sealed_only=True)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def request(self, name, queries, refine, flt="", explain=False):
        req = base.srch_pb.SearchRequest(collection=name, field="v", k=K, filter=flt,
                                         explain=explain)
        req.params.refine_factor = refine
        for q in queries:
            req.vectors.add(values=q)
        return self.server.search.Search(req, timeout=base.RPC_TIMEOUT)

    def truth(self, metric, query, pred=None):
        ids = [i for i in range(N) if pred is None or pred(self.bucket[i])]
        if metric == "L2":
            key = lambda i: base.l2sqr(self.vectors[i], query)  # noqa: E731
        else:
            key = lambda i: -base.cosine(self.vectors[i], query)  # noqa: E731
        return ["p%d" % i for i in sorted(ids, key=key)[:K]]

    def test_recall_after_the_rerank(self):
        for name, kind, storage, metric in FIELDS:
            with self.subTest(collection=name):
                results = self.request(name, self.queries, 4).results
                found = sum(len({h.id for h in r.hits} & set(self.truth(metric, q)))
                            for r, q in zip(results, self.queries))
                recall = found / (K * NQ)
                self.assertGreaterEqual(recall, 0.95, "%s %s %s %s" % (kind, storage, metric,
                                                                       recall))
                # Scores are exact after the rerank: the reference's own.
                r, q = results[0], self.queries[0]
                for h in r.hits:
                    v = self.vectors[int(h.id[1:])]
                    want = base.l2sqr(v, q) if metric == "L2" else base.cosine(v, q)
                    self.assertTrue(base.close(h.score, want, rel=1e-3, abs_tol=1e-3),
                                    "%s: %s %s vs %s" % (name, h.id, h.score, want))

    def answers(self, name, refine, flt):
        return [[(h.id, h.score) for h in r.hits]
                for r in self.request(name, self.queries, refine, flt).results]

    def test_a_batch_answers_as_its_queries_alone(self):
        for name, _, storage, _ in FIELDS:
            for refine in (1, 4):
                for flt in ("", "b < 5"):
                    with self.subTest(collection=name, refine=refine, filter=flt):
                        resp = self.request(name, self.queries, refine, flt, explain=True)
                        batch = [[(h.id, h.score) for h in r.hits] for r in resp.results]
                        for i, q in enumerate(self.queries):
                            alone = self.request(name, [q], refine, flt).results[0]
                            self.assertEqual([h for h, _ in batch[i]],
                                             [h.id for h in alone.hits], "query %d" % i)
                            # Where the planner scans a filtered segment
                            # exactly (PRE_FILTER), a batch's distances come
                            # from one matrix product, a query's alone from
                            # dot products: they may differ in rounding.
                            for (_, got), h in zip(batch[i], alone.hits):
                                self.assertTrue(base.close(got, h.score, rel=1e-4, abs_tol=1e-5),
                                                "query %d: %s vs %s" % (i, got, h.score))
                        if storage != "DISK":
                            continue
                        # Chunks of about 64 records, at most 8 a segment:
                        # each segment that reranks from its table reads 40
                        # queries' candidates in ceil(40 / chunk) batches.
                        counts = [int(m) for m in re.findall(r" in (\d+) batches\)",
                                                             resp.explain.text)]
                        reranked = resp.explain.text.count("from rerank table")
                        self.assertEqual(len(counts), reranked, resp.explain.text)
                        if not flt:
                            self.assertEqual(reranked, 3, resp.explain.text)
                        chunk = max(1, 64 // (K * refine), math.ceil(NQ / 8))
                        want = math.ceil(NQ / chunk)
                        self.assertTrue(all(c == want for c in counts), (counts, want))

    def test_zz_same_answers_after_kill_9(self):
        before = {(name, refine): self.answers(name, refine, "")
                  for name, _, _, _ in FIELDS for refine in (1, 4)}
        self.server.kill()
        self.server.start()
        for name, _, _, _ in FIELDS:
            base.wait_indexed(self.server, name, min_segments=3, sealed_only=True)
        for (name, refine), want in before.items():
            with self.subTest(collection=name, refine=refine):
                self.assertEqual(self.answers(name, refine, ""), want)


if __name__ == "__main__":
    unittest.main(argv=base._parse_own_args(sys.argv))
