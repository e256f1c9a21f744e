"""How a client reaches the server besides its credentials and settings: proxy, pool limits, event hooks, logger.

Kept with the client's shared state so that a sibling client (`AsyncTally._sibling`, for a run's sender) is built
exactly like the caller's. Pure data, no I/O.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["Connection", "EventHooks"]

EventHooks = Mapping[str, list[Callable[..., Any]]]


@dataclass(frozen=True)
class Connection:
    """The constructor's `proxy`, `limits`, `event_hooks` and `logger`; `custom_transport` is True when the
    caller passed a `transport` or an `http_client` (which cannot be rebuilt, only shared); `transport` is the
    caller's `transport` (a sync `Tally`'s `async_` can share one that is also an `httpx.AsyncBaseTransport`)."""

    proxy: str | httpx.Proxy | None = None
    limits: httpx.Limits | None = None
    event_hooks: EventHooks | None = None
    logger: logging.Logger | None = None
    custom_transport: bool = False
    transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None

    def replace(self, **changes: Any) -> Connection:
        return dataclasses.replace(self, **changes)
