"""What a request may hold and what an answer may say, both as the contract declares them.

Parameters (path, query, headers) are coerced and checked against their schemas, and an undeclared query parameter
is refused; a body is parsed strictly (`_json`), held to the events-per-request cap before its schema (so an
oversized batch is a 413, not a 400), walked for depth only where it has free-form parts, then validated and held
to the `x-max-depth` / `x-max-bytes` caps of its free-form objects. Every problem is a `FieldError` naming the
field path; all of a request's problems are reported together as one 400 `invalid_request`.

Answers are checked only when asked to (the test suite): `response_problems` says why an answer does not conform.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tally_server import ingest_batch
from tally_server._json import NUL_MESSAGE, decode_body, loads_trusted
from tally_server._limits import (
    MAX_EVENTS,
    SizeCap,
    admits_free_form,
    body_depth_errors,
    cap_errors,
    size_caps,
)
from tally_server._spec import FieldError, Operation, Spec
from tally_server.errors import invalid_request, payload_too_large

__all__ = ["BodyRules", "Parameters", "check_batch_size", "check_parameters", "response_problems"]

Parameters = tuple[dict[str, Any], dict[str, Any], str | None]
"""(path parameters, query parameters, Idempotency-Key), each checked and coerced."""


def check_parameters(
    op: Operation,
    path_params: Mapping[str, str],
    query_params: Mapping[str, str],
    headers: Mapping[str, str],
) -> Parameters:
    """The operation's parameters from the request, coerced to their types; 400 naming each bad or unknown one."""
    errors: list[FieldError] = []
    path: dict[str, Any] = {}
    query: dict[str, Any] = {}
    idempotency_key: str | None = None
    for param in op.parameters:
        if param.location == "path":
            raw = path_params.get(param.name)
        elif param.location == "query":
            raw = query_params.get(param.name)
        elif param.location == "header":
            raw = headers.get(param.name.lower())
        else:  # pragma: no cover - the contract has no cookie parameters
            continue
        if raw is not None and "\x00" in raw and param.location != "header":
            errors.append(FieldError(param.name, NUL_MESSAGE))
            continue
        if raw is None:
            if param.required:
                errors.append(FieldError(param.name, "is required"))
            elif param.default is not None and param.location == "query":
                query[param.name] = param.default
            continue
        value = param.coerce(raw) if param.location != "header" else raw
        problems = param.check(value)
        if problems:
            errors.extend(problems)
            continue
        if param.location == "path":
            path[param.name] = value
        elif param.location == "query":
            query[param.name] = value
        elif param.name.lower() == "idempotency-key":
            idempotency_key = value
    declared = {p.name for p in op.parameters if p.location == "query"}
    for name in query_params:
        if name not in declared:  # strict: a misspelt filter must not silently widen a query
            shown = name.replace("\x00", "\\u0000") or "(empty name)"
            errors.append(FieldError(shown, f"unknown query parameter of {op.operation_id}"))
    if errors:
        raise invalid_request(errors)
    return path, query, idempotency_key


def check_batch_size(body: Any) -> None:
    """413 `payload_too_large` for a batch over the contract's events per request (before schema validation, so
    it is not a 400)."""
    if isinstance(body, dict):
        events = body.get("events")
        if isinstance(events, list) and len(events) > MAX_EVENTS:
            raise payload_too_large(f"A request holds at most {MAX_EVENTS} events; split the batch.")


class BodyRules:
    """The body checks of every operation, worked out once from the spec at start-up."""

    def __init__(self, spec: Spec) -> None:
        self.size_caps: dict[str, tuple[SizeCap, ...]] = {
            op.operation_id: size_caps(op.body_schema) for op in spec.operations
        }
        self.free_form = {op.operation_id for op in spec.operations if admits_free_form(op.body_schema)}
        ingest_batch.check_spec(spec)

    def check(self, op: Operation, data: bytes) -> Any:
        """The decoded body (None when the operation takes none and none was sent); 400 or 413 otherwise."""
        if op.body_validator is None:
            return None
        if not data.strip() and not op.body_required:
            return None
        ingesting = op.operation_id == "ingestMetrics"
        if ingesting and (batch := ingest_batch.decode(data)) is not None:
            return batch  # the hot path's proof of validity (see tally_server.ingest_batch)
        body = decode_body(data)
        if ingesting:
            check_batch_size(body)
        # Only a body with free-form parts can nest deeper than its schema allows: walk just those.
        errors = body_depth_errors(body) if op.operation_id in self.free_form else []
        errors = errors or op.check_body(body) or cap_errors(body, self.size_caps[op.operation_id])
        if errors:
            raise invalid_request(errors)
        return ingest_batch.from_validated(body) if ingesting else body


def response_problems(op: Operation, status: int, body: bytes, request_id: str) -> list[str]:
    """Why an answer does not conform to the contract (empty when it does); an error must name its request."""
    try:
        data = loads_trusted(body) if body else None
    except Exception as exc:  # pragma: no cover - we always write JSON
        return [f"the body is not JSON: {exc}"]
    problems = op.response_problems(status, data)
    error = data.get("error") if isinstance(data, dict) else None
    if status >= 400 and not problems and isinstance(error, dict) and error["request_id"] != request_id:
        problems = ["error.request_id differs from X-Request-Id"]
    return problems
