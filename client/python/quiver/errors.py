"""Exceptions: one class per gRPC status code, all subclasses of QuiverError.

Every call of quiver.Client raises these instead of grpc.RpcError, so a
program can catch exactly what it expects:

    try:
        q.create_collection("shop", ...)
    except quiver.AlreadyExistsError:
        pass

`e.code` is the grpc.StatusCode, `e.message` the server's message (it names
the point, field or limit), and `e.retry_after` the server's retry hint in
seconds when it sent one (write backpressure), else None.
"""
from typing import Dict, Optional, Type

import grpc


class QuiverError(Exception):
    """A failed call: the gRPC status code and the server's message."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, code: Optional[grpc.StatusCode] = None,
                 retry_after: Optional[float] = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.retry_after = retry_after

    def __str__(self) -> str:
        return "%s: %s" % (self.code.name, self.message)


class CancelledError(QuiverError):
    code = grpc.StatusCode.CANCELLED


class UnknownError(QuiverError):
    code = grpc.StatusCode.UNKNOWN


class InvalidArgumentError(QuiverError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceededError(QuiverError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFoundError(QuiverError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(QuiverError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDeniedError(QuiverError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhaustedError(QuiverError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPreconditionError(QuiverError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class AbortedError(QuiverError):
    code = grpc.StatusCode.ABORTED


class OutOfRangeError(QuiverError):
    code = grpc.StatusCode.OUT_OF_RANGE


class UnimplementedError(QuiverError):
    code = grpc.StatusCode.UNIMPLEMENTED


class InternalError(QuiverError):
    code = grpc.StatusCode.INTERNAL


class UnavailableError(QuiverError):
    code = grpc.StatusCode.UNAVAILABLE


class DataLossError(QuiverError):
    code = grpc.StatusCode.DATA_LOSS


class UnauthenticatedError(QuiverError):
    code = grpc.StatusCode.UNAUTHENTICATED


ERRORS: Dict[grpc.StatusCode, Type[QuiverError]] = {
    cls.code: cls for cls in (
        CancelledError, UnknownError, InvalidArgumentError, DeadlineExceededError, NotFoundError,
        AlreadyExistsError, PermissionDeniedError, ResourceExhaustedError,
        FailedPreconditionError, AbortedError, OutOfRangeError, UnimplementedError,
        InternalError, UnavailableError, DataLossError, UnauthenticatedError)
}


def from_rpc_error(e: grpc.RpcError) -> QuiverError:
    """The QuiverError subclass for a grpc.RpcError raised by a stub."""
    code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
    message = (e.details() if hasattr(e, "details") else None) or str(e)
    retry_after = None
    trailers = e.trailing_metadata() if hasattr(e, "trailing_metadata") else None
    for key, value in trailers or ():
        if key == "retry-after-ms":
            try:
                retry_after = int(value) / 1000.0
            except ValueError:
                pass
    return ERRORS.get(code, QuiverError)(message, code=code, retry_after=retry_after)
