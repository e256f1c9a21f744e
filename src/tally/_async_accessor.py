"""`Tally.async_`: the async surface of a sync client, and the lifecycle of its connection pools.

    with Tally() as client:
        experiment = client.experiments.create("baseline")

        async def main() -> None:
            same = await client.async_.experiments.get(experiment.id)

        asyncio.run(main())
        asyncio.run(main())          # a new loop: a new pool, the same client

`client.async_` is an `AsyncTally` that shares with the sync client everything but the connection pool: the
credentials and base URL, the settings and per-call option defaults (a `with_options` copy's `async_` has the
copy's), hooks, logger, proxy, limits, telemetry, httpx event hooks (the sync callables are called from async
wrappers), the response cache (`client.cache`) and the ingestion-key cache: one dict, so a key minted through one
side is used by the other.

The pool cannot be shared. An `httpx.AsyncClient`, and aiohttp's session under it, belongs to the event loop
that first used it: on another loop it fails ("Event loop is closed" after `asyncio.run`, encode/httpx#2473;
stalled handshakes across threads, encode/httpx#2058), and an aiohttp session left open when its loop dies warns
"Unclosed client session". So the rule is one pool per event loop:

- **Opened lazily**, on the first request made in a loop; `client.async_` itself is one object that any loop may
  use (consecutive `asyncio.run` calls, Jupyter's running loop, a loop in each of several threads). A loop's first
  request also sweeps out the pools of loops that were closed meanwhile.
- **Closed with its loop.** `asyncio.run`, `asyncio.Runner` and pytest-asyncio call `loop.shutdown_asyncgens()`
  before they close a loop; the pool registers an async generator on first use (`_keeper`) whose `finally`
  awaits the pool's `aclose()` then, inside its own loop, so nothing is left for the garbage collector to warn
  about. A loop closed by hand without `shutdown_asyncgens()` has its pool's sockets closed directly by the next
  sweep or by `client.close()` (`tally._lifecycle.close_pool_sockets`).
- **Closed by `client.close()`** (and by leaving `with Tally() as client:`), every pool still open, each the
  best way its loop allows: run to completion on a loop that is idle; awaited on a loop running in another thread
  (for up to `CLOSE_TIMEOUT` seconds); on this thread's running loop, when `close()` is called from code that
  runs inside it (Jupyter), what closes synchronously is closed at once and `aclose()` is scheduled there
  (`tally._lifecycle.release_async_pool`); sockets closed directly for a closed loop. Afterwards
  `client.async_`, and any call through an `async_` obtained before, raises `RuntimeError` saying the client is
  closed.
- `await client.async_.close()` (or `async with client.async_:`) releases the running loop's pool early; the next
  call in that loop opens another. It does not close the sync client or its response cache.

A sync client's `transport=` is shared only if it is also an `httpx.AsyncBaseTransport` (as `httpx.MockTransport`
is); a sync-only transport or an `http_client=` cannot serve a loop, and `client.async_` says so.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, Literal

import httpx

from tally._async._client import AsyncTally, _SharedState, open_pool, pool_headers
from tally._base import client_repr
from tally._errors import ConfigurationError
from tally._lifecycle import close_pool_sockets, release_async_pool

if TYPE_CHECKING:
    from tally._options import Settings
    from tally._sync._client import Tally

__all__ = ["CLOSE_TIMEOUT", "LoopPools", "async_view"]

CLOSE_TIMEOUT = 5.0
"""Seconds `client.close()` waits for a pool to close on a loop that runs in another thread."""


class _Entry:
    """One loop's pool, its ingestion-key lock, and the async generator that closes the pool with the loop."""

    __slots__ = ("done", "http", "keeper", "lock")

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.lock = asyncio.Lock()
        self.done = False  # set once the pool is being closed, so the keeper does not close it twice
        self.keeper: AsyncGenerator[None, None] | None = None

    def stop_keeper(self) -> None:
        """Finish the keeper without its loop (its `finally` awaits nothing once `done` is set), so that it is
        not handed to a closed loop's finaliser when collected."""
        keeper = self.keeper
        self.keeper = None
        if keeper is None:
            return
        closer: Any = keeper.aclose()
        try:
            closer.send(None)
        except (StopIteration, RuntimeError):  # finished; or being closed by its loop right now
            pass
        else:  # pragma: no cover - the keeper awaits nothing once done is set
            closer.close()


