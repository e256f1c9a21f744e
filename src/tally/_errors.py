"""Every exception Tally raises, and the one place that turns a response or a transport failure into one.

    TallyError
    ├── ConfigurationError              no credentials found, or a bad option
    ├── UnboundObjectError              a returned object's method, on an object no client fetched
    ├── APIConnectionError              the request did not get an answer
    │   └── APITimeoutError             ... because it took too long
    ├── APIStatusError                  the server answered with a non-2xx status
    │   ├── BadRequestError             400
    │   ├── AuthenticationError         401
    │   ├── PermissionDeniedError       403
    │   ├── NotFoundError               404
    │   ├── ConflictError               409
    │   ├── UnprocessableEntityError    422
    │   ├── RateLimitError              429
    │   └── InternalServerError         5xx
    │       └── InsufficientStorageError    507: the server's disk is full (not retried)
    └── ResponseValidationError         a 2xx body that does not match openapi/tally.yaml

Every exception pickles and unpickles with its fields (for `multiprocessing`).

Each carries `status_code`, `code`, `message`, `request_id`, `method`, `url`, `details` and `attempts` (how many
times the request was sent, retries included; None where it does not apply); `str()` is one readable line that
says "after N attempts" when the transport retried. An error the server answered (`APIStatusError`,
`ResponseValidationError`) also keeps the answer: `response_text`, `headers` (a read-only, case-insensitive
mapping) and `body` (the decoded JSON, or None), with every key and secret header masked (`tally._answer`); the
others have None, no headers and None. A `ResponseValidationError` keeps the decoder's complaint as `cause` (also
its `__cause__`).

Keys never appear in them (issue 20, item 6): the URL is shown without userinfo and with secret query values
masked (`tally._redact`); a status error keeps its live `httpx.Response`, but pickles a copy whose request has its
`Authorization` (and any other secret header) masked and no body; the httpx exception a connection error is
raised from gets the same masked request in place of the one that was sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx

from tally._answer import NO_HEADERS, ResponseHeaders, answer_parts
from tally._headers import RETRY_COUNT_HEADER
from tally._redact import redact_headers, redact_text, redact_url

if TYPE_CHECKING:
    from tally._error_body import ErrorBody

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ChecksumMismatchError",
    "ConfigurationError",
    "ConflictError",
    "InsufficientStorageError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseValidationError",
    "TallyError",
    "UnboundObjectError",
    "UnprocessableEntityError",
    "error_from_response",
    "shareable_request",
    "shareable_response",
    "translate_transport_errors",
    "validation_error",
]

_HINTS = {
    "unauthenticated": "check the API key (TALLY_API_KEY, `tally auth login`, or Tally(api_key=...))",
    "forbidden": "this key may not do this; ingestion needs an ingestion key, everything else an org key",
    "idempotency_key_reused": "use a new idempotency_key for a different request",
    "payload_too_large": "send smaller batches",
    "rate_limited": "slow down, or raise max_retries to wait and retry",
    "insufficient_storage": "the server's disk is full: free space on the server, then send it again",
    "checksum_mismatch": "the file changed while it was uploaded, or was damaged on the way: upload it again",
}


class TallyError(Exception):
    """The root of every error this SDK raises."""

    status_code: int | None = None
    code: str | None = None
    request_id: str | None = None
    method: str | None = None
    url: str | None = None
    details: Any = None
    attempts: int | None = None
    """How many times the request was sent (1 + retries); None where no request was sent."""
    response_text: str | None = None
    """The answer's body as text, keys masked; None where the server did not answer."""
    headers: ResponseHeaders = NO_HEADERS
    """The answer's headers, read-only and case-insensitive, secret ones masked; empty without an answer."""
    body: Any = None
    """The answer's body decoded as JSON (keys masked); None without an answer or when it is not JSON."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with every field (the keyword-only constructors defeat `Exception`'s default), so that an
        error raised in a `multiprocessing` worker reaches the parent intact; `response` travels as a copy
        that shows no secret (`shareable_response`)."""
        state = dict(self.__dict__)
        response = state.get("response")
        if isinstance(response, httpx.Response):
            state["response"] = shareable_response(response)
        return (_restore, (type(self), self.message), state)


def _restore(cls: type[TallyError], message: str) -> TallyError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    return error


