"""Quiver's Python client: a typed layer over the generated gRPC stubs.

    import numpy as np, quiver
    with quiver.Client() as q:      # $QUIVER_ADDR or 127.0.0.1:50051
        q.create_collection("demo", vectors={"emb": (4, "L2")}, attributes={"n": "int64"})
        q.upsert("demo", ["a", "b"], {"emb": np.eye(2, 4)}, attributes={"n": [1, 2]})
        print(q.search("demo", np.array([1, 0, 0, 0]), k=1, filter="n >= 1"))

The generated messages and stubs are quiver.v1.*_pb2 and *_pb2_grpc.
"""
from quiver.client import Client, DEFAULT_ADDRESS
from quiver.convert import AttributeValue, Hit, Point, set_fields
from quiver.errors import (ERRORS, AbortedError, AlreadyExistsError, CancelledError,
                           DataLossError, DeadlineExceededError, FailedPreconditionError,
                           InternalError, InvalidArgumentError, NotFoundError, OutOfRangeError,
                           PermissionDeniedError, QuiverError, ResourceExhaustedError,
                           UnauthenticatedError, UnavailableError, UnimplementedError,
                           UnknownError)

__all__ = [
    "Client", "DEFAULT_ADDRESS", "Hit", "Point", "AttributeValue", "set_fields", "ERRORS",
    "QuiverError", "CancelledError", "UnknownError", "InvalidArgumentError",
    "DeadlineExceededError", "NotFoundError", "AlreadyExistsError", "PermissionDeniedError",
    "ResourceExhaustedError", "FailedPreconditionError", "AbortedError", "OutOfRangeError",
    "UnimplementedError", "InternalError", "UnavailableError", "DataLossError",
    "UnauthenticatedError",
]
