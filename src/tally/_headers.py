"""The SDK's own header names, and one header of an `httpx.Headers`, read cheaply.

Imports nothing of ours, so the retry transport (which sends `RETRY_COUNT_HEADER`) and the errors (which read it
back to say how many attempts were made) both import it without a circle.

`httpx.Headers.get` decodes every header of the message on each call (it works out the encoding per value); a
small call reads four headers (Authorization and Idempotency-Key on the request; X-RateLimit-Limit and
X-Request-Id on the answer), which profiled at about 3% of its client CPU. This reads httpx's list of
`(raw name, lower-case name, value)` directly, falling back to `Headers.get` should httpx ever store them
otherwise (`tests/sdk/unit/test_pure.py` checks both agree).
"""

from __future__ import annotations

import httpx

__all__ = ["RETRY_COUNT_HEADER", "header"]

RETRY_COUNT_HEADER = "X-Tally-Retry-Count"
"""Sent on the n-th retry with value n by the retry transport; absent on a first attempt (every header costs
client CPU on every call, see `tally._platform`)."""


def header(headers: httpx.Headers, lower_name: bytes) -> str | None:
    """The first value of the header `lower_name` (lower-case, as bytes), or None."""
    try:
        items = headers._list
    except AttributeError:  # pragma: no cover - a future httpx
        value: str | None = headers.get(lower_name.decode("ascii"))
        return value
    for _raw, name, raw_value in items:
        if name == lower_name:
            return raw_value.decode("latin-1")
    return None
