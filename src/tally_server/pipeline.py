"""The request pipeline: what happens to every request once its body has arrived, the same for every operation.

In order: authenticate (401), rate-limit (429), check the key's kind (403), validate path, query and header
parameters (400), claim the Idempotency-Key (replay / 409 / 422), validate the body (413 / 400), run the
operation's handler, check the answer against the contract when asked to, and store it for idempotency in the
same transaction as its effect; a GET's 200 then gets its `ETag`, and becomes a 304 when `If-None-Match` names
it (`conditional`). Whatever fails becomes an enveloped answer here: an `ApiError` as it says, a
refusal of the repository by `errors.from_storage_error`, a database fault by `storage.faults.classify` (503 /
507), anything else a 500 that is logged and tells nothing.

Synchronous: the routes run it in a worker thread, since the repository blocks.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tally_server._call import Call, Handler, Reply, Stream
from tally_server._json import dumps, error_body, loads_trusted
from tally_server._spec import Operation, Spec
from tally_server.auth import authenticate_request, check_kind
from tally_server.conditional import etag_of, matches
from tally_server.errors import ApiError, database_fault, from_storage_error
from tally_server.handlers import HANDLERS
from tally_server.handlers.ingestion_keys import redact_created_key, reissue_created_key
from tally_server.idempotency import IdempotencyGate, fingerprint
from tally_server.negotiation import choose_media_type
from tally_server.ratelimit import RateLimiter
from tally_server.storage.faults import DatabaseBusyError, classify
from tally_server.storage.repository import Principal, Repository, StorageError
from tally_server.validation import BodyRules, check_parameters, response_problems

if TYPE_CHECKING:
    from tally_server.contents import Staged

__all__ = ["Incoming", "Outgoing", "Pipeline", "handler_problems"]

logger = logging.getLogger("tally_server")

# The header is accepted, the answer not stored: compareMetrics is a read that travels as POST; a login link is a
# secret, and a retry may as well mint another (the unused one expires within a minute).
_NO_STORE = frozenset({"compareMetrics", "createLoginLink"})
# Answers that carry a secret: stored for idempotency without it, rebuilt when replayed (never a token at rest).
_SECRET_ANSWERS: dict[str, tuple[Callable[[bytes], bytes], Callable[[Repository, int, bytes], bytes]]] = {
    "createIngestionKey": (redact_created_key, reissue_created_key),
}


@dataclass(slots=True)
class Incoming:
    """A request as the pipeline sees it: the matched operation and what arrived, nothing of ASGI."""

    operation: Operation
    method: str
    path: str
    query_string: str
    query: Mapping[str, str]
    path_params: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    request_id: str
    upload: Staged | None = None  # a streamed body (uploadArtifact), on disk already; `body` is then empty


@dataclass(slots=True)
class Outgoing:
    """The answer: status, encoded body (empty for 204) or a `Stream` the route sends as it is produced, and
    headers."""

    status: int
    body: bytes | Stream
    headers: dict[str, str]


def _error(error: ApiError, request_id: str) -> Outgoing:
    return Outgoing(error.status, error_body(error, request_id), dict(error.headers))


def _conditional(out: Outgoing, if_none_match: str | None) -> Outgoing:
    """A GET's 200 with its `ETag`; a 304 without a body (the ETag kept) when `If-None-Match` names it. A streamed
    answer (`exportMetrics`) has none: its body, which the ETag hashes, is not known until it has been sent."""
    if isinstance(out.body, Stream):
        return out
    etag = etag_of(out.body)
    out.headers["ETag"] = etag
    if matches(if_none_match, etag):
        return Outgoing(304, b"", out.headers)
    return out


def _stored(out: Outgoing) -> bytes:
    """The body to keep for an Idempotency-Key. Streams answer reads (GET), which take no key."""
    if isinstance(out.body, Stream):
        raise TypeError("a streamed answer cannot be stored for idempotency")
    return out.body


class _Unrecorded(Exception):
    """Rolls back an operation whose answer must not be stored (a 5xx); carries that answer."""

    def __init__(self, out: Outgoing) -> None:
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


class Pipeline:
    """Everything after the body has arrived; synchronous, run in a worker thread. `handlers` maps each
    operation to its handler (tests swap one to slow it down or make it fail)."""

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
        self.body_rules = BodyRules(spec)

    def run(self, incoming: Incoming) -> Outgoing:
        op = incoming.operation
        extra: dict[str, str] = {}
        claimed: tuple[int, str] | None = None
        replayed = recorded = conformed = False
        try:
            principal: Principal | None = None
            if op.secured:
                principal = authenticate_request(self.repo, op, incoming.headers)
                if self.limiter is not None:
                    extra.update(self.limiter.acquire(principal.key_id))
                check_kind(principal, op.operation_id)
            path, query, idempotency_key = check_parameters(
                op, incoming.path_params, incoming.query, incoming.headers
            )
            media_type = None
            if len(op.produces) > 1:  # 406 before any work, when Accept admits none of the offered types
                media_type = choose_media_type(incoming.headers.get("accept"), op.produces)
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
            body = self.body_rules.check(op, incoming.body)
            call = Call(
                op, self.repo, principal, path, query, body, incoming.request_id, media_type,
                headers=incoming.headers, upload=incoming.upload,
            )  # fmt: skip
            if claimed is None:
                out = self._encode(self.handlers[op.operation_id](call))
            else:
                out = self._run_recorded(call, claimed, incoming.request_id)
                recorded = conformed = True
        except _Unrecorded as exc:
            out, conformed = exc.out, True
        except ApiError as exc:
            out = _error(exc, incoming.request_id)
        except StorageError as exc:
            out = _error(from_storage_error(exc), incoming.request_id)
        except Exception as exc:
            fault = classify(exc)  # busy (503, Retry-After), gone (503) or full (507): see storage.faults
            if fault is not None:
                level = logging.WARNING if isinstance(fault, DatabaseBusyError) else logging.ERROR
                logger.log(
                    level, "database fault in %s (%s): %s", op.operation_id, incoming.request_id, fault
                )
                out = _error(database_fault(fault), incoming.request_id)
            else:
                logger.exception("internal error in %s (%s)", op.operation_id, incoming.request_id)
                out = _error(ApiError(500, "internal", "Internal server error."), incoming.request_id)
        if self.validate_responses and not (replayed or conformed):
            out = self._conform(op, out, incoming.request_id)
        if claimed is not None and not recorded:  # an error answer: no effect to be atomic with
            try:
                self.gate.finish(*claimed, out.status, _stored(out), out.headers)
            except Exception:
                logger.exception("could not store the idempotent answer (%s)", incoming.request_id)
                with contextlib.suppress(Exception):
                    self.gate.release(*claimed)
                out = _error(ApiError(500, "internal", "Internal server error."), incoming.request_id)
        if out.status == 200 and incoming.method == "GET":
            out = _conditional(out, incoming.headers.get("if-none-match"))
        out.headers.update(extra)
        return out

    def admit(self, incoming: Incoming) -> dict[str, Any]:
        """For an operation whose body is streamed to disk (`uploadArtifact`), what can be refused before the body
        is read: the key (401 / 403), the parameters (400) and the experiment (404). Answers the checked query
        parameters; raises `ApiError`. `run` checks all of it again once the body has arrived."""
        op = incoming.operation
        try:
            principal = authenticate_request(self.repo, op, incoming.headers)
            check_kind(principal, op.operation_id)
            path, query, _ = check_parameters(op, incoming.path_params, incoming.query, incoming.headers)
            if "experiment_id" in path:
                self.repo.experiment_ref(principal.org_pk, path["experiment_id"])
        except StorageError as exc:
            raise from_storage_error(exc) from None
        return query

    def _run_recorded(self, call: Call, claimed: tuple[int, str], request_id: str) -> Outgoing:
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
            stored = _stored(out)
            if call.operation.operation_id in _SECRET_ANSWERS and out.status < 300:
                stored = _SECRET_ANSWERS[call.operation.operation_id][0](stored)
            self.gate.finish(*claimed, out.status, stored, out.headers)
        return out

    @staticmethod
    def _encode(reply: Reply) -> Outgoing:
        if reply.status == 204:  # No Content: no body at all, not `null`
            return Outgoing(204, b"", dict(reply.headers))
        if isinstance(reply.body, Stream):
            return Outgoing(reply.status, reply.body, dict(reply.headers))
        return Outgoing(reply.status, dumps(reply.body), dict(reply.headers))

    @staticmethod
    def _replay(status: int, body: bytes, headers: dict[str, str], request_id: str) -> Outgoing:
        if status >= 400:  # an error body names its request: this one
            data = loads_trusted(body)
            data["error"]["request_id"] = request_id
            body = dumps(data)
        return Outgoing(status, body, {**headers, "Idempotent-Replayed": "true"})

    @staticmethod
    def _conform(op: Operation, out: Outgoing, request_id: str) -> Outgoing:
        """Response validation (tests): an answer the contract does not allow becomes a loud 500. A stream is
        checked for its status only: reading its body here would end the point of streaming it."""
        if isinstance(out.body, Stream):
            problems = op.response_problems(out.status, None)
        else:
            problems = response_problems(op, out.status, out.body, request_id)
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
        return _error(error, request_id)
