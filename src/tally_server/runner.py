"""The reference server in a background thread: for the SDK's tests, the demo, notebooks and pytest
fixtures."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette

from tally_server._http import HttpLimits, bind_socket, uvicorn_config
from tally_server.app import create_app
from tally_server.contents import DEFAULT_MAX_ARTIFACT_BYTES
from tally_server.process import is_healthy

__all__ = ["RunningServer", "start_server"]


class RunningServer:
    """A server started by `start_server`: `.url`, `.api_key` (an org key), `.stop()`; a context manager."""

    def __init__(
        self, app: Starlette, server: Any, thread: threading.Thread, host: str, port: int, api_key: str
    ):
        self.app = app
        self.host = host
        self.port = port
        self.url = f"http://{_url_host(host)}:{port}"
        self.api_key = api_key
        self._server = server
        self._thread = thread
        self._stopped = False

    @property
    def repository(self) -> Any:
        """The server's storage (for tests that need to reach behind the HTTP API)."""
        return self.app.state.repo

    def stop(self, timeout: float = 30.0) -> None:
        """Shut down cleanly: stop accepting, finish requests in flight, join the thread, close the
        database."""
        if self._stopped:
            return
        self._stopped = True
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():  # pragma: no cover - only when a request hangs
            self._server.force_exit = True
            self._thread.join(5.0)
        self.app.state.repo.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:  # never the key
        return f"RunningServer(url={self.url!r})"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def start_server(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    db: str | os.PathLike[str] | None = None,
    bootstrap_key: str | None = None,
    rate_limit: float | None = None,
    validate_responses: bool = False,
    http_limits: HttpLimits | None = None,
    artifacts_dir: str | os.PathLike[str] | None = None,
    max_artifact_bytes: int | None = None,
) -> RunningServer:
    """Start the reference server in a daemon thread and return once it answers `/v1/health`.

    `port=0` picks a free port (see `.url`). `db=None` is a scratch database deleted on stop. `.api_key` is an
    org API key: `bootstrap_key` when given, else one generated now. `http_limits` sets the request deadlines,
    the header size cap and the concurrency limit (`tally_server.HttpLimits`; its defaults when None).
    `artifacts_dir` and `max_artifact_bytes` as for `create_app`.
    """
    app = create_app(
        db=db,
        bootstrap_key=bootstrap_key,
        rate_limit=rate_limit,
        validate_responses=validate_responses,
        artifacts_dir=artifacts_dir,
        max_artifact_bytes=DEFAULT_MAX_ARTIFACT_BYTES if max_artifact_bytes is None else max_artifact_bytes,
    )
    api_key: str | None = app.state.api_key
    if api_key is None:  # an existing database: mint a key for this caller
        api_key = app.state.repo.bootstrap(None, mint_if_existing=True).new_token
    assert api_key is not None
    try:
        sock = bind_socket(host, port)
    except OSError:
        app.state.repo.close()
        raise
    real_port = int(sock.getsockname()[1])
    config = uvicorn_config(app, limits=http_limits, log_level="warning", timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # pragma: no cover - reported to the caller below
            failure.append(exc)
        finally:
            sock.close()

    thread = threading.Thread(target=serve, name=f"tally-server-{real_port}", daemon=True)
    thread.start()
    running = RunningServer(app, server, thread, host, real_port, api_key)
    deadline = time.monotonic() + 30.0
    while True:
        if failure or not thread.is_alive():
            running.stop()
            raise RuntimeError(f"the Tally server did not start: {failure[0] if failure else 'it stopped'}")
        if server.started and is_healthy(running.url):
            return running
        if time.monotonic() > deadline:
            running.stop()
            raise RuntimeError("the Tally server did not answer /v1/health within 30 seconds")
        time.sleep(0.01)
