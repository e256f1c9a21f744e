"""What happens to a client that is garbage-collected without `close()`: warn, naming it, and release its pool.

The sync client closes its httpx client. An async client cannot await in a finaliser, so its pool is released
without awaiting: with an event loop running in this thread, `aclose()` is scheduled on it; otherwise the
sockets are closed directly (aiohttp's connector closes its transports synchronously; httpcore's pool is walked to
its sockets). Both reach into the transports' internals, so each step is guarded and best-effort; the warning
tells the user to close the client, which is the real fix.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:  # the sync client imports this module: it must not load asyncio
    import asyncio

__all__ = ["close_pool_sockets", "release_async_pool", "unclosed_message"]

_PENDING: set[asyncio.Task[None]] = set()


def unclosed_message(client: str) -> str:
    return (
        f"{client} was garbage-collected without close(); its connection pool was released now. Close clients "
        "with `with Tally() as client:` / `async with AsyncTally() as client:` or call close()."
    )


def release_async_pool(http: httpx.AsyncClient) -> None:
    """Release an `httpx.AsyncClient`'s pool without awaiting (from a finaliser)."""
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    running = loop is not None and not loop.is_closed()
    if loop is not None and running:
        task = loop.create_task(http.aclose())
        _PENDING.add(task)
        task.add_done_callback(_PENDING.discard)
    _walk(http, raw_sockets=not running)


def close_pool_sockets(http: httpx.AsyncClient) -> None:
    """Close an `httpx.AsyncClient`'s connections directly: for a pool whose event loop is closed, or not this
    thread's, so that nothing can be awaited on it (a sync `Tally`'s `async_`, `tally._async_accessor`)."""
    _walk(http, raw_sockets=True)


def _walk(http: httpx.AsyncClient, *, raw_sockets: bool) -> None:
    node: Any = getattr(http, "_transport", None)
    seen: set[int] = set()
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        with contextlib.suppress(Exception):
            _close_sockets(node, raw_sockets=raw_sockets)
        node = getattr(node, "_inner", None)


def _close_sockets(node: Any, *, raw_sockets: bool) -> None:
    session = getattr(node, "client", None)
    connector = getattr(session, "connector", None)
    if connector is not None and not connector.closed:
        if raw_sockets:  # aiohttp's _close() does nothing once its loop is closed
            for idle in list(getattr(connector, "_conns", {}).values()):
                for protocol, _ in idle:
                    _close_socket(getattr(protocol, "transport", None))
        connector._close()  # with its loop open: closes its transports synchronously
    if not raw_sockets:  # the scheduled aclose() closes httpcore's connections properly
        return
    pool = getattr(node, "_pool", None)
    for connection in list(getattr(pool, "_connections", ())):  # httpcore
        _close_socket(getattr(getattr(connection, "_connection", None), "_network_stream", None))


def _close_socket(stream: Any) -> None:
    """Close the connection under an asyncio transport, or under an httpcore stream, after its loop is gone."""
    transport = getattr(
        getattr(stream, "_stream", None), "_transport", stream
    )  # httpcore -> anyio -> asyncio
    finish = getattr(transport, "_call_connection_lost", None)
    if finish is not None:
        # asyncio's own last step of closing a transport (it runs from call_soon, which a closed loop refuses):
        # closes the socket and detaches the protocol, so neither warns again when collected.
        finish(None)
        return
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is not None:
        # asyncio hands out a `TransportSocket`, which has no close(): close the socket it wraps.
        getattr(sock, "_sock", sock).close()
