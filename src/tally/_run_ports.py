"""Which `SenderPort` a client hands its run (`client.run(...)`, `tally sync`).

A `Tally` hands a port over itself: the sender's requests go through the caller's own client (its pool,
transport or `http_client`, proxy, event hooks, logger, retry settings and ingestion keys). httpx's sync client
"can be shared between threads" (its docstring, since encode/httpx#2380). Keep the client open until the run is
closed: a run whose client is closed cannot send, and what it has not sent stays in its spool for `tally sync`.

An `AsyncTally` is bound to the event loop that uses it (an `httpx.AsyncClient`'s connections cannot serve
another loop: encode/httpx#2058), and a run's sender is a thread that must keep sending while that loop is busy
in a training step (and `run.close()`, a plain call on the loop's own thread, waits for it). So its run sends
from an event loop of its own, in a daemon thread, through a sibling `AsyncTally` with the caller's credentials,
settings, proxy, limits, event hooks and logger. A caller's `transport` or `http_client` belongs to the caller's
loop and cannot be shared with another; each such run says so in the client's log and sends through a pool of
its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tally._sync._run_port import RunPort

if TYPE_CHECKING:
    from tally._async._run_port import AsyncRunPort
    from tally.run._port import SenderPort

__all__ = ["port_for"]


def port_for(port: RunPort | AsyncRunPort) -> SenderPort:
    """The port a run sends through, from the client's own port over itself: that port for a `Tally`, a
    sibling on a loop of its own for an `AsyncTally` (see the module's docstring; `tally._loop_port`)."""
    if isinstance(port, RunPort):
        return port
    from tally._loop_port import LoopPort  # here: asyncio only for an async client's run

    return LoopPort(port.client)
