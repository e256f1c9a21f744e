"""The ASGI application: Starlette routes built from the contract, one request pipeline for every operation.

For each request: authenticate (401), rate-limit (429), check the key's kind (403), validate path, query and
header parameters (400), claim the Idempotency-Key (replay / 409 / 422), read and validate the body (413
/ 400),
run the operation's handler, check the answer against the contract when asked to, store it for idempotency.
Every answer, errors included, is JSON and carries `X-Request-Id`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tally_server._access_log import request_target
from tally_server._call import Call, Handler, Reply
from tally_server._http import TIMED_OUT_SCOPE_KEY
from tally_server._json import NUL_MESSAGE, decode_body, dumps, loads_trusted
from tally_server._limits import (
    MAX_BODY_BYTES,
    SizeCap,
    admits_free_form,
    body_depth_errors,
    cap_errors,
    size_caps,
)
from tally_server._spec import FieldError, Operation, Spec, load_spec
from tally_server.auth import authenticate, check_kind
from tally_server.errors import ApiError, database_fault, envelope, invalid_request, payload_too_large
from tally_server.handlers import HANDLERS
from tally_server.handlers.ingestion_keys import redact_created_key, reissue_created_key
from tally_server.handlers.metrics import check_batch_size
from tally_server.idempotency import IdempotencyGate, fingerprint
from tally_server.ratelimit import RateLimiter
from tally_server.storage.backends import open_repository
from tally_server.storage.faults import DatabaseBusyError, classify
from tally_server.storage.repository import (
    ConflictError,
    ExperimentArchivedError,
    ExperimentClosedError,
    InvalidTransitionError,
    NotFoundError,
    Principal,
    Repository,
    StorageError,
    UnstorableTextError,
)

__all__ = ["create_app", "validate_bootstrap_key"]

logger = logging.getLogger("tally_server")

_REQUEST_ID_SCOPE_KEY = "tally.request_id"
_OPERATION_SCOPE_KEY = "tally.operation"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_NO_STORE = frozenset({"compareMetrics"})  # a read that travels as POST: the header is accepted, not stored
_JSON = "application/json"
# Answers that carry a secret: stored for idempotency without it, rebuilt when replayed (never a token at rest).
_SECRET_ANSWERS: dict[str, tuple[Callable[[bytes], bytes], Callable[[Repository, int, bytes], bytes]]] = {
    "createIngestionKey": (redact_created_key, reissue_created_key),
}


def validate_bootstrap_key(value: str, flag: str = "--bootstrap-key") -> str:
    """A bootstrap key must look like an organisation key: `tk_org_` and at least 16 URL-safe characters."""
    if not re.fullmatch(r"tk_org_[A-Za-z0-9_-]{16,256}", value):
        raise ValueError(
            f"{flag} must be an organisation key: 'tk_org_' followed by 16 to 256 URL-safe characters"
        )
    return value


@dataclass(slots=True)
class _Incoming:
    operation: Operation
    method: str
    path: str
    query_string: str
    query: Mapping[str, str]
    path_params: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    request_id: str


@dataclass(slots=True)
class _Outgoing:
    status: int
    body: bytes
    headers: dict[str, str]


def _error_bytes(error: ApiError, request_id: str) -> bytes:
    return dumps(envelope(error.code, error.message, request_id, error.details))


def _storage_error(exc: StorageError) -> ApiError:
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
    if isinstance(exc, ExperimentArchivedError):
        return ApiError(409, "experiment_archived", str(exc), {"experiment_id": exc.experiment_id})
    if isinstance(exc, ConflictError):
        return ApiError(409, "conflict", str(exc), exc.details)
    return ApiError(409, "conflict", str(exc))


class _Unrecorded(Exception):
    """Rolls back an operation whose answer must not be stored (a 5xx); carries that answer."""

    def __init__(self, out: _Outgoing) -> None:
        super().__init__(out.status)
        self.out = out


def handler_problems(spec: Spec, handlers: Mapping[str, Handler]) -> list[str]:
    """What keeps the server from serving exactly the contract's operations, each with what to do (empty when
    every operation of the spec has a handler and every handler an operation)."""
    declared = spec.by_id()
    missing = [
        f"operation {op.operation_id} ({op.method} {op.path}) has no handler: write one in "
        "src/tally_server/handlers/ (with its storage in src/tally_server/storage/) and add it to that module's "
        "HANDLERS"
        for operation_id, op in sorted(declared.items())
        if operation_id not in handlers
    ]
    extra = [
        f"handler {name!r} matches no operation of openapi/tally.yaml: remove it from HANDLERS, or add the "
        "operation to the spec and run `make generate`"
        for name in sorted(set(handlers) - set(declared))
    ]
    return missing + extra


class _Pipeline:
    """Everything after the body has arrived; synchronous, run in a worker thread."""

    def __init__(
        self, spec: Spec, repo: Repository, rate_limit: float | None, validate_responses: bool
    ) -> None:
        self.spec = spec
        self.repo = repo
        self.limiter = RateLimiter(rate_limit) if rate_limit else None
        self.validate_responses = validate_responses
        self.gate = IdempotencyGate(repo)
        self.handlers: dict[str, Handler] = dict(HANDLERS)
        problems = handler_problems(spec, self.handlers)
        if problems:
            raise RuntimeError("handlers and contract differ:\n" + "\n".join(problems))
        self.size_caps: dict[str, tuple[SizeCap, ...]] = {
            op.operation_id: size_caps(op.body_schema) for op in spec.operations
        }
        self.free_form = {op.operation_id for op in spec.operations if admits_free_form(op.body_schema)}

    def run(self, incoming: _Incoming) -> _Outgoing:
        op = incoming.operation
        extra: dict[str, str] = {}
        claimed: tuple[int, str] | None = None
        replayed = recorded = conformed = False
        try:
            principal: Principal | None = None
            if op.secured:
                principal = authenticate(self.repo, incoming.headers.get("authorization"))
                if self.limiter is not None:
                    extra.update(self.limiter.acquire(principal.key_id))
                check_kind(principal, op.operation_id)
            path, query, idempotency_key = self._parameters(op, incoming)
            if idempotency_key is not None and principal is not None and op.operation_id not in _NO_STORE:
                print_ = fingerprint(incoming.method, incoming.path, incoming.query_string, incoming.body)
                claim = self.gate.claim(principal.org_pk, idempotency_key, print_)
                if claim.state == "done":
                    replayed = True
                    stored = claim.body
                    if op.operation_id in _SECRET_ANSWERS and claim.status < 300:
                        stored = _SECRET_ANSWERS[op.operation_id][1](self.repo, principal.org_pk, stored)
                    out = self._replay(claim.status, stored, claim.headers, incoming.request_id)
                    out.headers.update(extra)
                    return out
                claimed = (principal.org_pk, idempotency_key)
            body = self._body(op, incoming.body)
            call = Call(op, self.repo, principal, path, query, body, incoming.request_id)
            if claimed is None:
                out = self._encode(self.handlers[op.operation_id](call))
            else:
                out = self._run_recorded(call, claimed, incoming.request_id)
                recorded = conformed = True
        except _Unrecorded as exc:
            out, conformed = exc.out, True
        except ApiError as exc:
            out = _Outgoing(exc.status, _error_bytes(exc, incoming.request_id), dict(exc.headers))
        except StorageError as exc:
            out = _Outgoing(*self._error(_storage_error(exc), incoming.request_id))
        except Exception as exc:
            fault = classify(exc)  # busy (503, Retry-After), gone (503) or full (507): see storage.faults
            if fault is not None:
                level = logging.WARNING if isinstance(fault, DatabaseBusyError) else logging.ERROR
                logger.log(
                    level, "database fault in %s (%s): %s", op.operation_id, incoming.request_id, fault
                )
                out = _Outgoing(*self._error(database_fault(fault), incoming.request_id))
            else:
                logger.exception("internal error in %s (%s)", op.operation_id, incoming.request_id)
                out = _Outgoing(
                    *self._error(ApiError(500, "internal", "Internal server error."), incoming.request_id)
                )
        if self.validate_responses and not (replayed or conformed):
            out = self._conform(op, out, incoming.request_id)
        if claimed is not None and not recorded:  # an error answer: no effect to be atomic with
            try:
                self.gate.finish(*claimed, out.status, out.body, out.headers)
            except Exception:
                logger.exception("could not store the idempotent answer (%s)", incoming.request_id)
                with contextlib.suppress(Exception):
                    self.gate.release(*claimed)
                failed = ApiError(500, "internal", "Internal server error.")
                out = _Outgoing(*self._error(failed, incoming.request_id))
        out.headers.update(extra)
        return out

    def _run_recorded(self, call: Call, claimed: tuple[int, str], request_id: str) -> _Outgoing:
        """Run an operation that holds an Idempotency-Key and store its answer in the same transaction as its
        effect: a crash between the two would leave an effect without its record, and the client's retry would
        repeat it. An error raised by the operation rolls everything back and propagates (its answer is then
        stored on its own: there is no effect to keep it with)."""
        with self.repo.atomic():
            out = self._encode(self.handlers[call.operation.operation_id](call))
            if self.validate_responses:
                out = self._conform(call.operation, out, request_id)
            if out.status >= 500:  # an answer the contract does not allow (tests): keep no effect either
                raise _Unrecorded(out)
            stored = out.body
            if call.operation.operation_id in _SECRET_ANSWERS and out.status < 300:
                stored = _SECRET_ANSWERS[call.operation.operation_id][0](stored)
            self.gate.finish(*claimed, out.status, stored, out.headers)
        return out

    @staticmethod
    def _error(error: ApiError, request_id: str) -> tuple[int, bytes, dict[str, str]]:
        return error.status, _error_bytes(error, request_id), dict(error.headers)

    @staticmethod
    def _encode(reply: Reply) -> _Outgoing:
        if reply.status == 204:  # No Content: no body at all, not `null`
            return _Outgoing(204, b"", dict(reply.headers))
        return _Outgoing(reply.status, dumps(reply.body), dict(reply.headers))

    @staticmethod
    def _replay(status: int, body: bytes, headers: dict[str, str], request_id: str) -> _Outgoing:
        if status >= 400:  # an error body names its request: this one
            data = loads_trusted(body)
            data["error"]["request_id"] = request_id
            body = dumps(data)
        return _Outgoing(status, body, {**headers, "Idempotent-Replayed": "true"})

    def _parameters(
        self, op: Operation, incoming: _Incoming
    ) -> tuple[dict[str, Any], dict[str, Any], str | None]:
        errors: list[FieldError] = []
        path: dict[str, Any] = {}
        query: dict[str, Any] = {}
        idempotency_key: str | None = None
        for param in op.parameters:
            if param.location == "path":
                raw = incoming.path_params.get(param.name)
            elif param.location == "query":
                raw = incoming.query.get(param.name)
            elif param.location == "header":
                raw = incoming.headers.get(param.name.lower())
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
        for name in incoming.query:
            if name not in declared:  # strict: a misspelt filter must not silently widen a query
                shown = name.replace("\x00", "\\u0000") or "(empty name)"
                errors.append(FieldError(shown, f"unknown query parameter of {op.operation_id}"))
        if errors:
            raise invalid_request(errors)
        return path, query, idempotency_key

    def _body(self, op: Operation, data: bytes) -> Any:
        if op.body_validator is None:
            return None
        if not data.strip() and not op.body_required:
            return None
        body = decode_body(data)
        if op.operation_id == "ingestMetrics":
            check_batch_size(body)
        # Only a body with free-form parts can nest deeper than its schema allows: walk just those.
        errors = body_depth_errors(body) if op.operation_id in self.free_form else []
        errors = errors or op.check_body(body) or cap_errors(body, self.size_caps[op.operation_id])
        if errors:
            raise invalid_request(errors)
        return body

    def _conform(self, op: Operation, out: _Outgoing, request_id: str) -> _Outgoing:
        """Response validation (tests): an answer the contract does not allow becomes a loud 500."""
        try:
            body = loads_trusted(out.body) if out.body else None
        except Exception as exc:  # pragma: no cover - we always write JSON
            problems = [f"the body is not JSON: {exc}"]
        else:
            problems = op.response_problems(out.status, body)
            error = body.get("error") if isinstance(body, dict) else None
            if (
                out.status >= 400
                and not problems
                and isinstance(error, dict)
                and error["request_id"] != request_id
            ):
                problems = ["error.request_id differs from X-Request-Id"]
        if not problems:
            return out
        logger.error(
            "response of %s (%s) does not conform to the contract: status %s: %s",
            op.operation_id,
            request_id,
            out.status,
            "; ".join(problems),
        )
        error = ApiError(
            500,
            "internal",
            "The server's answer did not conform to the contract.",
            {"operation": op.operation_id, "status": out.status, "problems": problems},
        )
        return _Outgoing(*self._error(error, request_id))


async def _read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing more than `limit` bytes before reading it all."""
    too_large = payload_too_large(f"A request body holds at most {limit} bytes.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _check_json_content_type(value: str | None, *, declared_body: bool) -> None:
    """415 `unsupported_media_type` unless a body is declared as JSON (`application/json`, or `+json`).

    Called before the body is read (`declared_body`: only a Content-Type that is present and not JSON is refused,
    so nothing is read in vain) and again once a non-empty body has arrived (then a missing one is refused too).
    """
    if value is None and declared_body:
        return
    media = (value or "").split(";", 1)[0].strip().lower()
    if media == _JSON or (media.startswith("application/") and media.endswith("+json")):
        return
    shown = media or "none"
    raise ApiError(
        415,
        "unsupported_media_type",
        f"The body must be JSON: send Content-Type: application/json (got {shown}).",
        {"content_type": media or None, "expected": _JSON},
    )


def _json_response(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Response:
    if status == 204:  # no body, so no Content-Type either
        return Response(status_code=204, headers=dict(headers or {}))
    return Response(body, status_code=status, headers=dict(headers or {}), media_type=_JSON)


def _request_id(scope: Scope) -> str:
    return str(scope.get(_REQUEST_ID_SCOPE_KEY) or "req_" + secrets.token_hex(8))


def _not_found_response(request: Request) -> Response:
    request_id = _request_id(request.scope)
    error = ApiError(404, "not_found", f"No route {request.method} {request.url.path}.")
    return _json_response(404, _error_bytes(error, request_id))


class RequestIdMiddleware:
    """Gives every request an id (the client's `X-Request-Id` when sane), puts it on every response, logs one
    line per request (method, path and the operation's declared query parameters, escaped and redacted; status,
    time, request id; never a header such as Authorization), and turns anything that escaped into an enveloped
    500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = None
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                offered = value.decode("latin-1")
                break
        request_id = (
            offered if offered and _SANE_REQUEST_ID.fullmatch(offered) else "req_" + secrets.token_hex(8)
        )
        scope[_REQUEST_ID_SCOPE_KEY] = request_id
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("unhandled error (%s)", request_id)
            if status == 0:
                body = _error_bytes(ApiError(500, "internal", "Internal server error."), request_id)
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", _JSON.encode()),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send_with_id({"type": "http.response.body", "body": body})
        finally:
            if logger.isEnabledFor(logging.INFO):
                elapsed = (time.perf_counter() - started) * 1000
                logger.info("%s %s %.1fms %s", _logged_request(scope), status, elapsed, request_id)


def _logged_request(scope: Scope) -> str:
    """The request as its log line shows it: escaped, without secrets, with only the matched operation's query
    parameters (see `_access_log`)."""
    operation: Operation | None = scope.get(_OPERATION_SCOPE_KEY)
    declared = None if operation is None else {p.name for p in operation.parameters if p.location == "query"}
    query = scope.get("query_string", b"").decode("latin-1")
    return request_target(str(scope.get("method", "")), str(scope.get("path", "")), query, declared)


def _endpoint(
    pipeline: _Pipeline, operations: dict[str, Operation]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        request_id = _request_id(request.scope)
        operation = operations.get(request.method)
        request.scope[_OPERATION_SCOPE_KEY] = operation  # the log line shows only its query parameters
        if operation is None:  # the path exists, the method does not: 405 with Allow, in the envelope
            error = ApiError(
                405, "method_not_allowed", f"{request.method} is not allowed on {request.url.path}."
            )
            allow = {"Allow": ", ".join(sorted(operations))}
            return _json_response(405, _error_bytes(error, request_id), allow)
        try:
            body = b""
            if operation.body_validator is not None:
                _check_json_content_type(request.headers.get("content-type"), declared_body=True)
                body = await _read_body(request, MAX_BODY_BYTES)
                if body.strip():
                    _check_json_content_type(request.headers.get("content-type"), declared_body=False)
        except ApiError as exc:
            return _json_response(exc.status, _error_bytes(exc, request_id), exc.headers)
        except ClientDisconnect:  # nobody to answer; the log line says 408 when the body timed out
            return Response(status_code=408 if request.scope.get(TIMED_OUT_SCOPE_KEY) else 499)
        incoming = _Incoming(
            operation=operation,
            method=request.method,
            path=request.url.path,
            query_string=request.scope.get("query_string", b"").decode("latin-1"),
            query=request.query_params,
            path_params=request.path_params,
            headers=request.headers,
            body=body,
            request_id=request_id,
        )
        out = await anyio.to_thread.run_sync(pipeline.run, incoming)
        return _json_response(out.status, out.body, out.headers)

    return endpoint


def build_app(
    repo: Repository,
    *,
    rate_limit: float | None = None,
    validate_responses: bool = False,
    spec: Spec | None = None,
) -> Starlette:
    """The application over an existing repository (which it closes on shutdown)."""
    spec = spec or load_spec()
    pipeline = _Pipeline(spec, repo, rate_limit, validate_responses)
    by_path: dict[str, dict[str, Operation]] = {}
    for op in spec.operations:
        by_path.setdefault(op.path, {})[op.method] = op
    routes = []
    for path, ops in by_path.items():
        route = Route(path, _endpoint(pipeline, ops))
        route.methods = None  # every method reaches the endpoint, which answers 405 for those the path lacks
        routes.append(route)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        repo.close()

    async def not_found(request: Request, exc: Exception) -> Response:
        return _not_found_response(request)

    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers={404: not_found, HTTPException: not_found},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.repo = repo
    app.state.pipeline = pipeline
    app.state.spec = spec
    return app


def create_app(
    *,
    db: str | os.PathLike[str] | None = None,
    bootstrap_key: str | None = None,
    rate_limit: float | None = None,
    validate_responses: bool = False,
    fsync: bool = True,
) -> Starlette:
    """The reference server as an ASGI application.

    `db` is a SQLite file (created if missing, migrated if old); None or ":memory:" is a scratch database that
    disappears on shutdown; `postgresql://user@host/dbname` is a PostgreSQL database (migrated if old), which
    several server processes can share; a URL of any other scheme is refused (ValueError).
    On a fresh database an organisation "default" is created with an org API key:
    `bootstrap_key` when given (it must start with `tk_org_`), else a generated one, available as
    `app.state.api_key` (None when the database already had an organisation and no bootstrap key was given).
    `rate_limit` is requests per second per key (off when None). `validate_responses` checks every answer
    against the contract and turns a mismatch into a 500 (the test suite turns it on; so does the environment
    variable TALLY_SERVER_VALIDATE_RESPONSES=1). `fsync=False` commits without fsync (see
    `tally_server.storage.database`): acknowledged writes survive the server's crash, not the machine's.
    """
    if bootstrap_key is not None:
        validate_bootstrap_key(bootstrap_key)
    if rate_limit is not None and not rate_limit > 0:
        raise ValueError("rate_limit must be a positive number of requests per second")
    validate_responses = validate_responses or os.environ.get("TALLY_SERVER_VALIDATE_RESPONSES", "") in (
        "1",
        "true",
    )
    repo = open_repository(db, fsync=fsync)
    try:
        result = repo.bootstrap(bootstrap_key, mint_if_existing=False)
        app = build_app(repo, rate_limit=rate_limit, validate_responses=validate_responses)
    except BaseException:
        repo.close()
        raise
    app.state.bootstrap = result
    app.state.api_key = bootstrap_key if bootstrap_key is not None else result.new_token
    return app
