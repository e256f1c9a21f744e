"""Raw access to the HTTP response behind a call, for every method at once, without writing any of them twice.

`client.with_raw_response(client.experiments.get)(experiment_id)` calls the method and returns a `RawResponse`
with the parsed result and the status, headers and request id of the (last) HTTP response the call made. For a
`list()` method it fetches the first page: `parsed` is that `Page`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import httpx

from tally._raw_capture import CAPTURE, Capture
from tally._types import Page

__all__ = ["CAPTURE", "Capture", "RawPage", "RawResponse"]

T = TypeVar("T")


@dataclass(frozen=True)
class RawResponse(Generic[T]):
    """A call's parsed result with its HTTP response. For calls that send several requests (a large ingest),
    the response is the last one."""

    parsed: T
    http_response: httpx.Response

    @property
    def status_code(self) -> int:
        return self.http_response.status_code

    @property
    def headers(self) -> httpx.Headers:
        return self.http_response.headers

    @property
    def request_id(self) -> str | None:
        request_id: str | None = self.http_response.headers.get("x-request-id")
        return request_id

    @property
    def replayed(self) -> bool:
        """True when the server answered with a stored response for the same Idempotency-Key."""
        return bool(self.http_response.headers.get("idempotent-replayed") == "true")

    def __repr__(self) -> str:
        return (
            f"RawResponse(status_code={self.status_code}, request_id={self.request_id!r}, "
            f"parsed={self.parsed!r})"
        )


RawPage = RawResponse[Page[T]]
"""What `with_raw_response(client.<resource>.list)(...)` returns: the first page with its response."""
