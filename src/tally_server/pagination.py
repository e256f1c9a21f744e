"""Opaque keyset cursors: which list they belong to and the position after the last item, base64url JSON.

A cursor comes back from the client, so it is untrusted input: it is decoded against its list's exact shape
(msgspec, with the list's name as a literal, no other fields, a key of the right arity whose integers are in the
range of the database's 64-bit columns and whose strings hold no NUL). Anything else is a 400 naming `cursor`,
never a 500 from the database (an integer beyond int64) nor an empty page (PostgreSQL comparing it as numeric).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

import msgspec

from tally_server._spec import FieldError
from tally_server.errors import invalid_request

__all__ = ["decode_cursor", "encode_cursor"]

_INT64_MAX = 2**63 - 1
_Row = Annotated[int, msgspec.Meta(ge=1, le=_INT64_MAX)]  # a row's primary key or ingestion sequence number
_Step = Annotated[int, msgspec.Meta(ge=-1, le=_INT64_MAX)]  # a metric's step; -1 stands for "no step"
_Text = Annotated[str, msgspec.Meta(pattern="^[^\x00]*$")]  # a metric name or a metadata value

# The shape of each list's keyset position.
_SHAPES: dict[str, Any] = {
    "folders": tuple[_Row],
    "experiments": tuple[_Row],
    "metrics": tuple[_Text, _Step, _Row],  # (name, step, seq)
    "catalog": tuple[_Text],
    "values": tuple[_Text],
    "ingestion_keys": tuple[_Row],
    "annotations": tuple[_Row],
}
_DECODERS = {
    kind: msgspec.json.Decoder(
        msgspec.defstruct(
            f"{kind}_cursor",
            [("l", Literal[kind]), ("k", shape)],
            forbid_unknown_fields=True,
        )
    )
    for kind, shape in _SHAPES.items()
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
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        position: Any = _DECODERS[kind].decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):  # ValidationError is a DecodeError
        raise invalid_request(
            [FieldError("cursor", "not a cursor of this list; pass a next_cursor it returned")]
        ) from None
    return tuple(position.k)
