"""One header of an `httpx.Headers`, read cheaply.

`httpx.Headers.get` decodes every header of the message on each call (it works out the encoding per value); a
small call reads four headers (Authorization and Idempotency-Key on the request; X-RateLimit-Limit and
X-Request-Id on the answer), which profiled at about 3% of its client CPU. This reads httpx's list of
`(raw name, lower-case name, value)` directly, falling back to `Headers.get` should httpx ever store them
otherwise (`tests/sdk/unit/test_pure.py` checks both agree).
"""

from __future__ import annotations

import httpx

__all__ = ["header"]


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
