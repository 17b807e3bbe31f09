"""Conversions between numpy / Python values and the API's messages."""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from quiver.v1 import types_pb2

# An attribute's value: int (INT64), float (DOUBLE), bool, str, or a list of
# str (STRING_LIST). None (or a missing key) leaves the attribute null.
AttributeValue = Union[int, float, bool, str, List[str]]

# A sparse vector: {index: value}, or a pair (indices, values) of sequences.
SparseVector = Union[Mapping[int, float], Sequence[Sequence[Any]]]


@dataclass
class Point:
    """A point as read back: vectors are float32 arrays (multi-vector fields:
    2-D, one row per vector)."""
    id: str
    vectors: Dict[str, np.ndarray] = field(default_factory=dict)
    attributes: Dict[str, AttributeValue] = field(default_factory=dict)
    multi_vectors: Dict[str, np.ndarray] = field(default_factory=dict)
    # Sparse vector fields: {index: value}, indexes ascending.
    sparse_vectors: Dict[str, Dict[int, float]] = field(default_factory=dict)


@dataclass
class Hit:
    """One search result, best first: score follows the field's metric
    (squared L2 distance, lower is closer; IP and COSINE, higher is closer)."""
    id: str
    score: float
    attributes: Dict[str, AttributeValue] = field(default_factory=dict)
    vectors: Dict[str, np.ndarray] = field(default_factory=dict)
    sparse_vectors: Dict[str, Dict[int, float]] = field(default_factory=dict)


def to_sparse(v: SparseVector, name: str) -> types_pb2.SparseVector:
    """A SparseVector message from {index: value} or (indices, values)."""
    if isinstance(v, Mapping):
        indices, values = list(v.keys()), list(v.values())
    else:
        if len(v) != 2:
            raise ValueError("%s: expected {index: value} or (indices, values)" % name)
        indices, values = list(v[0]), list(v[1])
    return types_pb2.SparseVector(indices=[int(i) for i in indices],
                                  values=[float(x) for x in values])


def from_sparse(v: types_pb2.SparseVector) -> Dict[int, float]:
    return dict(zip(v.indices, v.values))


def to_value(v: Any) -> types_pb2.Value:
    if isinstance(v, (bool, np.bool_)):
        return types_pb2.Value(bool_value=bool(v))
    if isinstance(v, (int, np.integer)):
        return types_pb2.Value(int_value=int(v))
    if isinstance(v, (float, np.floating)):
        return types_pb2.Value(double_value=float(v))
    if isinstance(v, str):
        return types_pb2.Value(string_value=v)
    if isinstance(v, (list, tuple)) and all(isinstance(s, str) for s in v):
        return types_pb2.Value(string_list_value=types_pb2.StringList(values=list(v)))
    raise TypeError("attribute value %r is not an int, float, bool, str or list of str" % (v,))


def from_value(v: types_pb2.Value) -> Optional[AttributeValue]:
    kind = v.WhichOneof("kind")
    if kind is None:
        return None
    if kind == "string_list_value":
        return list(v.string_list_value.values)
    return getattr(v, kind)


def as_matrix(vectors: Any, name: str) -> np.ndarray:
    """A 2-D float32 array of `vectors` (one row per vector; a 1-D input is
    one row)."""
    a = np.asarray(vectors, dtype=np.float32)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2:
        raise ValueError("%s: expected a 1-D or 2-D array, got shape %s" % (name, a.shape))
    return a


def to_vector(row: np.ndarray) -> types_pb2.Vector:
    return types_pb2.Vector(values=row.tolist())


def from_vector(v: types_pb2.Vector) -> np.ndarray:
    return np.array(v.values, dtype=np.float32)


def attribute_rows(attributes: Union[None, Sequence[Mapping[str, Any]], Mapping[str, Sequence[Any]]],
                   n: int) -> List[Mapping[str, Any]]:
    """Per-point attribute dicts from a list of dicts (one per point) or a
    dict of columns (name -> sequence of n values)."""
    if attributes is None:
        return [{}] * n
    if isinstance(attributes, Mapping):
        cols = {k: list(v) for k, v in attributes.items()}
        for k, v in cols.items():
            if len(v) != n:
                raise ValueError("attribute column %r has %d values for %d points" % (k, len(v), n))
        return [{k: v[i] for k, v in cols.items()} for i in range(n)]
    rows = list(attributes)
    if len(rows) != n:
        raise ValueError("%d attribute dicts for %d points" % (len(rows), n))
    return rows


