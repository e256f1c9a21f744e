"""The error envelope: one exception type for every non-2xx answer, and the body every one of them carries."""

from __future__ import annotations

from typing import Any

from tally_server._limits import MAX_BODY_BYTES, MAX_EVENTS
from tally_server._spec import FieldError
from tally_server.storage.faults import DatabaseBusyError, DatabaseFault, DatabaseFullError
from tally_server.storage.repository import (
    ConflictError,
    ExperimentArchivedError,
    ExperimentClosedError,
    FolderNotEmptyError,
    InvalidTransitionError,
    NotFoundError,
    StorageError,
    UnstorableTextError,
)

__all__ = [
    "ApiError",
    "conflict",
    "database_fault",
    "envelope",
    "from_storage_error",
    "invalid_request",
    "not_found",
    "payload_too_large",
]


class ApiError(Exception):
    """An answer other than success: HTTP status, snake_case code, a message for humans, optional details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.code!r}, {self.message!r})"


def envelope(
    code: str, message: str, request_id: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`{"error": {"code", "message", "request_id", "details"}}`."""
    return {"error": {"code": code, "message": message, "request_id": request_id, "details": details}}


def invalid_request(errors: list[FieldError]) -> ApiError:
    """400 `invalid_request` naming each field path and problem; the message leads with the first one."""
    first = errors[0]
    message = f"{first.path}: {first.message}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return ApiError(400, "invalid_request", message, {"errors": [e.as_dict() for e in errors]})


def not_found(kind: str, ident: str) -> ApiError:
    return ApiError(404, "not_found", f"No {kind} {ident}.")


def conflict(message: str, details: dict[str, Any] | None = None) -> ApiError:
    return ApiError(409, "conflict", message, details)


def database_fault(fault: DatabaseFault) -> ApiError:
    """The answer to a fault of the database (`tally_server.storage.faults`): busy is 503 with `Retry-After: 1`;
    full is 507 `insufficient_storage`, with no `Retry-After` (waiting does not free a disk); a database file
    that is gone is 503 naming it, with no `Retry-After` either."""
    details = {"database": fault.database} if fault.database else None
    if isinstance(fault, DatabaseBusyError):
        return ApiError(503, "unavailable", "The server is busy; retry shortly.", None, {"Retry-After": "1"})
    if isinstance(fault, DatabaseFullError):
        return ApiError(
            507,
            "insufficient_storage",
            "The server's storage is full; nothing was stored. Retry once space was freed on the server.",
            details,
        )
    return ApiError(503, "unavailable", fault.message, details)


def payload_too_large(message: str) -> ApiError:
    """413 `payload_too_large`, naming both caps of the contract: bytes of a body and events of a batch."""
    return ApiError(
        413, "payload_too_large", message, {"max_bytes": MAX_BODY_BYTES, "max_events": MAX_EVENTS}
    )


def from_storage_error(exc: StorageError) -> ApiError:
    """The answer to a refusal of the repository (a rule of the data model): 400, 404 or 409."""
    if isinstance(exc, UnstorableTextError):
        return invalid_request([FieldError("(text)", str(exc))])
    if isinstance(exc, NotFoundError):
        return ApiError(404, "not_found", str(exc))
    if isinstance(exc, InvalidTransitionError):
        return ApiError(409, "invalid_transition", str(exc), {"from": exc.current, "to": exc.requested})
    if isinstance(exc, ExperimentClosedError):
        return ApiError(
            409, "experiment_closed", str(exc), {"experiment_id": exc.experiment_id, "status": exc.status}
        )
    if isinstance(exc, FolderNotEmptyError):
        details = {"folder_id": exc.folder_id, "experiments": exc.experiments, "folders": exc.folders}
        return ApiError(409, "folder_not_empty", str(exc), details)
    if isinstance(exc, ExperimentArchivedError):
        return ApiError(409, "experiment_archived", str(exc), {"experiment_id": exc.experiment_id})
    if isinstance(exc, ConflictError):
        return ApiError(409, "conflict", str(exc), exc.details)
    return ApiError(409, "conflict", str(exc))
