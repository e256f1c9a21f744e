"""JSON in and out. Requests are parsed strictly (no NaN or Infinity, no lone surrogates, numbers in range);
responses are encoded with msgspec, which writes floats in their shortest round-trip form."""

from __future__ import annotations

import json
import math
from collections import deque
from typing import Any

import msgspec

from tally_server._limits import MAX_BODY_DEPTH
from tally_server._spec import FieldError, format_path
from tally_server.errors import ApiError, invalid_request

__all__ = ["Raw", "decode_body", "dumps", "loads_trusted"]

Raw = msgspec.Raw
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def dumps(value: Any) -> bytes:
    """Encode a response body."""
    return _encoder.encode(value)


def loads_trusted(data: bytes | str) -> Any:
    """Decode JSON that this server wrote itself."""
    return _decoder.decode(data)


def decode_body(data: bytes) -> Any:
    """Decode a request body; malformed JSON is a 400 `invalid_request` naming where it broke."""
    if not data.strip():
        raise invalid_request([FieldError("(body)", "a JSON body is required")])
    try:
        return _decoder.decode(data)
    except RecursionError:  # msgspec gives up near 1,000 levels; the contract allows far fewer
        raise invalid_request(
            [FieldError("(body)", f"is nested more than {MAX_BODY_DEPTH} levels deep; flatten it")]
        ) from None
    except msgspec.DecodeError as exc:
        text = str(exc)
        if "out of range" in text:
            path = _non_finite_path(data)
            if path is not None:
                raise invalid_request([FieldError(path, "must be a finite number")]) from None
        message = text if len(text) <= 200 else text[:197] + "..."
        raise ApiError(
            400,
            "invalid_request",
            f"The body is not valid JSON: {message}",
            {"errors": [{"path": "(body)", "message": f"not valid JSON: {message}"}]},
        ) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _non_finite_path(data: bytes) -> str | None:
    """Where the first number too large for a double sits (msgspec reports no object keys, so parse again)."""
    try:
        value = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    queue: deque[tuple[Any, list[str | int]]] = deque([(value, [])])
    while queue:
        node, parts = queue.popleft()
        if isinstance(node, float) and not math.isfinite(node):
            return format_path(parts) or "(body)"
        if isinstance(node, dict):
            queue.extend((child, [*parts, key]) for key, child in node.items())
        elif isinstance(node, list):
            queue.extend((child, [*parts, index]) for index, child in enumerate(node))
    return None
