"""JSON in and out. Requests are parsed strictly: UTF-8 only, no NaN or Infinity, no lone surrogates, numbers in
range, and no NUL character (U+0000) in any string or key (the contract's rule: PostgreSQL's text cannot hold it,
so neither backend accepts it). Responses are encoded with msgspec, which writes floats in their shortest
round-trip form."""

from __future__ import annotations

import json
import math
from collections import deque
from typing import Any

import msgspec

from tally_server._limits import MAX_BODY_DEPTH
from tally_server._spec import FieldError, format_path
from tally_server.errors import ApiError, envelope, invalid_request

__all__ = ["NUL_MESSAGE", "Raw", "decode_body", "dumps", "error_body", "loads_trusted", "nul_errors"]

NUL_MESSAGE = "contains the NUL character (U+0000), which no string of a request may hold; remove it"
_MAX_REPORTED = 20

Raw = msgspec.Raw
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def dumps(value: Any) -> bytes:
    """Encode a response body."""
    return _encoder.encode(value)


def error_body(error: ApiError, request_id: str) -> bytes:
    """The encoded error envelope of `error`, naming the request it answers."""
    return _encoder.encode(envelope(error.code, error.message, request_id, error.details))


def loads_trusted(data: bytes | str) -> Any:
    """Decode JSON that this server wrote itself."""
    return _decoder.decode(data)


def decode_body(data: bytes) -> Any:
    """Decode a request body; malformed JSON is a 400 `invalid_request` naming where it broke."""
    if not data.strip():
        raise invalid_request([FieldError("(body)", "a JSON body is required")])
    try:
        body = _decoder.decode(data)
    except (
        UnicodeDecodeError
    ):  # msgspec checks UTF-8 only inside strings, and raises this (a 500 if let through)
        raise invalid_request([FieldError("(body)", _not_utf8(data))]) from None
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
    if b"\\u0000" in data:  # JSON can only carry NUL escaped (a raw control character is malformed JSON)
        errors = nul_errors(body)
        if errors:
            raise invalid_request(errors)
    return body


def _not_utf8(data: bytes) -> str:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"is not valid UTF-8 (byte {exc.start} is {data[exc.start]:#04x}); send JSON encoded as UTF-8"
    return (
        "is not valid UTF-8; send JSON encoded as UTF-8"  # pragma: no cover - msgspec found what this did not
    )


def nul_errors(value: Any) -> list[FieldError]:
    """Every string and key of a decoded body that holds U+0000, by field path (a key is named with its NUL
    written `\\u0000`); at most 20."""
    errors: list[FieldError] = []
    queue: deque[tuple[Any, list[str | int]]] = deque([(value, [])])
    while queue and len(errors) < _MAX_REPORTED:
        node, parts = queue.popleft()
        if isinstance(node, str):
            if "\x00" in node:
                errors.append(FieldError(format_path(parts) or "(body)", NUL_MESSAGE))
        elif isinstance(node, dict):
            for key, child in node.items():
                if "\x00" in key:
                    shown = key.replace("\x00", "\\u0000")
                    errors.append(FieldError(format_path([*parts, shown]), f"is a key that {NUL_MESSAGE}"))
                queue.append((child, [*parts, key]))
        elif isinstance(node, list):
            queue.extend((child, [*parts, index]) for index, child in enumerate(node))
    return errors[:_MAX_REPORTED]


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
