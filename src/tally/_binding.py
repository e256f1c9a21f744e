"""Objects that act: how an object a client returned knows that client, and what it says when it does not.

`Acting` is the base of the objects with methods (`tally.Experiment`, `tally.Folder`, `tally.Annotation` and their
async twins in `tally._async._objects`). The resource that decoded an object binds it to the client's core
(`bind`, `bind_page`); its methods find the core again with `bound_core` and call the resource method of the same
name, so each call has one implementation.

The binding lives in the object's `__dict__` (msgspec's `dict=True`), never in a field: equality, hashing,
`to_dict()`, msgspec encoding and pickling see the fields alone, so two fetches of one row compare equal whichever
client fetched them. A pickle carries no client: an unpickled object is unbound and remembers that it was
unpickled, so that its methods say so. `copy.copy` and `copy.deepcopy` give the object itself (it is deeply
immutable), binding included.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from tally_api_types import Page

from tally._errors import UnboundObjectError

__all__ = ["Acting", "bind", "bind_page", "bind_result", "bound_core"]

T = TypeVar("T")

_CORE = "_tally_core"
"""The key of the binding in an object's `__dict__`."""
_UNPICKLED = "_tally_unpickled"


class Acting:
    """Mixed in first (before the generated Struct), so that its `__reduce__` wins over msgspec's."""

    __slots__ = ()

    def _fetch_hint(self) -> str:
        """The call that fetches this object again, for the unbound message."""
        raise NotImplementedError

    def __reduce__(self) -> tuple[Any, ...]:
        return (_unpickled, (type(self), msgspec.structs.asdict(self)))  # type: ignore[arg-type]

    def __copy__(self: T) -> T:
        return self

    def __deepcopy__(self: T, memo: Any) -> T:
        return self


def _unpickled(cls: type[Acting], fields: dict[str, Any]) -> Acting:
    obj = cls(**fields)
    obj.__dict__[_UNPICKLED] = True
    return obj


def bind(obj: T, core: object) -> T:
    """`obj`, bound to `core` (the client that fetched it)."""
    obj.__dict__[_CORE] = core
    return obj


def bind_page(page: Page[T], core: object) -> Page[T]:
    """`page`, each of its items bound to `core`."""
    for item in page.data:
        item.__dict__[_CORE] = core
    return page


def bind_result(result: Any, core: object) -> Any:
    """Whatever `client.request(...)` decoded, with each object that acts bound to `core`."""
    items = result.data if isinstance(result, Page) else (result,)
    for item in items:
        if isinstance(item, Acting):
            item.__dict__[_CORE] = core
    return result


def bound_core(obj: Acting) -> Any:
    """The core `obj` is bound to; `UnboundObjectError`, saying why and how to fetch it, when it has none."""
    core = obj.__dict__.get(_CORE)
    if core is not None:
        return core
    name, fetch = type(obj).__name__, obj._fetch_hint()
    if obj.__dict__.get(_UNPICKLED):
        raise UnboundObjectError(
            f"this {name} was unpickled and is not bound to a client: fetch it again with {fetch}"
        )
    raise UnboundObjectError(
        f"this {name} was not fetched by a client (built by hand or decoded directly), so it is not bound to "
        f"one: fetch it with {fetch}"
    )
