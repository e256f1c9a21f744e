"""The SDK's optional client telemetry header, read for the log: `X-Tally-Client-Telemetry` (off by default in the
SDK, `tally._telemetry`) carries the previous request's id and its duration as the client measured it.

The server only logs the figures, at DEBUG, next to its own for that request id (the INFO access line), so that an
operator can tell network and client time from the server's. It never fails a request over the header: anything
that is not the documented shape, or is longer than `MAX_BYTES`, is ignored. Pure, no I/O.
"""

from __future__ import annotations

import re

import msgspec

__all__ = ["HEADER", "MAX_BYTES", "read_client_telemetry"]

HEADER = b"x-tally-client-telemetry"
MAX_BYTES = 512
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class _Metrics(msgspec.Struct):
    request_id: str
    request_duration_ms: int


class _Payload(msgspec.Struct):
    last_request_metrics: _Metrics


_decoder = msgspec.json.Decoder(_Payload)


def read_client_telemetry(value: bytes) -> tuple[str, int] | None:
    """`(request_id, request_duration_ms)` from the header's value, or None when it is not the documented shape."""
    if len(value) > MAX_BYTES:
        return None
    try:
        metrics = _decoder.decode(value).last_request_metrics
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if not _REQUEST_ID.fullmatch(metrics.request_id) or not 0 <= metrics.request_duration_ms < 10**9:
        return None
    return metrics.request_id, metrics.request_duration_ms
