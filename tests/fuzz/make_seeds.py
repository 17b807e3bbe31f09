#!/usr/bin/python3
"""Writes the seed corpus of rpc_fuzz (tests/fuzz/rpc_fuzz.cc): valid
requests to every RPC, in the fuzzer's raw form (byte 0: the method's index
in rpc_fuzz.cc's kPaths, byte 1: 0 = the rest is the serialized request).
They name the collection "c" and the fields and attributes the fuzzer's
server creates, so they get past validation.

    /usr/bin/python3 tests/fuzz/make_seeds.py   # rewrites tests/fuzz/rpc_fuzz_corpus/

Needs protoc and python3-protobuf (Debian)."""
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fuzz", "rpc_fuzz_corpus")

# The order of rpc_fuzz.cc's Method enum.
CREATE, GET_COLLECTION, LIST, DROP, UPDATE, VERIFY, UPSERT, GET_POINTS, DELETE, COUNT, \
    SEARCH, HEALTH = range(12)


def main():
    gen = tempfile.mkdtemp()
    try:
        protos = ["quiver/v1/types.proto", "quiver/v1/collections.proto",
                  "quiver/v1/points.proto", "quiver/v1/search.proto"]
        subprocess.check_call(["protoc", "-I", os.path.join(ROOT, "proto"),
                               "--python_out=" + gen] + protos)
        sys.path.insert(0, gen)
        t = importlib.import_module("quiver.v1.types_pb2")
        c = importlib.import_module("quiver.v1.collections_pb2")
        p = importlib.import_module("quiver.v1.points_pb2")
        s = importlib.import_module("quiver.v1.search_pb2")
        write_all(t, c, p, s)
    finally:
        shutil.rmtree(gen)


class RawMessage:
    def __init__(self, data):
        self.data = data

    def SerializeToString(self):
        return self.data


def point(t, i):
    pt = t.Point(id="p%d" % i)
    pt.vectors["v"].values.extend([float((i * 7 + j) % 11) for j in range(4)])
    pt.vectors["d"].values.extend([float((i + j) % 5 + 1) for j in range(8)])
    pt.attributes["a"].int_value = i % 10
    pt.attributes["b"].double_value = i * 0.5
    pt.attributes["c"].bool_value = i % 2 == 0
    pt.attributes["s"].string_value = "s%d" % (i % 3)
    pt.attributes["e"].string_list_value.values.append("t%d" % (i % 4))
    return pt


def write_all(t, c, p, s):
    seeds = []
    schema = t.CollectionSchema(
        vectors=[t.VectorField(name="v", dim=4, metric=t.L2, index=t.IndexSpec(type="HNSW")),
                 t.VectorField(name="w", dim=3, metric=t.COSINE,
                               index=t.IndexSpec(type="IVF_SQ8", params={"nlist": "4"}),
                               storage=t.DISK)],
        attributes=[t.AttributeField(name="a", type=t.INT64, indexed=True),
                    t.AttributeField(name="ts", type=t.INT64, window=True),
                    t.AttributeField(name="tags", type=t.STRING_LIST)])
    seeds.append((CREATE, "create", c.CreateCollectionRequest(name="n1", schema=schema)))
    mv = t.VectorField(name="m", dim=4, metric=t.IP, index=t.IndexSpec(type="HNSW"),
                       multi_vector=t.MultiVectorOptions(max_vectors_per_point=8))
    seeds.append((CREATE, "create_multi", c.CreateCollectionRequest(
        name="n2", schema=t.CollectionSchema(vectors=[mv]))))
    seeds.append((GET_COLLECTION, "get_collection", c.GetCollectionRequest(name="c")))
    seeds.append((LIST, "list", c.ListCollectionsRequest()))
    seeds.append((DROP, "drop", c.DropCollectionRequest(name="n1")))
    seeds.append((UPDATE, "update", c.UpdateCollectionRequest(
        name="c", vectors=[c.VectorFieldUpdate(field="v", index=t.IndexSpec(
            type="IVF_FLAT", params={"nlist": "2"}))])))
    seeds.append((VERIFY, "verify", c.VerifyCollectionRequest(name="c", index_samples=5, seed=3)))
    seeds.append((UPSERT, "upsert", p.UpsertPointsRequest(
        collection="c", points=[point(t, 200), point(t, 3)])))
    seeds.append((GET_POINTS, "get_points", p.GetPointsRequest(
        collection="c", ids=["p1", "p2", "nope"], with_vectors=True, attributes=["a", "e"])))
    seeds.append((DELETE, "delete_ids", p.DeletePointsRequest(collection="c", ids=["p5", "p6"])))
    seeds.append((DELETE, "delete_filter", p.DeletePointsRequest(
        collection="c", filter='a = 3 AND e CONTAINS "t1"')))
    seeds.append((COUNT, "count", p.CountPointsRequest(collection="c", filter="b < 10 OR c")))
    q = t.Vector(values=[1.0, 2.0, 3.0, 4.0])
    seeds.append((SEARCH, "search", s.SearchRequest(
        collection="c", field="v", vectors=[q], k=5, filter="a IN (1, 2, 3)",
        output_attributes=["*"], with_vectors=True, explain=True,
        params=s.SearchParams(ef=32, filter_strategy=s.POST_FILTER))))
    seeds.append((SEARCH, "search_exact", s.SearchRequest(
        collection="c", field="d", vectors=[t.Vector(values=[1.0] * 8)], k=3,
        params=s.SearchParams(exact=True))))
    seeds.append((SEARCH, "search_hybrid", s.SearchRequest(
        collection="c", k=4, fusion=s.WEIGHTED, with_field_results=True,
        field_queries=[s.FieldQuery(field="v", vector=q, k=6, weight=2.0),
                       s.FieldQuery(field="d", vector=t.Vector(values=[2.0] * 8))])))
    # grpc.health.v1.HealthCheckRequest{service: "quiver.v1.SearchService"}, by
    # hand: its Python module would clash with grpcio's `grpc` package.
    seeds.append((HEALTH, "health", RawMessage(b"\x0a\x17quiver.v1.SearchService")))
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    for method, name, msg in seeds:
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(bytes([method, 0]) + msg.SerializeToString())
    print("wrote %d seeds to %s" % (len(seeds), OUT))


if __name__ == "__main__":
    main()