def make_points(ids: Sequence[str], vectors: Mapping[str, Any],
                attributes=None, multi_vectors: Optional[Mapping[str, Sequence[Any]]] = None,
                sparse_vectors: Optional[Mapping[str, Sequence[Optional[SparseVector]]]] = None
                ) -> List[types_pb2.Point]:
    """Point messages for ids[i] with row i of each field's array, and
    sparse_vectors[field][i] (None: the point has none)."""
    ids = [str(i) for i in ids]
    n = len(ids)
    mats = {name: as_matrix(v, "vectors[%r]" % name) for name, v in vectors.items()}
    for name, m in mats.items():
        if m.shape[0] != n:
            raise ValueError("vectors[%r] has %d rows for %d ids" % (name, m.shape[0], n))
    sets = {}
    for name, per_point in (multi_vectors or {}).items():
        if len(per_point) != n:
            raise ValueError("multi_vectors[%r] has %d sets for %d ids" % (name, len(per_point), n))
        sets[name] = per_point
    for name, per_point in (sparse_vectors or {}).items():
        if len(per_point) != n:
            raise ValueError("sparse_vectors[%r] has %d vectors for %d ids" % (
                name, len(per_point), n))
    rows = attribute_rows(attributes, n)
    points = []
    for i, pid in enumerate(ids):
        p = types_pb2.Point(id=pid)
        for name, m in mats.items():
            p.vectors[name].values.extend(m[i].tolist())
        for name, per_point in sets.items():
            mv = p.multi_vectors[name]
            for row in as_matrix(per_point[i], "multi_vectors[%r][%d]" % (name, i)):
                mv.vectors.add().values.extend(row.tolist())
        for name, per_point in (sparse_vectors or {}).items():
            if per_point[i] is not None:
                p.sparse_vectors[name].CopyFrom(
                    to_sparse(per_point[i], "sparse_vectors[%r][%d]" % (name, i)))
        for k, v in rows[i].items():
            if v is not None:
                p.attributes[k].CopyFrom(to_value(v))
        points.append(p)
    return points


def from_point(p: types_pb2.Point) -> Point:
    return Point(
        id=p.id,
        vectors={k: from_vector(v) for k, v in p.vectors.items()},
        attributes={k: from_value(v) for k, v in p.attributes.items()},
        multi_vectors={k: np.array([list(r.values) for r in mv.vectors], dtype=np.float32)
                       for k, mv in p.multi_vectors.items()},
        sparse_vectors={k: from_sparse(v) for k, v in p.sparse_vectors.items()})


def from_hit(h) -> Hit:
    return Hit(id=h.id, score=h.score,
               attributes={k: from_value(v) for k, v in h.attributes.items()},
               vectors={k: from_vector(v) for k, v in h.vectors.items()},
               sparse_vectors={k: from_sparse(v) for k, v in h.sparse_vectors.items()})


def set_fields(msg, options: Mapping[str, Any], what: str) -> None:
    """Sets fields of `msg` by name (scalars, repeated scalars, messages from
    dicts); a name the message lacks is a TypeError, so a typo never passes
    silently. This is how options added to a request message later are
    usable before a wrapper names them."""
    for name, value in options.items():
        fd = msg.DESCRIPTOR.fields_by_name.get(name)
        if fd is None:
            raise TypeError("%s has no field %r (fields: %s)" % (
                what, name, ", ".join(sorted(msg.DESCRIPTOR.fields_by_name))))
        if fd.message_type is not None and isinstance(value, Mapping) and \
                not fd.message_type.GetOptions().map_entry:
            set_fields(getattr(msg, name), value, fd.message_type.full_name)
        elif fd.label == fd.LABEL_REPEATED:
            del getattr(msg, name)[:]
            getattr(msg, name).extend(value)
        elif fd.message_type is not None:
            getattr(msg, name).CopyFrom(value)
        elif fd.enum_type is not None and isinstance(value, str):
            if value not in fd.enum_type.values_by_name:
                raise ValueError("%s.%s: %r is not one of %s" % (
                    what, name, value, ", ".join(fd.enum_type.values_by_name)))
            setattr(msg, name, fd.enum_type.values_by_name[value].number)
        else:
            setattr(msg, name, value)
