"""Opaque keyset cursors: which list they belong to and the position after the last item, base64url JSON."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec

from tally_server._spec import FieldError
from tally_server.errors import invalid_request

__all__ = ["decode_cursor", "encode_cursor"]

# The shape of each list's keyset position.
_SHAPES: dict[str, tuple[type, ...]] = {
    "folders": (int,),
    "experiments": (int,),
    "metrics": (str, int, int),
    "catalog": (str,),
    "values": (str,),
    "ingestion_keys": (int,),
    "annotations": (int,),
}


def encode_cursor(kind: str, key: tuple[Any, ...] | None) -> str | None:
    if key is None:
        return None
    raw = msgspec.json.encode({"l": kind, "k": list(key)})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(kind: str, cursor: str | None) -> tuple[Any, ...] | None:
    """The position a cursor of list `kind` points after; 400 `invalid_request` for anything else."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = msgspec.json.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        data = None
    shape = _SHAPES[kind]
    if isinstance(data, dict) and data.get("l") == kind and isinstance(data.get("k"), list):
        key = data["k"]
        if len(key) == len(shape) and all(type(v) is t for v, t in zip(key, shape, strict=True)):
            return tuple(key)
    raise invalid_request([FieldError("cursor", "not a cursor of this list; pass a next_cursor it returned")])
