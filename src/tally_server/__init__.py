"""The Tally reference server: every operation of openapi/tally.yaml, on SQLite.

    from tally_server import start_server
    with start_server() as server:          # a background thread on a free loopback port
        ...                                 # server.url, server.api_key

`create_app(...)` gives the ASGI application itself; `tally serve` (or `python -m tally_server`) runs it.
"""

from __future__ import annotations

from tally_server._http import HttpLimits
from tally_server.app import create_app
from tally_server.runner import RunningServer, start_server
from tally_server.version import VERSION as __version__

__all__ = ["HttpLimits", "RunningServer", "__version__", "create_app", "start_server"]