class ConfigurationError(TallyError):
    """The client could not be configured: no credentials were found, or an option is invalid."""


class UnboundObjectError(TallyError):
    """A method of a returned object (`experiment.update(...)`, ...) was called on an object that no client
    fetched: it was unpickled (a pickle never carries a client), or built by hand or decoded outside a client.
    Nothing was sent; the message says how to fetch it."""


def _where(method: str | None, url: str | None) -> str:
    return f"{method} {url}" if method and url else ""


def _attempts(request: httpx.Request) -> int:
    """How many times `request` was sent: the retry transport numbers each retry in `X-Tally-Retry-Count` on the
    request it sends again, so the last number plus one (a request sent once carries none)."""
    count = request.headers.get(RETRY_COUNT_HEADER)
    return int(count) + 1 if count is not None and count.isdigit() else 1


def _after(attempts: int | None) -> str:
    """What `str()` adds when the error came after retries: the caller sees that the SDK already tried again."""
    return f" (after {attempts} attempts)" if attempts is not None and attempts > 1 else ""


class APIConnectionError(TallyError):
    """The request got no answer: the connection failed, was reset, or was refused."""

    def __init__(
        self, message: str, *, method: str | None = None, url: str | None = None, attempts: int | None = None
    ) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.attempts = attempts

    def __str__(self) -> str:
        where = _where(self.method, self.url)
        text = f"{where}: {self.message}" if where else self.message
        return text + _after(self.attempts)


class APITimeoutError(APIConnectionError):
    """The request took longer than its timeout (`timeout`, or `ingest_timeout` for ingestion)."""


