#!/usr/bin/python3
"""Cheap requests next to expensive ones, and cancelled work, measured from
outside with a client built from proto/ alone.

Starts its own quiverd (temporary data dir, loopback port), loads --rows
points with two unindexed attributes, then:

  1. baseline: latency of a plain CountPoints (no filter) on an idle server;
  2. starvation: --heavy concurrent searches, each with a filter of about
     --filter-bytes bytes of OR/AND, and CountPoints / GetPoints issued while
     they run: their latencies, and how long each heavy search took;
  3. cancellation: one heavy search with a short deadline (--cancel-after);
     (--variant: or-eq `n = 1 OR n = 2 ...`, or-and `(n = 1 AND s != "v1") OR
     ...`, or-range `(n < -1 AND s != "v1") OR ...`, which nothing speeds up)
     how long the server keeps using CPU after the client got its
     DEADLINE_EXCEEDED (quiverd's utime+stime from /proc, sampled).

Usage:
  /usr/bin/python3 bench/overload_repro.py --quiverd build/quiverd --proto proto
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
import quiver_e2e_test as qt  # noqa: E402  (stub generation, free ports)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def heavy_filter(nbytes, variant):
    """An OR of many small conditions, about nbytes long."""
    parts, size, i = [], 0, 0
    while size < nbytes:
        if variant == "or-eq":
            p = "n = %d" % (1000000 + i)
        elif variant == "or-and":  # equalities on n, each AND-ed with a string test
            p = '(n = %d AND s != "v%d")' % (1000000 + i, i)
        else:  # "or-range": no equality to merge or dispatch on
            p = '(n < %d AND s != "v%d")' % (-1 - i, i)
        parts.append(p)
        size += len(p) + 4
        i += 1
    return " OR ".join(parts)


def peak_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return -1


def big_response(args, proc, pb, coll_pb, colls, pts_pb, points, srch_pb, search):
    dim = 65536
    s = pb.CollectionSchema()
    s.vectors.add(name="v", dim=dim, metric=pb.L2)
    colls.CreateCollection(coll_pb.CreateCollectionRequest(name="big", schema=s), timeout=30)
    for first in range(0, 200, 40):
        req = pts_pb.UpsertPointsRequest(collection="big")
        for i in range(first, first + 40):
            p = req.points.add(id="b%d" % i)
            p.vectors["v"].values.extend([float(i % 7)] * dim)
        points.UpsertPoints(req, timeout=120)
    rss0 = peak_rss(proc.pid)
    req = srch_pb.SearchRequest(collection="big", k=200, with_vectors=True)
    for q in range(32):
        req.vectors.add(values=[float(q % 5)] * dim)
    t = time.monotonic()
    try:
        search.Search(req, timeout=300)
        outcome = "OK"
    except grpc.RpcError as e:
        outcome = "%s: %s" % (e.code().name, e.details())
    print("32 x 65536-dim queries, k=200, with_vectors (request %d bytes): %.2fs, %s"
          % (req.ByteSize(), time.monotonic() - t, outcome))
    print("quiverd peak RSS: %.0f MB before, %.0f MB after"
          % (rss0 / 1e6, peak_rss(proc.pid) / 1e6))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quiverd", required=True)
    ap.add_argument("--proto", required=True)
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--heavy", type=int, default=4)
    ap.add_argument("--filter-bytes", type=int, default=65000)
    ap.add_argument("--variant", default="or-and", choices=["or-eq", "or-and", "or-range"])
    ap.add_argument("--cancel-after", type=float, default=1.0)
    ap.add_argument("--heavy-timeout", type=float, default=120.0)
    ap.add_argument("--big-response", action="store_true",
                    help="instead: 32 queries of 65,536 dims, k=200, with_vectors (an 8 MB "
                         "request for a 1.68 GB response); the status and quiverd's peak RSS")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="quiver_overload_")
    # The stubs and the free port come from the Python client test's helpers
    # (one copy of the stub generation for tests and benchmarks).
    qt.QUIVERD, qt.PROTO_DIR = args.quiverd, args.proto
    qt.setUpModule()
    pb, coll_pb, coll_grpc = qt.pb, qt.coll_pb, qt.coll_grpc
    pts_pb, pts_grpc, srch_pb, srch_grpc = qt.pts_pb, qt.pts_grpc, qt.srch_pb, qt.srch_grpc
    port = qt._free_port()
    log = open(os.path.join(tmp, "quiverd.log"), "wb")
    proc = subprocess.Popen([args.quiverd, "--listen", "127.0.0.1:%d" % port, "--data-dir",
                             os.path.join(tmp, "data"), "--durability", "async",
                             "--log-level", "warn"], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        ch = grpc.insecure_channel("127.0.0.1:%d" % port,
                                   options=[("grpc.max_send_message_length", 1 << 26)])
        colls = coll_grpc.CollectionServiceStub(ch)
        points = pts_grpc.PointServiceStub(ch)
        search = srch_grpc.SearchServiceStub(ch)

        if args.big_response:
            big_response(args, proc, pb, coll_pb, colls, pts_pb, points, srch_pb, search)
            return

        s = pb.CollectionSchema()
        s.vectors.add(name="v", dim=8, metric=pb.L2)
        s.attributes.add(name="n", type=pb.INT64)
        s.attributes.add(name="s", type=pb.STRING)
        colls.CreateCollection(coll_pb.CreateCollectionRequest(name="c", schema=s), timeout=30)
        t0 = time.monotonic()
        batch = 5000
        for first in range(0, args.rows, batch):
            req = pts_pb.UpsertPointsRequest(collection="c")
            for i in range(first, min(args.rows, first + batch)):
                p = req.points.add(id="p%d" % i)
                p.vectors["v"].values.extend([float((i * 7 + d) % 13) for d in range(8)])
                p.attributes["n"].int_value = i
                p.attributes["s"].string_value = "v%d" % (i % 100)
            points.UpsertPoints(req, timeout=60)
        print("loaded %d rows in %.1fs" % (args.rows, time.monotonic() - t0))

        def count_latency():
            t = time.monotonic()
            n = points.CountPoints(pts_pb.CountPointsRequest(collection="c"), timeout=120).count
            assert n == args.rows, n
            return time.monotonic() - t

        def get_latency():
            t = time.monotonic()
            points.GetPoints(pts_pb.GetPointsRequest(collection="c", ids=["p1", "p2"]), timeout=120)
            return time.monotonic() - t

        base = sorted(count_latency() for _ in range(20))
        print("idle: CountPoints median %.1f ms" % (base[10] * 1000))

        flt = heavy_filter(args.filter_bytes, args.variant)
        print("filter: %d bytes (%s)" % (len(flt), args.variant))

        def heavy_req():
            r = srch_pb.SearchRequest(collection="c", k=10, filter=flt)
            r.vectors.add(values=[1.0] * 8)
            return r

        # One heavy search alone: its CPU cost.
        cpu0, t = cpu_seconds(proc.pid), time.monotonic()
        search.Search(heavy_req(), timeout=args.heavy_timeout)
        print("one heavy search alone: %.2fs wall, %.2fs server CPU"
              % (time.monotonic() - t, cpu_seconds(proc.pid) - cpu0))

        # Starvation.
        heavy_times, heavy_errors = [], []

        def run_heavy():
            t = time.monotonic()
            try:
                search.Search(heavy_req(), timeout=args.heavy_timeout)
                heavy_times.append(time.monotonic() - t)
            except grpc.RpcError as e:
                heavy_errors.append(e.code().name)

        threads = [threading.Thread(target=run_heavy) for _ in range(args.heavy)]
        for th in threads:
            th.start()
        time.sleep(0.3)  # let them start
        counts = [count_latency() for _ in range(3)]
        gets = [get_latency() for _ in range(3)]
        for th in threads:
            th.join()
        print("during %d heavy searches: CountPoints %s ms, GetPoints %s ms"
              % (args.heavy, ", ".join("%.1f" % (c * 1000) for c in counts),
                 ", ".join("%.1f" % (g * 1000) for g in gets)))
        print("heavy searches: %s s%s" % (", ".join("%.2f" % h for h in sorted(heavy_times)),
                                          ("; errors " + ",".join(heavy_errors))
                                          if heavy_errors else ""))

        # Cancellation by deadline: CPU the server burns after the client gave up.
        time.sleep(0.5)
        cpu_before = cpu_seconds(proc.pid)
        t = time.monotonic()
        code = "OK"
        try:
            search.Search(heavy_req(), timeout=args.cancel_after)
        except grpc.RpcError as e:
            code = e.code().name
        gave_up = time.monotonic()
        cpu_at = cpu_seconds(proc.pid)
        last_busy = gave_up
        prev = cpu_at
        while time.monotonic() - gave_up < 15:
            time.sleep(0.1)
            c = cpu_seconds(proc.pid)
            if c - prev > 0.03:  # more than 30% of a core in this 100 ms
                last_busy = time.monotonic()
            prev = c
            if time.monotonic() - last_busy > 2:
                break
        print("cancelled heavy search (deadline %.1fs): client got %s after %.2fs; server CPU "
              "%.2fs before, %.2fs after it; busy until %.2fs after"
              % (args.cancel_after, code, gave_up - t, cpu_at - cpu_before, prev - cpu_at,
                 last_busy - gave_up))
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
        unittest.case.doModuleCleanups()  # the stub directory


if __name__ == "__main__":
    main()
