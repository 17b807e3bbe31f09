#!/usr/bin/python3
"""Writes the seed corpus of rpc_fuzz (tests/fuzz/rpc_fuzz.cc): valid
requests to every RPC, in the fuzzer's raw form (byte 0: the method's index
in rpc_fuzz.cc's kPaths, byte 1: 0 = the rest is the serialized request,
sent with the unlimited admin key; byte 1 = 3 * KEY: the same with another
key of rpc_fuzz.cc's AuthHeader; RestoreSnapshot's stream is its messages,
each after its length in 2 bytes, little-endian).
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
    SEARCH, HEALTH, NO_SUCH_METHOD, CREATE_SNAPSHOT, LIST_SNAPSHOTS, DELETE_SNAPSHOT, \
    DOWNLOAD_SNAPSHOT, RESTORE_SNAPSHOT, SCROLL_POINTS, UPDATE_POINTS, CREATE_ALIAS, \
    SWITCH_ALIAS, DELETE_ALIAS, LIST_ALIASES = range(24)
# rpc_fuzz.cc's AuthHeader choices.
KEY_ADMIN, KEY_READ, KEY_WRITE_C, KEY_ADMIN_C, KEY_UNKNOWN, KEY_NONE, KEY_BASIC = range(7)


def main():
    gen = tempfile.mkdtemp()
    try:
        protos = ["quiver/v1/types.proto", "quiver/v1/collections.proto",
                  "quiver/v1/points.proto", "quiver/v1/search.proto",
                  "quiver/v1/snapshots.proto"]
        subprocess.check_call(["protoc", "-I", os.path.join(ROOT, "proto"),
                               "--python_out=" + gen] + protos)
        sys.path.insert(0, gen)
        t = importlib.import_module("quiver.v1.types_pb2")
        c = importlib.import_module("quiver.v1.collections_pb2")
        p = importlib.import_module("quiver.v1.points_pb2")
        s = importlib.import_module("quiver.v1.search_pb2")
        n = importlib.import_module("quiver.v1.snapshots_pb2")
        write_all(t, c, p, s, n)
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
    pt.attributes["tx"].string_value = "point %d runs fast" % i
    pt.sparse_vectors["sp"].indices.extend([i, 1000 + i])
    pt.sparse_vectors["sp"].values.extend([1.0, 0.5])
    return pt


def stream(*messages):
    """RestoreSnapshot's client stream in the fuzzer's raw form."""
    out = b""
    for m in messages:
        data = m.SerializeToString()
        out += bytes([len(data) & 0xff, len(data) >> 8]) + data
    return RawMessage(out)


def write_all(t, c, p, s, n):
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
    seeds.append((UPDATE, "update_attributes", c.UpdateCollectionRequest(
        name="c", attributes=[t.AttributeField(name="z", type=t.STRING, indexed=True),
                              t.AttributeField(name="a", window=True)])))
    seeds.append((VERIFY, "verify", c.VerifyCollectionRequest(name="c", index_samples=5, seed=3)))
    seeds.append((UPSERT, "upsert", p.UpsertPointsRequest(
        collection="c", points=[point(t, 200), point(t, 3)])))
    seeds.append((GET_POINTS, "get_points", p.GetPointsRequest(
        collection="c", ids=["p1", "p2", "nope"], with_vectors=True, attributes=["a", "e"])))
    seeds.append((DELETE, "delete_ids", p.DeletePointsRequest(collection="c", ids=["p5", "p6"])))
    seeds.append((DELETE, "delete_filter", p.DeletePointsRequest(
        collection="c", filter='a = 3 AND e CONTAINS "t1"')))
    seeds.append((COUNT, "count", p.CountPointsRequest(collection="c", filter="b < 10 OR c")))
    seeds.append((SCROLL_POINTS, "scroll", p.ScrollPointsRequest(
        collection="c", filter="a < 5", page_size=3, with_vectors=True, attributes=["a", "s"])))
    upd = p.PointUpdate(id="p1", remove_attributes=["e"])
    upd.set_attributes["a"].int_value = 42
    upd.vectors["v"].values.extend([0.5, 1.5, 2.5, 3.5])
    seeds.append((UPDATE_POINTS, "update_points", p.UpdatePointsRequest(
        collection="c", updates=[upd, p.PointUpdate(id="p2", remove_attributes=["b"])])))
    seeds.append((CREATE_ALIAS, "alias_create", c.CreateAliasRequest(alias="al", collection="c")))
    seeds.append((SWITCH_ALIAS, "alias_switch", c.SwitchAliasRequest(alias="al", collection="c")))
    seeds.append((DELETE_ALIAS, "alias_delete", c.DeleteAliasRequest(alias="al")))
    seeds.append((LIST_ALIASES, "alias_list", c.ListAliasesRequest(collection="c")))
    q = t.Vector(values=[1.0, 2.0, 3.0, 4.0])
    seeds.append((SEARCH, "search", s.SearchRequest(
        collection="c", field="v", vectors=[q], k=5, filter="a IN (1, 2, 3)",
        output_attributes=["*"], with_vectors=True, explain=True,
        params=s.SearchParams(ef=32, filter_strategy=s.POST_FILTER))))
    seeds.append((SEARCH, "search_diversity", s.SearchRequest(
        collection="c", field="v", vectors=[q, q], k=3, filter="a < 9", explain=True,
        diversity=s.Diversity(**{"lambda": 0.4, "fetch_k": 12}))))
    seeds.append((SEARCH, "search_target_recall", s.SearchRequest(
        collection="c", field="v", vectors=[q, q], k=4, filter="a < 5", explain=True,
        params=s.SearchParams(target_recall=0.95))))
    seeds.append((SEARCH, "search_exact", s.SearchRequest(
        collection="c", field="d", vectors=[t.Vector(values=[1.0] * 8)], k=3,
        params=s.SearchParams(exact=True))))
    sq = t.SparseVector(indices=[3, 1003, 7], values=[1.0, 2.0, 0.5])
    seeds.append((SEARCH, "search_sparse", s.SearchRequest(
        collection="c", field="sp", sparse_vectors=[sq, sq], k=5, filter="a < 7",
        explain=True, with_vectors=True)))
    seeds.append((SEARCH, "search_text", s.SearchRequest(
        collection="c", field="tx", texts=["running points", "number 4"], k=5,
        output_attributes=["tx"], explain=True)))
    seeds.append((SEARCH, "search_hybrid_terms", s.SearchRequest(
        collection="c", k=4, fusion=s.DBSF, with_field_results=True,
        field_queries=[s.FieldQuery(field="sp", sparse_vector=sq, k=6),
                       s.FieldQuery(field="tx", text="runs"),
                       s.FieldQuery(field="v", vector=q)])))
    seeds.append((SEARCH, "search_multi_stage", s.SearchRequest(
        collection="c", k=3, candidates=8, explain=True,
        field_queries=[s.FieldQuery(field="tx", text="running points", k=10),
                       s.FieldQuery(field="v", vector=q, k=10)],
        stages=[s.SearchStage(field="sp", sparse_vector=sq, limit=5),
                s.SearchStage(field="d", vector=t.Vector(values=[2.0] * 8))])))
    seeds.append((SEARCH, "search_hybrid", s.SearchRequest(
        collection="c", k=4, fusion=s.WEIGHTED, with_field_results=True,
        field_queries=[s.FieldQuery(field="v", vector=q, k=6, weight=2.0),
                       s.FieldQuery(field="d", vector=t.Vector(values=[2.0] * 8))])))
    # grpc.health.v1.HealthCheckRequest{service: "quiver.v1.SearchService"}, by
    # hand: its Python module would clash with grpcio's `grpc` package.
    seeds.append((HEALTH, "health", RawMessage(b"\x0a\x17quiver.v1.SearchService")))
    seeds.append((CREATE_SNAPSHOT, "snapshot_create", n.CreateSnapshotRequest(
        collection="c", name="s1")))
    seeds.append((CREATE_SNAPSHOT, "snapshot_create_all", n.CreateSnapshotRequest()))
    seeds.append((LIST_SNAPSHOTS, "snapshot_list", n.ListSnapshotsRequest()))
    seeds.append((DELETE_SNAPSHOT, "snapshot_delete", n.DeleteSnapshotRequest(name="s1")))
    seeds.append((DOWNLOAD_SNAPSHOT, "snapshot_download",
                  n.DownloadSnapshotRequest(name="base")))
    seeds.append((RESTORE_SNAPSHOT, "snapshot_restore", stream(
        n.RestoreSnapshotRequest(snapshot="base", new_collection="r1"))))
    seeds.append((RESTORE_SNAPSHOT, "snapshot_restore_bad_upload", stream(
        n.RestoreSnapshotRequest(new_collection="r2", chunk=b"QVSNAP01"),
        n.RestoreSnapshotRequest(chunk=b"QVFL\x03\x00\x00\x00"))))
    # Other keys: a read key searching and upserting (refused), a write key
    # limited to "c", an admin key limited to "c" snapshotting everything
    # (refused), an unknown key, no key, a Basic header.
    keyed = [
        (SEARCH, KEY_READ, "key_read_search", s.SearchRequest(
            collection="c", field="v", vectors=[q], k=3)),
        (UPSERT, KEY_READ, "key_read_upsert", p.UpsertPointsRequest(
            collection="c", points=[point(t, 7)])),
        (UPSERT, KEY_WRITE_C, "key_write_c_upsert", p.UpsertPointsRequest(
            collection="c", points=[point(t, 8)])),
        (LIST, KEY_WRITE_C, "key_write_c_list", c.ListCollectionsRequest()),
        (CREATE_ALIAS, KEY_ADMIN_C, "key_admin_c_alias", c.CreateAliasRequest(
            alias="n1", collection="c")),
        (CREATE_SNAPSHOT, KEY_ADMIN_C, "key_admin_c_snapshot", n.CreateSnapshotRequest()),
        (GET_COLLECTION, KEY_UNKNOWN, "key_unknown_get", c.GetCollectionRequest(name="c")),
        (LIST_SNAPSHOTS, KEY_NONE, "key_none_list_snapshots", n.ListSnapshotsRequest()),
        (DROP, KEY_BASIC, "key_basic_drop", c.DropCollectionRequest(name="c")),
    ]
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    for method, name, msg in seeds:
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(bytes([method, 0]) + msg.SerializeToString())
    for method, key, name, msg in keyed:
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(bytes([method, 3 * key]) + msg.SerializeToString())
    print("wrote %d seeds to %s" % (len(seeds) + len(keyed), OUT))


if __name__ == "__main__":
    main()
