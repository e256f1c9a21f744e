"""Fault-test fixtures: the reference server as a real process of its own, that a test can SIGKILL and restart
on the same port and database."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tally_server.process import ServerProcess as RunningProcess
from tally_server.process import free_port, start_server_process

KEY = "tk_org_" + "RunFaultsBootstrapKey0123456789a"[:32]

# Runs the server's CLI after a test's hook in the same process (a monkeypatch, never production code).
_LAUNCHER = """
import sys
hook = sys.argv.pop(1)
exec(compile(hook, "<test hook>", "exec"))
from tally_server.cli import serve
serve(prog_name="tally-server-under-test")
"""


def training_env(tmp_path: Path, url: str, api_key: str = KEY) -> dict[str, str]:
    """The environment of a training process a test starts: this one's without its Tally settings, pointed at
    `url`, with its spool and config under `tmp_path`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    env.update(TALLY_API_KEY=api_key, TALLY_BASE_URL=url, TALLY_SPOOL_DIR=str(tmp_path / "spool"))
    env["TALLY_CONFIG_DIR"] = str(tmp_path / "config")
    return env


class ServerProcess:
    """`tally serve` in a process of its own, on a fixed port and database, that the test can SIGKILL. The port
    is chosen at construction: a test may point a client at the server before it first starts."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = tmp_path / "server.sqlite3"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        self.env["TALLY_CONFIG_DIR"] = str(tmp_path / "server-config")
        self.env["TALLY_SERVER_BOOTSTRAP_KEY"] = KEY  # not --bootstrap-key: a command line is public (ps)
        self.logs = tmp_path / "server-logs"
        self.running: RunningProcess | None = None

    def start(self, *, hook: str | None = None) -> None:
        """Start it and wait until it answers; `hook` is Python run inside the server process first (e.g. a
        monkeypatch that SIGKILLs the server at a chosen moment)."""
        command = [sys.executable, "-c", _LAUNCHER, hook] if hook is not None else None
        self.running = start_server_process(
            ["--db", str(self.db), "--log-level", "warning"],
            logs=self.logs,
            port=self.port,
            env=self.env,
            **({"command": command} if command is not None else {}),
        )

    def wait_dead(self, timeout: float = 30.0) -> int:
        """Wait for the server process to end on its own (a hook that SIGKILLed it); its exit status."""
        assert self.running is not None
        status = self.running.process.wait(timeout)
        self.running = None
        return status

    def kill(self) -> None:
        assert self.running is not None
        self.running.kill()
        self.running = None

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path)
    try:
        yield process
    finally:
        process.stop()
