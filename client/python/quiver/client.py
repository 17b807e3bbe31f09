"""quiver.Client: the Quiver API over one gRPC channel.

Each method builds the request message, calls the generated stub through
Client.call (which adds the API key, the timeout and turns grpc.RpcError
into quiver errors), and converts the response: numpy float32 arrays for
vectors, Python values for attributes. Wrapping an RPC added to the API is
a few lines in the same pattern:

    def count(self, collection, filter=""):
        req = points_pb2.CountPointsRequest(collection=collection, filter=filter)
        return self.call(self.stubs.points.CountPoints, req).count

and until then any RPC is callable as
`q.call(q.stubs.points.SomeNewRpc, points_pb2.SomeNewRpcRequest(...))`.
"""
import os
from types import SimpleNamespace
from typing import Any, Callable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import grpc
import numpy as np

from quiver import convert
from quiver.convert import Hit, Point, set_fields
from quiver.errors import from_rpc_error
from quiver.v1 import (collections_pb2, collections_pb2_grpc, points_pb2, points_pb2_grpc,
                       search_pb2, search_pb2_grpc, snapshots_pb2, snapshots_pb2_grpc,
                       types_pb2)

DEFAULT_ADDRESS = "127.0.0.1:50051"

# A vector field: (dim, metric) or (dim, metric, index), a dict of
# VectorField's fields (plus "index" as a kind name and "params"), or the
# message itself.
VectorSpec = Union[Tuple, Mapping[str, Any], types_pb2.VectorField]
# An attribute: its type name ("int64", "double", "bool", "string",
# "string_list"), a dict of AttributeField's fields, or the message.
AttributeSpec = Union[str, Mapping[str, Any], types_pb2.AttributeField]


def _read(path_or_bytes: Union[None, str, bytes]) -> Optional[bytes]:
    if path_or_bytes is None or isinstance(path_or_bytes, bytes):
        return path_or_bytes
    with open(path_or_bytes, "rb") as f:
        return f.read()


def _named_copy(msg, name: str):
    out = type(msg)()
    out.CopyFrom(msg)
    out.name = name
    return out


def _sparse_field(spec: Union[str, Tuple[str, str]]) -> types_pb2.SparseVectorField:
    """A sparse field from its name, or (name, modifier) with modifier
    "idf" or "none"."""
    if isinstance(spec, str):
        return types_pb2.SparseVectorField(name=spec)
    name, modifier = spec
    kind = {"idf": types_pb2.IDF, "none": types_pb2.SPARSE_MODIFIER_NONE}.get(modifier.lower())
    if kind is None:
        raise ValueError("sparse field %r: modifier must be \"idf\" or \"none\", got %r"
                         % (name, modifier))
    return types_pb2.SparseVectorField(name=name, modifier=kind)


_QUERY_KINDS = ("vector", "multi_vector", "sparse_vector", "text")


def _set_field_query(msg, q: Mapping[str, Any], what: str) -> None:
    """Sets the one query of a FieldQuery or SearchStage from q's "vector",
    "multi_vector", "sparse_vector" or "text"."""
    given = [kind for kind in _QUERY_KINDS if q.get(kind) is not None]
    if len(given) != 1:
        raise ValueError("%s: give exactly one of %s" % (what, ", ".join(_QUERY_KINDS)))
    kind = given[0]
    if kind == "vector":
        msg.vector.CopyFrom(convert.to_vector(np.asarray(q[kind], dtype=np.float32)))
    elif kind == "multi_vector":
        rows = convert.as_matrix(np.asarray(q[kind], dtype=np.float32), what)
        msg.multi_vector.vectors.extend(convert.to_vector(r) for r in rows)
    elif kind == "sparse_vector":
        msg.sparse_vector.CopyFrom(convert.to_sparse(q[kind], what))
    else:
        msg.text = q[kind]


