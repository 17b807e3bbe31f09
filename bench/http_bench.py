#!/usr/bin/python3
"""http_bench: what the HTTP/JSON endpoint (--http-listen) costs a search,
against gRPC, in the same run.

One quiverd serves both. Fashion-MNIST: the first --base training images
(784-d, L2, HNSW), upserted and indexed; the first --queries
test images as queries, k = 10. Rounds alternate the order of the two
transports; in each, every query is sent once over gRPC and once over HTTP,
by one client thread, with the requests serialized beforehand and the
responses read as bytes (not parsed), so the client does the same small work
for both and the difference is transport plus the gateway (JSON parse, an
in-process gRPC call, JSON print). Reports QPS, latency and quiverd's CPU
time per search (from /proc, 10 ms ticks: read the mean over many rounds).

Usage:
  bench/http_bench.py --quiverd build/quiverd --proto proto [--base 20000] [--queries 500] [--rounds 10] [--json out.json]
"""
import argparse
import glob
import gzip
import http.client
import importlib
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import grpc

DATA = "/usr/share/datasets/fashion-mnist"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def idx_images(path, n):
    with gzip.open(path, "rb") as f:
        magic, count, rows, cols = struct.unpack(">IIII", f.read(16))
        dim = rows * cols
        data = f.read(dim * min(n, count))
    return [[float(b) for b in data[i * dim:(i + 1) * dim]] for i in range(len(data) // dim)]


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quiverd", required=True)
    ap.add_argument("--proto", required=True)
    ap.add_argument("--base", type=int, default=20000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--json", default="")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="quiver_http_bench_")
    proc = None
    try:
        stubs = os.path.join(tmp, "stubs")
        os.makedirs(stubs)
        subprocess.run(["protoc", "-I" + args.proto, "--python_out=" + stubs] +
                       glob.glob(os.path.join(args.proto, "quiver", "v1", "*.proto")), check=True)
        sys.path.insert(0, stubs)
        search_pb2 = importlib.import_module("quiver.v1.search_pb2")

        port, http_port = free_port(), free_port()
        addr = "127.0.0.1:%d" % port
        log = open(os.path.join(tmp, "quiverd.log"), "wb")
        proc = subprocess.Popen([args.quiverd, "--listen", addr, "--http-listen",
                                 "127.0.0.1:%d" % http_port, "--data-dir", os.path.join(tmp, "data"),
                                 "--log-level", "warn", "--recall-audit-rate", "0"],
                                stdout=log, stderr=subprocess.STDOUT)
        channel = grpc.insecure_channel(addr, options=[
            ("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)])
        grpc.channel_ready_future(channel).result(timeout=30)
        types_pb2 = importlib.import_module("quiver.v1.types_pb2")
        coll = importlib.import_module("quiver.v1.collections_pb2")
        pts = importlib.import_module("quiver.v1.points_pb2")
        rpc = lambda name, resp: channel.unary_unary(
            name, request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=resp.FromString)
        schema = types_pb2.CollectionSchema()
        f = schema.vectors.add(name="pixels", dim=784, metric=types_pb2.L2)
        f.index.type = "HNSW"
        rpc("/quiver.v1.CollectionService/CreateCollection", coll.CreateCollectionResponse)(
            coll.CreateCollectionRequest(name="fm", schema=schema), timeout=60)
        base = idx_images(os.path.join(DATA, "train-images-idx3-ubyte.gz"), args.base)
        upsert = rpc("/quiver.v1.PointService/UpsertPoints", pts.UpsertPointsResponse)
        for start in range(0, len(base), 1000):
            req = pts.UpsertPointsRequest(collection="fm")
            for i in range(start, min(len(base), start + 1000)):
                req.points.add(id="img-%d" % i).vectors["pixels"].values.extend(base[i])
            upsert(req, timeout=600)
        describe = rpc("/quiver.v1.CollectionService/GetCollection", coll.GetCollectionResponse)
        while True:  # until every segment is indexed
            segs = describe(coll.GetCollectionRequest(name="fm"), timeout=60).collection.stats.segments
            if segs and all(s.state == s.INDEXED for s in segs):
                break
            time.sleep(1)

        queries = idx_images(os.path.join(DATA, "t10k-images-idx3-ubyte.gz"), args.queries)
        grpc_bodies, http_bodies = [], []
        for v in queries:
            req = search_pb2.SearchRequest(collection="fm", k=args.k)
            req.vectors.add(values=v)
            grpc_bodies.append(req.SerializeToString())
            http_bodies.append(json.dumps({"vectors": [{"values": v}], "k": args.k}).encode())

        call = channel.unary_unary("/quiver.v1.SearchService/Search")  # bytes in, bytes out
        conn = http.client.HTTPConnection("127.0.0.1", http_port)

        def run_grpc():
            lat = []
            for body in grpc_bodies:
                t = time.perf_counter()
                call(body, timeout=30)
                lat.append(time.perf_counter() - t)
            return lat

        def run_http():
            lat = []
            for body in http_bodies:
                t = time.perf_counter()
                conn.request("POST", "/v1/collections/fm/search", body,
                             {"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    raise RuntimeError("HTTP %d" % resp.status)
                lat.append(time.perf_counter() - t)
            return lat

        run_grpc(), run_http()  # warm up both
        tick = os.sysconf("SC_CLK_TCK")
        stats = {"grpc": [], "http": []}
        load_before = os.getloadavg()
        for r in range(args.rounds):
            order = [("grpc", run_grpc), ("http", run_http)]
            if r % 2:
                order.reverse()
            for name, fn in order:
                c0, t0 = cpu_ticks(proc.pid), time.perf_counter()
                lat = fn()
                wall, cpu = time.perf_counter() - t0, cpu_ticks(proc.pid) - c0
                stats[name].append({"qps": len(lat) / wall, "p50_ms": pct(lat, 0.5) * 1e3,
                                    "p99_ms": pct(lat, 0.99) * 1e3,
                                    "cpu_us": cpu / tick * 1e6 / len(lat)})
        load_after = os.getloadavg()
        conn.close()
        channel.close()
        proc.terminate()
        proc.wait(30)

        g, h = stats["grpc"], stats["http"]
        med = lambda rows, key: statistics.median(x[key] for x in rows)
        mean = lambda rows, key: statistics.mean(x[key] for x in rows)
        ratios = [hh["qps"] / gg["qps"] for gg, hh in zip(g, h)]
        print("http_bench: %d x 784-d Fashion-MNIST, HNSW, k = %d, %d queries x %d rounds, 1 client "
              "thread; load average %.1f before, %.1f after" % (
                  args.base, args.k, len(queries), args.rounds, load_before[0], load_after[0]))
        print()
        print("| transport | QPS (median) | QPS vs gRPC (median of rounds) | p50 ms | p99 ms "
              "| quiverd CPU us/search (mean) | CPU vs gRPC |")
        print("|---|---|---|---|---|---|---|")
        for name, rows, ratio in (("gRPC", g, 1.0), ("HTTP/JSON", h, statistics.median(ratios))):
            print("| %s | %.0f | %.3f | %.2f | %.2f | %.1f | %.3f |" % (
                name, med(rows, "qps"), ratio, med(rows, "p50_ms"), med(rows, "p99_ms"),
                mean(rows, "cpu_us"), mean(rows, "cpu_us") / mean(g, "cpu_us")))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"base": args.base, "queries": len(queries), "k": args.k,
                           "rounds": stats, "load_before": load_before,
                           "load_after": load_after}, f, indent=1)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
