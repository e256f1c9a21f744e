"""A reference server in a background thread, with a ready client: for the demo, notebooks and tests.

    with tally.embedded.embedded_tally() as client:        # a Tally talking to a fresh local server
        client.experiments.create("scratch")

    server = tally.embedded.start_embedded()              # or keep the server and make clients as needed
    client = server.client()
    ...
    server.stop()

This is the one place in `tally` that imports `tally_server`, and it does so only when called, so `import tally`
stays light and the SDK never depends on the server at import time.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tally._extras import require

if TYPE_CHECKING:
    from tally import AsyncTally, Tally
    from tally_server import RunningServer

__all__ = ["EmbeddedServer", "embedded_async_tally", "embedded_tally", "start_embedded"]


@dataclass(repr=False)
class EmbeddedServer:
    """A running reference server on a free loopback port, with a scratch database unless told otherwise."""

    url: str
    api_key: str
    _running: RunningServer = field(repr=False)

    def client(self, **options: Any) -> Tally:
        """A sync client for this server; options go to `Tally(...)`."""
        from tally import Tally

        return Tally(api_key=self.api_key, base_url=self.url, **options)

    def async_client(self, **options: Any) -> AsyncTally:
        """An async client for this server; options go to `AsyncTally(...)`."""
        from tally import AsyncTally

        return AsyncTally(api_key=self.api_key, base_url=self.url, **options)

    def stop(self) -> None:
        """Shut the server down and release its database."""
        self._running.stop()

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:  # never the key itself
        return f"EmbeddedServer(url={self.url!r})"


def start_embedded(
    *,
    db: str | os.PathLike[str] | None = None,
    rate_limit: float | None = None,
    validate_responses: bool = False,
) -> EmbeddedServer:
    """Start the reference server in a background thread and return once it answers.

    `db=None` gives a scratch in-memory database that vanishes with the server; pass a path to keep the data.
    """
    start_server = require("tally_server", "server").start_server
    running = start_server(db=db, rate_limit=rate_limit, validate_responses=validate_responses)
    return EmbeddedServer(url=running.url, api_key=running.api_key, _running=running)


@contextlib.contextmanager
def embedded_tally(**client_options: Any) -> Iterator[Tally]:
    """A `Tally` client on a fresh embedded server; both are closed on exit."""
    with start_embedded() as server, server.client(**client_options) as client:
        yield client


@contextlib.asynccontextmanager
async def embedded_async_tally(**client_options: Any) -> AsyncIterator[AsyncTally]:
    """An `AsyncTally` client on a fresh embedded server; both are closed on exit."""
    with start_embedded() as server:
        async with server.async_client(**client_options) as client:
            yield client