def _vector_field(name: str, spec: VectorSpec) -> types_pb2.VectorField:
    if isinstance(spec, types_pb2.VectorField):
        return _named_copy(spec, name)
    if isinstance(spec, tuple):
        keys = ("dim", "metric", "index")
        spec = dict(zip(keys, spec))
    spec = dict(spec)
    f = types_pb2.VectorField(name=name)
    index = spec.pop("index", None)
    params = spec.pop("params", None)
    if index is not None:
        f.index.type = index
    if params:
        f.index.params.update({k: str(v) for k, v in params.items()})
    set_fields(f, spec, "VectorField")
    return f


def _attribute_field(name: str, spec: AttributeSpec) -> types_pb2.AttributeField:
    if isinstance(spec, types_pb2.AttributeField):
        return _named_copy(spec, name)
    if isinstance(spec, str):
        spec = {"type": spec}
    spec = dict(spec)
    if isinstance(spec.get("type"), str):
        spec["type"] = spec["type"].upper()
    text = spec.pop("text", None)
    f = types_pb2.AttributeField(name=name)
    if text is not None and text is not False:
        # {"text": True} or {"text": {"language": "french", "k1": 1.5, ...}}
        f.text.SetInParent()
        if isinstance(text, Mapping):
            set_fields(f.text, text, "TextOptions")
    set_fields(f, spec, "AttributeField")
    return f


