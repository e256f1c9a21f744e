"""What an error keeps of the server's answer: its text, its headers (an immutable mapping) and its JSON body, with
no secret in any of them. Pure, no I/O.

An error outlives its request: it is printed, logged, pickled into another process. So what it keeps is shown
as `tally._redact` shows things: a Tally key anywhere in the text is masked (a 2xx body that broke the spec may
be a created ingestion key's, token and all), and secret headers (`Set-Cookie`, anything named like a token) keep
only their kind and last four characters. The body is decoded from that masked text: masking keeps JSON valid.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import httpx

from tally._redact import redact_headers, redact_text

__all__ = ["NO_HEADERS", "ResponseHeaders", "answer_parts"]


class ResponseHeaders(Mapping[str, str]):
    """A response's headers, read-only and case-insensitive (`headers["x-request-id"]`); a repeated header reads
    as its values joined by ", " (as `httpx.Headers` does), `get_list(name)` gives them apart. Pickles, hashes and
    compares like the mapping it is."""

    __slots__ = ("_items",)

    _items: tuple[tuple[str, str], ...]

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        object.__setattr__(self, "_items", tuple((str(name), str(value)) for name, value in items))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("ResponseHeaders is read-only")

    def __getitem__(self, name: str) -> str:
        values = self.get_list(name)
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def get_list(self, name: str) -> list[str]:
        """Every value of `name`, in the order the server sent them."""
        wanted = name.lower()
        return [value for key, value in self._items if key.lower() == wanted]

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for name, _ in self._items:
            lowered = name.lower()
            if lowered not in seen:
                seen.add(lowered)
                yield lowered

    def __len__(self) -> int:
        return len({name.lower() for name, _ in self._items})

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.get_list(name))

    def __hash__(self) -> int:
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (ResponseHeaders, (self._items,))

    def __repr__(self) -> str:
        return f"ResponseHeaders({dict(self.items())!r})"


NO_HEADERS = ResponseHeaders()
"""The headers of an error that got no answer (a connection error, a bad option)."""


def answer_parts(response: httpx.Response) -> tuple[str, ResponseHeaders, Any]:
    """`(response_text, headers, body)` of `response`, every secret masked; `body` is None when the text is not
    JSON. Never raises: a body that was never read reads as empty."""
    try:
        text = redact_text(response.text)
    except (httpx.ResponseNotRead, UnicodeDecodeError, LookupError):
        text = ""
    headers = ResponseHeaders(redact_headers(response.headers).multi_items())
    body: Any = None
    if text:
        try:
            body = json.loads(text)
        except ValueError:
            body = None
    return text, headers, body