class APIStatusError(TallyError):
    """The server answered with a non-2xx status. `response` is the `httpx.Response`."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None,
        request_id: str | None,
        method: str | None,
        url: str | None,
        details: Any,
        response: httpx.Response | None = None,
        attempts: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.method = method
        self.url = url
        self.details = details
        self.response = response
        self.attempts = attempts
        if response is not None:
            self.response_text, self.headers, self.body = answer_parts(response)

    @property
    def retry_after(self) -> float | None:
        """The server's `Retry-After`, in seconds, when it sent one."""
        if self.response is None:
            return None
        from tally._retry_policy import parse_retry_after

        return parse_retry_after(self.response.headers.get("retry-after"))

    def __str__(self) -> str:
        parts = [f"{_where(self.method, self.url)} -> {self.status_code}{_after(self.attempts)}".strip()]
        parts.append(f"{self.code}: {self.message}" if self.code else self.message)
        hint = _HINTS.get(self.code or "")
        if hint:
            parts.append(f"hint: {hint}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " | ".join(parts)


class BadRequestError(APIStatusError):
    """400: the request is malformed; `details` names the field path."""


class AuthenticationError(APIStatusError):
    """401: the token is missing, unknown or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: the token is valid but may not do this."""


class NotFoundError(APIStatusError):
    """404: no such resource in this organisation."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the current state (`code` says how)."""


class UnprocessableEntityError(APIStatusError):
    """422: for example an `Idempotency-Key` reused with another request."""


class RateLimitError(APIStatusError):
    """429: the key's request budget is spent for now; see `retry_after`."""


class InternalServerError(APIStatusError):
    """5xx: the server failed or is unavailable."""


class InsufficientStorageError(InternalServerError):
    """507: the server's storage is full and nothing was stored; not retried (waiting does not free a disk)."""


class ChecksumMismatchError(TallyError):
    """A downloaded artifact's bytes do not have the sha256 the server gave for it; nothing was written to the
    destination (its `.partial` file was removed). Download it again."""

    def __init__(self, message: str, *, expected: str, received: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.received = received


class ResponseValidationError(TallyError):
    """A 2xx response whose body does not match the spec (a server bug, or an SDK older than the server). The
    body that failed is in `response_text` and `body`; why it failed is `cause` (the decoder's error)."""

    cause: BaseException | None = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        request_id: str | None,
        method: str | None,
        url: str | None,
        response: httpx.Response | None = None,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.request_id = request_id
        self.method = method
        self.url = url
        self.cause = cause
        if response is not None:
            self.response_text, self.headers, self.body = answer_parts(response)

    def __str__(self) -> str:
        where = f"{_where(self.method, self.url)} -> {self.status_code}".strip()
        tail = f" | request_id={self.request_id}" if self.request_id else ""
        return f"{where} | response does not match the API spec: {self.message}{tail}"


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    507: InsufficientStorageError,
}


_UNSHAREABLE_HEADERS = frozenset({"content-encoding", "transfer-encoding"})
"""Dropped from a shareable response: its body is kept decoded, so these no longer describe it."""


def shareable_request(request: httpx.Request) -> httpx.Request:
    """A copy of `request` that may leave the process: method, masked URL, masked headers, no body (an ingest
    body can be megabytes, and says nothing the error does not)."""
    return httpx.Request(request.method, redact_url(request.url), headers=redact_headers(request.headers))


def shareable_response(response: httpx.Response) -> httpx.Response:
    """A copy of `response` for pickling: status, masked headers, the body as read, and a `shareable_request`.
    `error.response.json()`, `.headers` and `retry_after` read the same after unpickling."""
    try:
        content = response.content
    except httpx.ResponseNotRead:
        content = b""
    try:
        request: httpx.Request | None = shareable_request(response.request)
    except RuntimeError:  # a response built without a request
        request = None
    headers = redact_headers(response.headers)
    for name in _UNSHAREABLE_HEADERS:
        headers.pop(name, None)
    return httpx.Response(response.status_code, headers=headers, content=content, request=request)


def _scrub_chain(error: BaseException) -> None:
    """Put a `shareable_request` in place of the request held by each httpx exception `error` chains: pickling
    one of them (it pickles its `__dict__`) must not carry the key either."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, httpx.RequestError):
            held = getattr(link, "_request", None)  # `.request` raises when there is none
            if isinstance(held, httpx.Request):
                link.request = shareable_request(held)
        link = link.__cause__ or link.__context__


def error_from_response(response: httpx.Response) -> APIStatusError:
    """The exception for a non-2xx response. Never raises: any body, any status, any content type."""
    request = response.request
    header_id = response.headers.get("x-request-id")
    body = _parsed_body(response)
    if body is not None and body.message:
        message, code, details = body.message, body.code, body.details
        request_id = header_id or body.request_id
    else:
        text = ""
        with contextlib.suppress(Exception):
            text = " ".join(response.text.split())[:200]
        reason = response.reason_phrase or "error"
        message = f"{reason} (a non-JSON or unexpected error body: {redact_text(text)!r})" if text else reason
        code, details, request_id = None, None, header_id
    status = response.status_code
    cls = _BY_STATUS.get(status) or (InternalServerError if status >= 500 else APIStatusError)
    return cls(
        message,
        status_code=status,
        code=code,
        request_id=request_id,
        method=request.method,
        url=redact_url(request.url),
        details=details,
        response=response,
        attempts=_attempts(request),
    )


def _parsed_body(response: httpx.Response) -> ErrorBody | None:
    """The spec's `ErrorBody` of an error answer, or None for a body that is not one (or not read)."""
    import msgspec

    from tally._error_body import ERROR_DECODER

    try:
        return ERROR_DECODER.decode(response.content).error
    except (msgspec.DecodeError, msgspec.ValidationError, httpx.ResponseNotRead):
        return None


def validation_error(response: httpx.Response, cause: Exception) -> ResponseValidationError:
    """The exception for a 2xx body that the typed decoder refused with `cause`; raise it `from cause`."""
    return ResponseValidationError(
        str(cause),
        status_code=response.status_code,
        request_id=response.headers.get("x-request-id"),
        method=response.request.method,
        url=redact_url(response.request.url),
        response=response,
        cause=cause,
    )


@contextlib.contextmanager
def translate_transport_errors(request: httpx.Request) -> Iterator[None]:
    """Turn httpx's transport exceptions while sending `request` into Tally's, most specific first, always
    `raise ... from exc`. The URL is only turned into text when something failed."""
    try:
        yield
    except httpx.TimeoutException as exc:
        _scrub_chain(exc)
        raise APITimeoutError(
            redact_text(f"timed out ({type(exc).__name__}: {exc})"),
            method=request.method,
            url=redact_url(request.url),
            attempts=_attempts(request),
        ) from exc
    except httpx.TransportError as exc:
        _scrub_chain(exc)
        raise APIConnectionError(
            redact_text(f"connection failed ({type(exc).__name__}: {exc})"),
            method=request.method,
            url=redact_url(request.url),
            attempts=_attempts(request),
        ) from exc
