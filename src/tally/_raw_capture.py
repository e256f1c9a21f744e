"""What `client.with_raw_response(...)` captures: the last HTTP response of the call, in a context variable that
every request reads. Apart from `tally._raw` (the `RawResponse` it returns, which names the public types) so that
the client's request path imports only this (issue 21's import target)."""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

__all__ = ["CAPTURE", "Capture"]


class Capture:
    """Holds the last response of the call being captured."""

    __slots__ = ("response",)

    def __init__(self) -> None:
        self.response: httpx.Response | None = None


CAPTURE: contextvars.ContextVar[Capture | None] = contextvars.ContextVar("tally_capture", default=None)
