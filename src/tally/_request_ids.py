"""Request ids on returned objects, without a field on any type: a side table keyed by object identity.

`tally.request_id(obj)` (or `obj._request_id` on every public type) is the `X-Request-Id` of the response the
object was decoded from. The table holds a weak reference to each object, so an entry lives exactly as long as
its object; the types only need to be weak-referenceable (`weakref=True` on their msgspec base), which keeps
this working if the public types are later generated instead of written by hand.
"""

from __future__ import annotations

import weakref
from typing import Any

__all__ = ["remember", "request_id"]

_TABLE: dict[int, tuple[weakref.ref[Any], str]] = {}


def _drop(key: int) -> Any:
    def callback(_ref: weakref.ref[Any]) -> None:
        entry = _TABLE.get(key)
        if entry is not None and entry[0] is _ref:
            del _TABLE[key]

    return callback


def remember(obj: Any, value: str | None) -> None:
    """Record `value` as the request id of `obj` (a no-op for None or an object that takes no weak reference)."""
    if value is None:
        return
    key = id(obj)
    try:
        ref = weakref.ref(obj, _drop(key))
    except TypeError:
        return
    _TABLE[key] = (ref, value)


def request_id(obj: object) -> str | None:
    """The `X-Request-Id` of the response `obj` came from (a value a Tally method returned), or None."""
    entry = _TABLE.get(id(obj))
    if entry is None or entry[0]() is not obj:
        return None
    return entry[1]
