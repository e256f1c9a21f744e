"""Everything the sync and async clients share that does no I/O: options, request preparation, decoding.

The I/O-bearing code is written once, async, in `tally/_async/`; `scripts/unasync.py` derives `tally/_sync/`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import httpx
import msgspec

from tally import _types as t
from tally._credentials import redact
from tally._errors import error_from_response, validation_error
from tally._types import NotGiven

__all__ = [
    "DEFAULT_INGEST_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "MAX_RETRIES_EXTENSION",
    "USER_AGENT",
    "Decoders",
    "Options",
    "client_repr",
    "decode",
    "new_idempotency_key",
    "prepare",
    "unset",
]

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
DEFAULT_INGEST_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 2
MAX_RETRIES_EXTENSION: Final = "tally_max_retries"
"""The `request.extensions` key that carries a call's `max_retries` to the retry transport."""
USER_AGENT = "tally-python/0.1.0"
_WRITE_METHODS = frozenset({"POST", "PATCH"})

TimeoutArg = float | httpx.Timeout | None


def _timeout_dict(timeout: TimeoutArg) -> dict[str, float | None]:
    value = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
    return value.as_dict()


@dataclass(frozen=True, slots=True)
class Options:
    """A client's per-call settings; `with_options` makes a copy with some changed."""

    timeout: TimeoutArg
    ingest_timeout: TimeoutArg
    max_retries: int

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, not {self.max_retries}")

    def replace(
        self,
        timeout: TimeoutArg | NotGiven,
        ingest_timeout: TimeoutArg | NotGiven,
        max_retries: int | NotGiven,
    ) -> Options:
        return Options(
            timeout=self.timeout if isinstance(timeout, NotGiven) else timeout,
            ingest_timeout=self.ingest_timeout if isinstance(ingest_timeout, NotGiven) else ingest_timeout,
            max_retries=self.max_retries if isinstance(max_retries, NotGiven) else max_retries,
        )

    def extensions(self, *, ingest: bool = False) -> dict[str, Any]:
        return {
            "timeout": _timeout_dict(self.ingest_timeout if ingest else self.timeout),
            MAX_RETRIES_EXTENSION: self.max_retries,
        }


def new_idempotency_key() -> str:
    """One key per logical call, minted before the first attempt and resent on every retry."""
    return f"tally-{uuid.uuid4()}"


_encoder = msgspec.json.Encoder()


def prepare(
    operation: dict[str, Any],
    *,
    token: str | None,
    idempotency_key: str | None = None,
    content: bytes | None = None,
) -> tuple[str, str, dict[str, Any] | None, dict[str, str], bytes | None]:
    """`(method, url, params, headers, body)` from a generated operation's `_get_kwargs(...)`.

    Adds the bearer token and, on POST and PATCH, an Idempotency-Key (the caller's, or a new one). A JSON body
    is encoded with msgspec; `content` (already-encoded bytes) replaces it."""
    method = operation["method"].upper()
    headers: dict[str, str] = operation.get("headers") or {}
    if content is None and "json" in operation:
        content = _encoder.encode(operation["json"])
    if content is not None:
        headers["Content-Type"] = "application/json"
    if method in _WRITE_METHODS:
        headers["Idempotency-Key"] = idempotency_key or new_idempotency_key()
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return method, operation["url"], operation.get("params") or None, headers, content


def decode(decoder: msgspec.json.Decoder[T], response: httpx.Response) -> T:
    """The typed body of a response: raises the mapped `APIStatusError` for non-2xx, `ResponseValidationError`
    for a 2xx body that does not match the spec."""
    status = response.status_code
    if not 200 <= status < 300:
        raise error_from_response(response)
    try:
        return decoder.decode(response.content)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise validation_error(response, str(exc)) from exc


def unset(value: T | None) -> Any:
    """None as the generated client's UNSET (an absent parameter)."""
    if value is None:
        from tally_api.types import UNSET

        return UNSET
    return value


class Decoders:
    """One msgspec decoder per response type, built once."""

    health = msgspec.json.Decoder(t.Health)
    auth_status = msgspec.json.Decoder(t.AuthStatus)
    folder = msgspec.json.Decoder(t.Folder)
    folder_page = msgspec.json.Decoder(t.Page[t.Folder])
    experiment = msgspec.json.Decoder(t.Experiment)
    experiment_page = msgspec.json.Decoder(t.Page[t.Experiment])
    ingest_result = msgspec.json.Decoder(t.IngestResult)
    metric_point_page = msgspec.json.Decoder(t.Page[t.MetricPoint])
    compare_result = msgspec.json.Decoder(t.CompareResult)
    catalog_page = msgspec.json.Decoder(t.Page[t.CatalogEntry])
    metadata_value_page = msgspec.json.Decoder(t.Page[t.MetadataValueCount])
    ingestion_key = msgspec.json.Decoder(t.IngestionKey)
    created_ingestion_key = msgspec.json.Decoder(t.CreatedIngestionKey)
    ingestion_key_page = msgspec.json.Decoder(t.Page[t.IngestionKey])
    annotation = msgspec.json.Decoder(t.Annotation)
    annotation_page = msgspec.json.Decoder(t.Page[t.Annotation])


def client_repr(name: str, api_key: str, base_url: str, source: str) -> str:
    return f"{name}(base_url={base_url!r}, api_key={redact(api_key)!r}, credential_source={source!r})"
