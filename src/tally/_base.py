"""Everything the sync and async clients share that does no I/O: options, request preparation, decoding.

The I/O-bearing code is written once, async, in `tally/_async/`; `scripts/unasync.py` derives `tally/_sync/`.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, TypeVar, overload

from tally._errors import error_from_response, validation_error
from tally._options import KEYED_METHODS, CallExtras
from tally._platform import user_agent
from tally._redact import redact
from tally._retry_policy import DEFAULT_MAX_RETRIES

if TYPE_CHECKING:
    import httpx
    import msgspec

__all__ = [
    "DEFAULT_INGEST_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "USER_AGENT",
    "client_repr",
    "decode",
    "new_idempotency_key",
    "prepare",
    "unset",
]

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
"""Seconds per attempt for ordinary calls: they take milliseconds, so 10 s is generous."""
DEFAULT_INGEST_TIMEOUT = 20.0
"""Seconds per attempt for ingestion and annotations: a 10,000-event batch written with `sync=True` takes well
under a second on the reference server; 20 s leaves room for a loaded server while the 30 s deadline
(`RetryPolicy.max_elapsed`) still allows a retry."""
USER_AGENT = user_agent()
_WRITE_METHODS = frozenset({"POST", "PATCH"})


def new_idempotency_key() -> str:
    """One key per logical call, minted before the first attempt and resent on every retry."""
    return f"tally-{uuid.uuid4()}"


_encoder: msgspec.json.Encoder | None = None


def _json_encoder() -> msgspec.json.Encoder:
    """msgspec's JSON encoder, made by the first request with a body: `from tally import Tally` does not import
    msgspec (issue 21's import target)."""
    global _encoder
    if _encoder is None:
        import msgspec

        _encoder = msgspec.json.Encoder()
    return _encoder


def prepare(
    operation: dict[str, Any],
    extras: CallExtras,
    *,
    token: str | None,
    idempotency_key: str | None = None,
    content: bytes | None = None,
) -> tuple[str, str, dict[str, Any] | None, dict[str, str], bytes | None]:
    """`(method, url, params, headers, body)` from a generated operation's `_get_kwargs(...)` and a call's extras.

    Adds the bearer token and, on POST, PATCH and DELETE, an Idempotency-Key (the caller's, the method's, or a
    new one).
    A JSON body is encoded with msgspec; `content` (already-encoded bytes) replaces it. The caller's
    `extra_query`, `extra_body` and `extra_headers` are applied last, so they win."""
    method = operation["method"].upper()
    headers: dict[str, str] = operation.get("headers") or {}
    params: dict[str, Any] | None = operation.get("params") or None
    extra_body = extras.extra_body
    if extra_body:
        if method not in _WRITE_METHODS:
            raise ValueError(
                f"extra_body applies to POST and PATCH only; this is {method} {operation['url']}"
            )
        import msgspec

        body = msgspec.json.decode(content) if content is not None else dict(operation.get("json") or {})
        body.update(extra_body)
        content = _json_encoder().encode(body)
    elif content is None and "json" in operation:
        content = _json_encoder().encode(operation["json"])
    if content is not None:
        headers["Content-Type"] = "application/json"
    if method in KEYED_METHODS:
        headers["Idempotency-Key"] = extras.idempotency_key or idempotency_key or new_idempotency_key()
    elif extras.idempotency_key is not None:
        raise ValueError(
            f"idempotency_key applies to POST, PATCH and DELETE only; this is {method} {operation['url']}"
        )
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if extras.extra_query:
        params = {**(params or {}), **extras.extra_query}
    if extras.extra_headers:
        headers.update(extras.extra_headers)
    return method, operation["url"], params, headers, content


@overload
def decode(decoder: msgspec.json.Decoder[T], response: httpx.Response) -> T: ...


@overload
def decode(decoder: None, response: httpx.Response) -> None: ...


def decode(decoder: msgspec.json.Decoder[T] | None, response: httpx.Response) -> T | None:
    """The typed body of a response: raises the mapped `APIStatusError` for non-2xx, `ResponseValidationError`
    for a 2xx body that does not match the spec. With `decoder=None` (an operation that answers without a body,
    such as 204 No Content) a 2xx answer is None and its body, if any, is not read."""
    status = response.status_code
    if not 200 <= status < 300:
        raise error_from_response(response)
    if decoder is None:
        return None
    import msgspec  # loaded already: `decoder` is msgspec's

    try:
        return decoder.decode(response.content)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise validation_error(response, exc) from exc


def unset(value: T | None) -> Any:
    """None as the generated client's UNSET (an absent parameter)."""
    if value is None:
        from tally_api.types import UNSET

        return UNSET
    return value


def client_repr(name: str, api_key: str, base_url: str, source: str) -> str:
    return f"{name}(base_url={base_url!r}, api_key={redact(api_key)!r}, credential_source={source!r})"
