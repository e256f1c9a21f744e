"""The public sync client: `tally._sync._client.Tally` plus what only a sync client has, its async surface.

`tally._sync._client` is derived from the async client by `scripts/unasync.py`, so it can hold only what both
clients share. `client.async_` belongs to the sync client alone (an `AsyncTally` has no async twin to reach),
so it lives here, in a hand-written subclass; `tally.Tally` is this class. Its machinery, which needs asyncio, is
`tally._async_accessor`, imported on first use, so `from tally import Tally` still loads no asyncio.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Self, Unpack

from tally._options import ClientOptions
from tally._sync._client import Tally as _DerivedTally

if TYPE_CHECKING:
    from tally._async._client import AsyncTally
    from tally._async_accessor import LoopPools

__all__ = ["Tally"]


class _Pools:
    """The `LoopPools` of a client and its `with_options` copies, made on the first `async_` of any of them."""

    __slots__ = ("lock", "pools")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pools: LoopPools | None = None


class Tally(_DerivedTally):
    __doc__ = (_DerivedTally.__doc__ or "") + (
        """
    `client.async_` is this client's async surface, an `AsyncTally` sharing its configuration, credentials,
    hooks, option defaults, response cache and ingestion-key cache: `await client.async_.experiments.get(id)`.
    It opens one connection pool per event loop, on first use in that loop, and closes it when the loop shuts
    down (`asyncio.run`); `close()` closes this client's pool and every async pool still open
    (`tally._async_accessor`).
    """
    )

    @property
    def async_(self) -> AsyncTally:
        """This client's async surface: an `AsyncTally` with this client's configuration, credentials, hooks,
        per-call option defaults, response cache and ingestion-key cache, usable from any event loop:

            asyncio.run(main())        # async def main(): await client.async_.experiments.get(experiment_id)

        One connection pool per event loop, opened on first use in that loop and closed when the loop shuts
        down (`asyncio.run`, pytest-asyncio) or by this client's `close()`, whichever comes first. After
        `close()` it raises RuntimeError. See `tally._async_accessor` for the whole lifecycle."""
        view: AsyncTally | None = self.__dict__.get("_async_view")
        if view is None or view.is_closed:
            from tally._async_accessor import LoopPools, async_view

            box = self._pools_box()
            with box.lock:
                if box.pools is None:
                    box.pools = LoopPools(self)
            view = async_view(box.pools, self._core.settings)
            self.__dict__["_async_view"] = view
        return view

    def _pools_box(self) -> _Pools:
        box: _Pools | None = self.__dict__.get("_async_pools")
        if box is None:
            box = self.__dict__.setdefault("_async_pools", _Pools())
        return box

    def with_options(self, **options: Unpack[ClientOptions]) -> Self:
        clone = super().with_options(**options)
        clone.__dict__["_async_pools"] = self._pools_box()  # the copies' async pools are the client's
        return clone

    with_options.__doc__ = _DerivedTally.with_options.__doc__

    def close(self) -> None:
        """Close the connection pool (shared with every `with_options` copy), every async pool `client.async_`
        opened that is still open, and the response cache's file. A client passed in as `http_client` stays
        open: it is yours."""
        try:
            super().close()
        finally:
            box: _Pools | None = self.__dict__.get("_async_pools")
            pools = box.pools if box is not None else None
            if pools is not None:
                pools.close()