async def _keeper(
    pools: LoopPools, loop: asyncio.AbstractEventLoop, entry: _Entry
) -> AsyncGenerator[None, None]:
    """Suspended for the life of a loop's pool; `loop.shutdown_asyncgens()` resumes it to close the pool."""
    try:
        yield
    finally:
        pools.forget(loop, entry)
        if not entry.done:
            entry.done = True
            await entry.http.aclose()


class LoopPools:
    """The async pools of one sync client and its `with_options` copies: one per event loop (see the module)."""

    def __init__(self, client: Tally) -> None:
        state = client._core.state
        connection = state.connection
        transport = connection.transport
        if connection.custom_transport and not isinstance(transport, httpx.AsyncBaseTransport):
            given = "http_client" if transport is None else f"transport={type(transport).__name__}"
            self.refusal: str | None = (
                f"client.async_ cannot send through this Tally's {given}: a sync httpx client or transport "
                "serves no event loop. Pass a transport that is also an httpx.AsyncBaseTransport (as "
                "httpx.MockTransport is), or open an AsyncTally(transport=...) for your async code"
            )
        else:
            self.refusal = None
        self._transport = transport if isinstance(transport, httpx.AsyncBaseTransport) else None
        self._sync_state = state
        self._settings = client._core.settings
        self._connection = connection.replace(event_hooks=_awaitable_hooks(connection.event_hooks))
        self._lock = threading.Lock()
        self._entries: dict[asyncio.AbstractEventLoop, _Entry] = {}
        self.closed = False
        self.state = self._shared_state()

    def _shared_state(self) -> _SharedState:
        """The state every `async_` view sends through: the sync client's configuration and caches, with a pool
        and a key lock that resolve to the running loop's."""
        sync = self._sync_state
        state = _SharedState(
            sync.config,
            _LoopBoundClient(self, sync.config.base_url, self._settings.timeout),
            "Tally.async_",
            owns_pool=False,  # the sync client owns the pools: its close() closes them
            offline=sync.offline,
            connection=self._connection,
        )
        state.telemetry = sync.telemetry
        state.ingestion_keys = sync.ingestion_keys  # one dict: a key minted by either side serves both
        state.cache = sync.cache
        state.key_lock = _LoopLock(self)
        return state

    # ---- one pool per loop -------------------------------------------------------------------------------------
    async def entry(self) -> _Entry:
        """The running loop's pool, opened (and tied to the loop's shutdown) on first use."""
        loop = asyncio.get_running_loop()
        entry = self._entries.get(loop)
        if entry is not None:
            return entry
        with self._lock:
            self._check_open()
            stale = [(old, e) for old, e in self._entries.items() if old.is_closed()]
            for old, _ in stale:
                del self._entries[old]
            entry = _Entry(
                open_pool(
                    self._sync_state.config,
                    self._settings,
                    self._connection,
                    offline=self._sync_state.offline,
                    transport=self._transport,
                )
            )
            self._entries[loop] = entry
        for old, dead in stale:
            _release(dead, old)
        keeper = _keeper(self, loop, entry)
        entry.keeper = keeper
        await keeper.__anext__()  # its first step registers it with this loop's shutdown_asyncgens()
        return entry

    def forget(self, loop: asyncio.AbstractEventLoop, entry: _Entry) -> None:
        """Drop `loop`'s pool from the table (its loop is shutting down), if it is still `entry`."""
        with self._lock:
            if self._entries.get(loop) is entry:
                del self._entries[loop]

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError(
                "this Tally is closed, and so is client.async_: open a new client (keep the `with Tally() as "
                "client:` block around every use, async ones included)"
            )

    async def release_running_loop(self) -> None:
        """Close the running loop's pool now (`await client.async_.close()`); the next call opens another."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._entries.pop(loop, None)
        if entry is not None and not entry.done:
            entry.done = True
            await entry.http.aclose()
            entry.stop_keeper()

    def close(self) -> None:
        """Close every pool (the sync client's `close()`); see the module for how, per loop."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            entries = list(self._entries.items())
            self._entries.clear()
        for loop, entry in entries:
            _release(entry, loop)


def _release(entry: _Entry, loop: asyncio.AbstractEventLoop) -> None:
    """Close `entry`'s pool from outside its loop's flow, the best way the loop's state allows."""
    if entry.done:
        entry.stop_keeper()
        return
    entry.done = True
    try:
        current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    try:
        if loop.is_closed():
            close_pool_sockets(entry.http)
        elif loop is current:  # close() called from sync code inside this loop (Jupyter): it cannot wait, so
            release_async_pool(entry.http)  # close what closes at once, and schedule aclose() on the loop
        elif loop.is_running():  # another thread's loop
            asyncio.run_coroutine_threadsafe(entry.http.aclose(), loop).result(CLOSE_TIMEOUT)
        elif current is None:  # idle: nothing runs it, so run it here
            loop.run_until_complete(entry.http.aclose())
        else:  # idle, but this thread is inside another loop and cannot run it
            close_pool_sockets(entry.http)
    except Exception:  # a pool that will not close politely: close its sockets all the same
        close_pool_sockets(entry.http)
    finally:
        entry.stop_keeper()


class _LoopBoundClient(httpx.AsyncClient):
    """The `http` of the `async_` views' shared state: builds requests like any client's pool (base URL,
    headers, default timeout) and sends each through the running loop's pool."""

    def __init__(self, pools: LoopPools, base_url: str, timeout: Any) -> None:
        super().__init__(
            base_url=base_url,
            headers=pool_headers(),
            timeout=timeout,
            transport=_NoTransport(),
            trust_env=False,
        )
        self._pools = pools

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        entry = await self._pools.entry()
        return await entry.http.send(request, **kwargs)

    @property
    def is_closed(self) -> bool:
        return self._pools.closed

    async def aclose(self) -> None:
        await self._pools.release_running_loop()


class _NoTransport(httpx.AsyncBaseTransport):
    """The loop-bound client's own transport, never used: every request goes through a loop's pool."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:  # pragma: no cover
        raise RuntimeError("tally: client.async_ sends through its loop's pool, never through this transport")


class _LoopLock(asyncio.Lock):
    """The ingestion-key lock, one per loop: an `asyncio.Lock` belongs to the loop that first waits on it."""

    def __init__(self, pools: LoopPools) -> None:
        super().__init__()
        self._pools = pools

    async def acquire(self) -> Literal[True]:
        return await (await self._pools.entry()).lock.acquire()

    def release(self) -> None:
        entry = self._pools._entries.get(asyncio.get_running_loop())
        if entry is not None:
            entry.lock.release()

    def locked(self) -> bool:
        try:
            entry = self._pools._entries.get(asyncio.get_running_loop())
        except RuntimeError:
            return False
        return entry is not None and entry.lock.locked()


def _awaitable_hooks(
    hooks: Any,
) -> dict[str, list[Callable[..., Any]]] | None:
    """A sync client's httpx event hooks, as an async client wants them (each awaited: a plain callable is
    called, and awaited only if it returns an awaitable)."""
    if not hooks:
        return None

    def wrap(hook: Callable[..., Any]) -> Callable[..., Any]:
        async def call(*args: Any) -> None:
            result = hook(*args)
            if inspect.isawaitable(result):
                await result

        return call

    return {event: [wrap(hook) for hook in listed] for event, listed in hooks.items()}


class AsyncView(AsyncTally):
    """What `client.async_` returns: an `AsyncTally` over the sync client's shared state, whose `close()`
    releases the running loop's pool only (the sync client owns the rest)."""

    async def close(self) -> None:
        """Close the running loop's pool now; the next call in this loop opens another. `client.close()` on the
        sync client closes them all."""
        await self._core.state.http.aclose()

    def __repr__(self) -> str:
        state = self._core.state
        config = state.config
        return client_repr(state.name, config.api_key, config.base_url, config.credential_source)


def async_view(pools: LoopPools, settings: Settings) -> AsyncTally:
    """An `AsyncTally` over `pools` with `settings` (the sync client's, or a `with_options` copy's)."""
    pools._check_open()
    if pools.refusal is not None:
        raise ConfigurationError(pools.refusal)
    view = object.__new__(AsyncView)
    view._init(pools.state, settings)
    return view
