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

__all__ = ["decode_cursor", "decode_experiments_cursor", "encode_cursor", "encode_experiments_cursor"]

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
    "artifacts": tuple[_Row],
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


# listExperiments' cursors also carry the `order_by` they were made for ("o"; absent in those of 1.3.0 and
# earlier, which were all by creation): each order's own key shape.
_Phase = Annotated[int, msgspec.Meta(ge=0, le=1)]  # 0: an experiment with the metric; 1: one without it
_EXPERIMENT_SHAPES: dict[str, Any] = {
    "experiments": tuple[_Row],  # (pk,)
    "experiments_by_name": tuple[_Text, _Row],  # (name, pk)
    "experiments_by_metric": tuple[_Phase, float | None, _Row],  # (phase, value or None, pk)
}
_EXPERIMENT_DECODERS = {
    family: msgspec.json.Decoder(
        msgspec.defstruct(
            f"{family}_cursor",
            [("l", Literal["experiments"]), ("k", shape), ("o", str, "created_at")],
            forbid_unknown_fields=True,
        )
    )
    for family, shape in _EXPERIMENT_SHAPES.items()
}


def encode_experiments_cursor(order_by: str, key: tuple[Any, ...] | None) -> str | None:
    if key is None:
        return None
    position: dict[str, Any] = {"l": "experiments", "k": list(key)}
    if order_by != "created_at":
        position["o"] = order_by
    return _b64(msgspec.json.encode(position))


def decode_experiments_cursor(order_by: str, family: str, cursor: str | None) -> tuple[Any, ...] | None:
    """The position of a listExperiments cursor made for `order_by`; 400 naming `cursor` for any other,
    a cursor of another order included (its key would mean something else)."""
    if cursor is None:
        return None
    position: Any = _decode(_EXPERIMENT_DECODERS[family], cursor)
    if position.o != order_by:
        raise invalid_request(
            [
                FieldError(
                    "cursor", f"was made for order_by={position.o}, not {order_by}; start again without it"
                )
            ]
        )
    key = tuple(position.k)
    if family == "experiments_by_metric" and (key[0] == 0) == (key[1] is None):
        raise _not_a_cursor()
    return key


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _not_a_cursor() -> Exception:
    return invalid_request(
        [FieldError("cursor", "not a cursor of this list; pass a next_cursor it returned")]
    )


def _decode(decoder: msgspec.json.Decoder[Any], cursor: str) -> Any:
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        return decoder.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):  # ValidationError is a DecodeError
        raise _not_a_cursor() from None


def encode_cursor(kind: str, key: tuple[Any, ...] | None) -> str | None:
    if key is None:
        return None
    return _b64(msgspec.json.encode({"l": kind, "k": list(key)}))


def decode_cursor(kind: str, cursor: str | None) -> tuple[Any, ...] | None:
    """The position a cursor of list `kind` points after; 400 `invalid_request` for anything else."""
    if cursor is None:
        return None
    position: Any = _decode(_DECODERS[kind], cursor)
    return tuple(position.k)
