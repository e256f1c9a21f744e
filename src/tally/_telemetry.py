"""Client telemetry, off by default (stripe-python's `X-Stripe-Client-Telemetry`): each request may carry how long
the client measured the previous one to take, so the service can tell network and client time from its own.

Turned on by `Tally(telemetry=True)` or `TALLY_TELEMETRY=1` (the argument wins). Then each request sends

    X-Tally-Client-Telemetry: {"last_request_metrics":{"request_id":"req_...","request_duration_ms":12}}

and nothing else: `request_id` is the `X-Request-Id` the server itself gave the previous answer this client
(and its `with_options` copies) received, and `request_duration_ms` the whole milliseconds its final attempt took
as the client measured it, from sending the request to reading the body. No name, host, user, key, path, body,
platform or SDK detail is in it (the `User-Agent` and `X-Tally-Client-User-Agent` headers that every request
carries, with or without telemetry, say the SDK version and platform). Each figure is sent once, with the next
request; a request that got no answer (a connection error) reports nothing. The reference server logs the
figures at DEBUG and otherwise ignores the header (the contract's description says every operation accepts it).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping

import httpx

__all__ = ["TELEMETRY_ENV", "TELEMETRY_HEADER", "Telemetry", "telemetry_enabled"]

TELEMETRY_HEADER = "X-Tally-Client-Telemetry"
TELEMETRY_ENV = "TALLY_TELEMETRY"
_ON = frozenset({"1", "true", "yes", "on"})
_OFF = frozenset({"", "0", "false", "no", "off"})
_SANE_REQUEST_ID = (
    r"[A-Za-z0-9._:-]{1,128}"  # compiled on first use (`re`'s cache): telemetry is off by default
)
"""The request ids the reference server makes or accepts; anything else is not sent back."""


def telemetry_enabled(telemetry: bool | None, env: Mapping[str, str] | None = None) -> bool:
    """The argument when given, else `TALLY_TELEMETRY` (1/true/yes/on or 0/false/no/off), else off."""
    from tally._errors import ConfigurationError

    if telemetry is not None:
        if not isinstance(telemetry, bool):
            raise ConfigurationError(f"telemetry must be True or False, not {telemetry!r}")
        return telemetry
    value = (os.environ if env is None else env).get(TELEMETRY_ENV, "").strip().lower()
    if value not in _ON | _OFF:
        raise ConfigurationError(f"{TELEMETRY_ENV}={value!r} is not a switch: set it to 1 (on) or 0 (off)")
    return value in _ON


def _encode(request_id: str, duration_ms: int) -> bytes:
    """`{"last_request_metrics": {"request_id": ..., "request_duration_ms": ...}}` as msgspec writes it (imported
    here: a client with telemetry off, the default, does not need it)."""
    import msgspec

    return msgspec.json.encode(
        {"last_request_metrics": {"request_id": request_id, "request_duration_ms": duration_ms}}
    )


class Telemetry:
    """The last answer's figures of one client (shared by its `with_options` copies), handed out once each."""

    __slots__ = ("_last", "_lock")

    def __init__(self) -> None:
        self._last: str | None = None
        self._lock = threading.Lock()  # a client is shared by threads; never held across an await

    def record(self, response: httpx.Response) -> None:
        """Keep `response`'s request id and the client-measured time of the attempt that got it."""
        request_id = response.headers.get("x-request-id")
        if not request_id or not re.fullmatch(_SANE_REQUEST_ID, request_id):
            return
        try:
            duration_ms = round(response.elapsed.total_seconds() * 1000)
        except RuntimeError:  # no `elapsed`: the response did not come through the retry transport
            return
        value = _encode(request_id, duration_ms).decode()
        with self._lock:
            self._last = value

    def take(self) -> str | None:
        """The header value for the next request (then forgotten), or None when there is nothing new."""
        with self._lock:
            value, self._last = self._last, None
        return value