class Client:
    """A connection to quiverd. Use it in a `with` block, or call close().

    address: "host:port"; default $QUIVER_ADDR, else 127.0.0.1:50051.
    api_key: sent as "authorization: Bearer <key>" on every call; default
        $QUIVER_API_KEY (none when unset).
    tls: connect with TLS (the system's CAs unless ca_cert is given);
        implied by ca_cert. ca_cert, client_cert, client_key: PEM file paths
        or bytes (client_cert/client_key for mutual TLS). server_name: the
        name the server's certificate must carry, when not the host.
    timeout: seconds per call (None: no deadline); each method also takes
        timeout=.
    max_message_bytes: largest message sent or received (the server's
        --max-message-bytes default, 64 MiB).
    """

    def __init__(self, address: Optional[str] = None, *, api_key: Optional[str] = None,
                 tls: bool = False, ca_cert: Union[None, str, bytes] = None,
                 client_cert: Union[None, str, bytes] = None,
                 client_key: Union[None, str, bytes] = None, server_name: Optional[str] = None,
                 timeout: Optional[float] = 60.0, max_message_bytes: int = 64 << 20,
                 options: Sequence[Tuple[str, Any]] = ()):
        self.address = address or os.environ.get("QUIVER_ADDR") or DEFAULT_ADDRESS
        if api_key is None:
            api_key = os.environ.get("QUIVER_API_KEY") or None
        self._metadata = (("authorization", "Bearer " + api_key),) if api_key else ()
        self.timeout = timeout
        opts = [("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes)]
        if server_name:
            opts.append(("grpc.ssl_target_name_override", server_name))
        opts.extend(options)
        if tls or ca_cert is not None or client_cert is not None:
            creds = grpc.ssl_channel_credentials(root_certificates=_read(ca_cert),
                                                 private_key=_read(client_key),
                                                 certificate_chain=_read(client_cert))
            self.channel = grpc.secure_channel(self.address, creds, options=opts)
        else:
            self.channel = grpc.insecure_channel(self.address, options=opts)
        # The generated stubs, for RPCs without a wrapper here.
        self.stubs = SimpleNamespace(
            collections=collections_pb2_grpc.CollectionServiceStub(self.channel),
            points=points_pb2_grpc.PointServiceStub(self.channel),
            search=search_pb2_grpc.SearchServiceStub(self.channel),
            snapshots=snapshots_pb2_grpc.SnapshotServiceStub(self.channel))

    # ------------------------------------------------------------ plumbing
    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def call(self, rpc: Callable, request, timeout: Optional[float] = ..., **kwargs):
        """Calls a unary stub method with the key and timeout; raises
        QuiverError subclasses."""
        try:
            return rpc(request, timeout=self.timeout if timeout is ... else timeout,
                       metadata=self._metadata, **kwargs)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    def health(self, service: str = "", timeout: Optional[float] = ...) -> str:
        """The grpc.health.v1 status of `service` ("" for the server, or e.g.
        "quiver.v1.SearchService"): "SERVING", "NOT_SERVING", ..."""
        # Called by name: compiling health.proto for Python would collide with
        # the grpc package's own module path.
        check = self.channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=lambda s: (b"\x0a" + _varint(len(s.encode())) + s.encode()
                                          if s else b""),
            response_deserializer=_health_status)
        return self.call(check, service, timeout=timeout)

    # --------------------------------------------------------- collections
    def create_collection(self, name: str, vectors: Mapping[str, VectorSpec],
                          attributes: Optional[Mapping[str, AttributeSpec]] = None,
                          sparse_vectors: Sequence[Union[str, Tuple[str, str]]] = (),
                          timeout: Optional[float] = ...) -> collections_pb2.CollectionInfo:
        """Creates a collection; returns its CollectionInfo. vectors:
        {"emb": (768, "COSINE", "HNSW")} (may be empty when there are sparse
        fields), attributes: {"price": "double", "tag": {"type": "string",
        "indexed": True}}, sparse_vectors: sparse vector fields, a name or
        (name, "idf") for one whose queries are weighted by IDF."""
        schema = types_pb2.CollectionSchema(
            vectors=[_vector_field(n, s) for n, s in vectors.items()],
            attributes=[_attribute_field(n, s) for n, s in (attributes or {}).items()],
            sparse_vectors=[_sparse_field(n) for n in sparse_vectors])
        req = collections_pb2.CreateCollectionRequest(name=name, schema=schema)
        return self.call(self.stubs.collections.CreateCollection, req, timeout).collection

    def update_collection(self, name: str, *,
                          attributes: Optional[Mapping[str, AttributeSpec]] = None,
                          add_vectors: Optional[Mapping[str, VectorSpec]] = None,
                          drop_vectors: Sequence[str] = (),
                          indexes: Optional[Mapping[str, Any]] = None,
                          add_sparse_vectors: Sequence[Union[str, Tuple[str, str]]] = (),
                          timeout: Optional[float] = ...) -> collections_pb2.CollectionInfo:
        """Changes the schema in one all-or-nothing request; returns the new
        CollectionInfo. attributes: new ones, or existing ones with their
        index flags as they should be ({"tag": {"type": "string",
        "indexed": True}}); add_vectors: new (optional) vector fields, as in
        create_collection; drop_vectors: names of fields to drop; indexes:
        {"emb": "HNSW"} or {"emb": ("IVF_FLAT", {"nlist": 64})}, a field's
        new index; add_sparse_vectors: new sparse vector fields, as in
        create_collection."""
        req = collections_pb2.UpdateCollectionRequest(
            name=name,
            attributes=[_attribute_field(n, s) for n, s in (attributes or {}).items()],
            add_vectors=[_vector_field(n, s) for n, s in (add_vectors or {}).items()],
            drop_vectors=list(drop_vectors),
            add_sparse_vectors=[_sparse_field(n) for n in add_sparse_vectors])
        for field, index in (indexes or {}).items():
            kind, params = (index, {}) if isinstance(index, str) else index
            u = req.vectors.add(field=field)
            u.index.type = kind
            u.index.params.update({k: str(v) for k, v in params.items()})
        return self.call(self.stubs.collections.UpdateCollection, req, timeout).collection

    def get_collection(self, name: str, timeout: Optional[float] = ...):
        """The CollectionInfo message: schema, stats, segments."""
        req = collections_pb2.GetCollectionRequest(name=name)
        return self.call(self.stubs.collections.GetCollection, req, timeout).collection

    def list_collections(self, timeout: Optional[float] = ...) -> List[str]:
        req = collections_pb2.ListCollectionsRequest()
        resp = self.call(self.stubs.collections.ListCollections, req, timeout)
        return [c.name for c in resp.collections]

    def drop_collection(self, name: str, timeout: Optional[float] = ...) -> int:
        """Drops it; returns the write's sequence number."""
        req = collections_pb2.DropCollectionRequest(name=name)
        return self.call(self.stubs.collections.DropCollection, req, timeout).sequence

    # ------------------------------------------------------------- aliases
    # An alias is a second name for a collection: every call taking a
    # collection name takes one, and switch_alias re-points it atomically
    # (swap in a re-built collection). The changes return their sequence.
    def create_alias(self, alias: str, collection: str,
                     timeout: Optional[float] = ...) -> int:
        """Creates alias -> collection; AlreadyExistsError if a collection
        or alias has that name."""
        req = collections_pb2.CreateAliasRequest(alias=alias, collection=collection)
        return self.call(self.stubs.collections.CreateAlias, req, timeout).sequence

    def switch_alias(self, alias: str, collection: str,
                     timeout: Optional[float] = ...) -> int:
        """Points an existing alias at `collection`, atomically;
        NotFoundError if the alias does not exist."""
        req = collections_pb2.SwitchAliasRequest(alias=alias, collection=collection)
        return self.call(self.stubs.collections.SwitchAlias, req, timeout).sequence

    def delete_alias(self, alias: str, timeout: Optional[float] = ...) -> int:
        """Removes the alias (never its collection)."""
        req = collections_pb2.DeleteAliasRequest(alias=alias)
        return self.call(self.stubs.collections.DeleteAlias, req, timeout).sequence

    def list_aliases(self, collection: str = "",
                     timeout: Optional[float] = ...) -> List[Tuple[str, str]]:
        """(alias, collection) pairs sorted by alias; only `collection`'s
        when given."""
        req = collections_pb2.ListAliasesRequest(collection=collection)
        resp = self.call(self.stubs.collections.ListAliases, req, timeout)
        return [(a.alias, a.collection) for a in resp.aliases]

    # -------------------------------------------------------------- points
    def upsert(self, collection: str, ids: Sequence[str], vectors: Mapping[str, Any],
               attributes=None, multi_vectors=None, sparse_vectors=None,
               timeout: Optional[float] = ...) -> int:
        """Writes points in one request (atomically): ids[i] gets row i of
        each field's array (vectors={"emb": array of shape (n, dim)}),
        attributes[i] (a list of dicts, or a dict of columns of n values;
        None leaves a value null) and sparse_vectors[field][i] ({index:
        value} or (indices, values); None: none). Returns the write's
        sequence number."""
        req = points_pb2.UpsertPointsRequest(
            collection=collection,
            points=convert.make_points(ids, vectors, attributes, multi_vectors, sparse_vectors))
        return self.call(self.stubs.points.UpsertPoints, req, timeout).sequence

    def upsert_batches(self, collection: str, ids: Sequence[str], vectors: Mapping[str, Any],
                       attributes=None, batch_size: int = 1000,
                       max_batch_bytes: int = 16 << 20,
                       progress: Optional[Callable[[int, int], None]] = None,
                       timeout: Optional[float] = ...) -> int:
        """Imports many points as a series of upserts of at most batch_size
        points and about max_batch_bytes of vectors each (each batch is
        atomic, the import as a whole is not). progress(done, total) is
        called after each batch. Returns the number of points written."""
        ids = list(ids)
        n = len(ids)
        mats = {k: convert.as_matrix(v, "vectors[%r]" % k) for k, v in vectors.items()}
        rows = convert.attribute_rows(attributes, n)
        row_bytes = max(1, sum(m.shape[1] * 4 for m in mats.values()))
        step = max(1, min(batch_size, max_batch_bytes // row_bytes))
        done = 0
        for start in range(0, n, step):
            end = min(n, start + step)
            self.upsert(collection, ids[start:end], {k: m[start:end] for k, m in mats.items()},
                        rows[start:end], timeout=timeout)
            done = end
            if progress is not None:
                progress(done, n)
        return done

    def get(self, collection: str, ids: Sequence[str], with_vectors: bool = False,
            attributes: Optional[Sequence[str]] = None,
            timeout: Optional[float] = ...) -> List[Point]:
        """The points that exist among ids (missing ids are left out), with
        all their attributes (or those named) and, with_vectors, vectors."""
        req = points_pb2.GetPointsRequest(collection=collection, ids=list(ids),
                                          with_vectors=with_vectors,
                                          attributes=list(attributes or ()))
        resp = self.call(self.stubs.points.GetPoints, req, timeout)
        return [convert.from_point(p) for p in resp.points]

    def delete(self, collection: str, ids: Optional[Sequence[str]] = None, filter: str = "",
               timeout: Optional[float] = ...) -> int:
        """Deletes by ids and/or filter; returns how many points were
        deleted."""
        req = points_pb2.DeletePointsRequest(collection=collection, ids=list(ids or ()),
                                             filter=filter)
        return self.call(self.stubs.points.DeletePoints, req, timeout).deleted_count

    def count(self, collection: str, filter: str = "", timeout: Optional[float] = ...) -> int:
        req = points_pb2.CountPointsRequest(collection=collection, filter=filter)
        return self.call(self.stubs.points.CountPoints, req, timeout).count

    def scroll(self, collection: str, filter: str = "", page_size: int = 0,
               with_vectors: bool = False, attributes: Optional[Sequence[str]] = None,
               timeout: Optional[float] = ...) -> "Iterator[Point]":
        """Every point (matching filter) in id order, fetched page by page
        with ScrollPoints (page_size per call; 0: the server's default). A
        point that exists throughout is returned exactly once, while writes
        go on."""
        cursor = ""
        while True:
            req = points_pb2.ScrollPointsRequest(
                collection=collection, filter=filter, page_size=page_size, cursor=cursor,
                with_vectors=with_vectors, attributes=list(attributes or ()))
            resp = self.call(self.stubs.points.ScrollPoints, req, timeout)
            for p in resp.points:
                yield convert.from_point(p)
            if not resp.next_cursor:
                return
            cursor = resp.next_cursor

    def update(self, collection: str, updates: Sequence[Mapping[str, Any]], upsert: bool = False,
               timeout: Optional[float] = ...) -> Any:
        """Partial updates (UpdatePoints), all applied or none: each update
        is a dict with "id" and any of "set_attributes" (a dict; None
        removes), "remove_attributes", "vectors" (field -> 1-D array),
        "sparse_vectors" (field -> {index: value}) and "remove_vectors"
        (optional and sparse fields). A missing id raises NotFoundError
        unless upsert.
        Returns the response (sequence, updated_count, created_count)."""
        req = points_pb2.UpdatePointsRequest(collection=collection, upsert=upsert)
        for u in updates:
            pu = req.updates.add(id=u["id"])
            for name, value in (u.get("set_attributes") or {}).items():
                pu.set_attributes[name].CopyFrom(
                    types_pb2.Value() if value is None else convert.to_value(value))
            pu.remove_attributes.extend(u.get("remove_attributes") or ())
            for name, vec in (u.get("vectors") or {}).items():
                pu.vectors[name].CopyFrom(convert.to_vector(
                    convert.as_matrix(vec, "vectors[%r]" % name)[0]))
            for name, vec in (u.get("sparse_vectors") or {}).items():
                pu.sparse_vectors[name].CopyFrom(
                    convert.to_sparse(vec, "sparse_vectors[%r]" % name))
            pu.remove_vectors.extend(u.get("remove_vectors") or ())
        return self.call(self.stubs.points.UpdatePoints, req, timeout)

    # -------------------------------------------------------------- search
    def search(self, collection: str, vectors: Any, k: int = 10, *, field: str = "",
               filter: str = "", output_attributes: Sequence[str] = (),
               with_vectors: bool = False, params: Optional[Mapping[str, Any]] = None,
               diversity: Union[None, float, Mapping[str, Any]] = None,
               timeout: Optional[float] = ...,
               **options) -> Union[List[Hit], List[List[Hit]]]:
        """The k nearest points to a query vector (1-D array: returns a list
        of Hits, best first) or to each row of a 2-D array (returns one list
        per row). params: SearchParams fields (ef, nprobe, exact,
        refine_factor, filter_strategy, target_recall: the recall@k to
        reach, in place of ef / nprobe / refine_factor; search_raw returns
        the predicted recall of each list); diversity: re-rank the best
        candidates by maximal marginal relevance, a lambda in [0, 1] or
        {"lambda": 0.5, "fetch_k": 100}; options: any other SearchRequest
        field by name."""
        q = np.asarray(vectors, dtype=np.float32)
        single = q.ndim == 1
        req = search_pb2.SearchRequest(
            collection=collection, field=field, k=k, filter=filter,
            output_attributes=list(output_attributes), with_vectors=with_vectors,
            vectors=[convert.to_vector(r) for r in convert.as_matrix(q, "vectors")])
        if params:
            set_fields(req.params, params, "SearchParams")
        if diversity is not None:
            req.diversity.SetInParent()
            set_fields(req.diversity, diversity if isinstance(diversity, Mapping)
                       else {"lambda": float(diversity)}, "Diversity")
        set_fields(req, options, "SearchRequest")
        resp = self.search_raw(req, timeout=timeout)
        lists = [[convert.from_hit(h) for h in r.hits] for r in resp.results]
        return lists[0] if single else lists

    def search_sparse(self, collection: str, field: str, queries: Any, k: int = 10, *,
                      filter: str = "", output_attributes: Sequence[str] = (),
                      with_vectors: bool = False, exact: bool = False,
                      timeout: Optional[float] = ...,
                      **options) -> Union[List[Hit], List[List[Hit]]]:
        """The k best points of sparse vector field `field` by dot product
        with a query ({index: value} or (indices, values): returns a list of
        Hits, best first) or with each of a list of queries (returns one
        list per query). exact scans every point instead of the inverted
        index (the same answer, for checking)."""
        single = isinstance(queries, Mapping) or (
            isinstance(queries, tuple) and len(queries) == 2 and
            not isinstance(queries[0], Mapping) and
            all(np.isscalar(x) for x in queries[0]))
        qs = [queries] if single else list(queries)
        req = search_pb2.SearchRequest(
            collection=collection, field=field, k=k, filter=filter,
            output_attributes=list(output_attributes), with_vectors=with_vectors,
            sparse_vectors=[convert.to_sparse(q, "queries[%d]" % i) for i, q in enumerate(qs)])
        req.params.exact = exact
        set_fields(req, options, "SearchRequest")
        resp = self.search_raw(req, timeout=timeout)
        lists = [[convert.from_hit(h) for h in r.hits] for r in resp.results]
        return lists[0] if single else lists

    def search_text(self, collection: str, field: str, queries: Union[str, Sequence[str]],
                    k: int = 10, *, filter: str = "", output_attributes: Sequence[str] = (),
                    with_vectors: bool = False, exact: bool = False,
                    timeout: Optional[float] = ...,
                    **options) -> Union[List[Hit], List[List[Hit]]]:
        """Full-text search of text attribute `field` (declared with
        {"type": "string", "text": True}): the k best points by BM25 for a
        plain-text query (a str: returns a list of Hits) or for each of a
        list of queries (returns one list per query)."""
        single = isinstance(queries, str)
        qs = [queries] if single else list(queries)
        req = search_pb2.SearchRequest(
            collection=collection, field=field, k=k, filter=filter,
            output_attributes=list(output_attributes), with_vectors=with_vectors, texts=qs)
        req.params.exact = exact
        set_fields(req, options, "SearchRequest")
        resp = self.search_raw(req, timeout=timeout)
        lists = [[convert.from_hit(h) for h in r.hits] for r in resp.results]
        return lists[0] if single else lists

    def search_hybrid(self, collection: str, queries: Sequence[Mapping[str, Any]],
                      k: int = 10, *, fusion: str = "rrf", rrf_k: float = 0,
                      stages: Sequence[Mapping[str, Any]] = (), candidates: int = 0,
                      filter: str = "", output_attributes: Sequence[str] = (),
                      with_vectors: bool = False, timeout: Optional[float] = ...,
                      **options) -> List[Hit]:
        """Hybrid search, one query: each entry of `queries` searches one
        field, {"field": name} with one of "vector" (1-D array),
        "multi_vector" (2-D array, a multi-vector field), "sparse_vector"
        ({index: value} or (indices, values)) or "text" (a text attribute),
        and optionally "k", "weight" and "params" (SearchParams fields).
        Their lists are fused by `fusion` ("rrf", "weighted" or "dbsf").
        Multi-stage search: `stages`, in order, each {"field": name, one
        query as above, "limit": n} re-scoring the candidates exactly by
        its field and keeping its best `limit` (default k); `candidates`:
        how many of the fused ranking the first stage takes (0: all).
        Returns the hits, best first (scored by the fusion, or by the last
        stage's field)."""
        method = fusion.upper()
        if method not in ("RRF", "WEIGHTED", "DBSF"):
            raise ValueError("fusion must be rrf, weighted or dbsf, got %r" % fusion)
        req = search_pb2.SearchRequest(
            collection=collection, k=k, filter=filter, rrf_k=rrf_k,
            fusion=search_pb2.FusionMethod.Value(method), candidates=candidates,
            output_attributes=list(output_attributes), with_vectors=with_vectors)
        for i, q in enumerate(queries):
            fq = req.field_queries.add(field=q["field"], k=int(q.get("k", 0)),
                                       weight=float(q.get("weight", 0)))
            _set_field_query(fq, q, "queries[%d]" % i)
            if q.get("params"):
                set_fields(fq.params, q["params"], "SearchParams")
        for i, st in enumerate(stages):
            stage = req.stages.add(field=st["field"], limit=int(st.get("limit", 0)))
            _set_field_query(stage, st, "stages[%d]" % i)
        set_fields(req, options, "SearchRequest")
        resp = self.search_raw(req, timeout=timeout)
        return [convert.from_hit(h) for h in resp.results[0].hits]

    def search_raw(self, request: search_pb2.SearchRequest,
                   timeout: Optional[float] = ...) -> search_pb2.SearchResponse:
        """Any SearchRequest (hybrid, multi-vector, explain): the response
        message as it is."""
        return self.call(self.stubs.search.Search, request, timeout)

    # ----------------------------------------------------------- snapshots
    def create_snapshot(self, name: str, collection: str = "", timeout: Optional[float] = None):
        """Snapshots one collection (or all of them); returns SnapshotInfo."""
        req = snapshots_pb2.CreateSnapshotRequest(collection=collection, name=name)
        return self.call(self.stubs.snapshots.CreateSnapshot, req, timeout).snapshot

    def list_snapshots(self, timeout: Optional[float] = ...) -> List[Any]:
        req = snapshots_pb2.ListSnapshotsRequest()
        return list(self.call(self.stubs.snapshots.ListSnapshots, req, timeout).snapshots)

    def delete_snapshot(self, name: str, timeout: Optional[float] = ...) -> None:
        req = snapshots_pb2.DeleteSnapshotRequest(name=name)
        self.call(self.stubs.snapshots.DeleteSnapshot, req, timeout)

    def download_snapshot(self, name: str, path: str, timeout: Optional[float] = None) -> int:
        """Streams the snapshot file to `path`; returns its size in bytes."""
        req = snapshots_pb2.DownloadSnapshotRequest(name=name)
        size = 0
        try:
            with open(path, "wb") as f:
                for msg in self.stubs.snapshots.DownloadSnapshot(req, timeout=timeout,
                                                                  metadata=self._metadata):
                    f.write(msg.chunk)
                    size += len(msg.chunk)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        return size


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


_HEALTH = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def _health_status(data: bytes) -> str:
    # HealthCheckResponse: field 1 (status), a varint enum; absent = 0.
    if len(data) >= 2 and data[0] == 0x08:
        return _HEALTH.get(data[1], str(data[1]))
    return _HEALTH[0]
