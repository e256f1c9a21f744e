"""Fault-test fixtures: the reference server as a real process of its own, that a test can SIGKILL and restart
on the same port and database."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

KEY = "tk_org_" + "RunFaultsBootstrapKey0123456789a"[:32]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """`tally serve` in a process of its own, on a fixed port and database, that the test can SIGKILL."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = tmp_path / "server.sqlite3"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        self.env["TALLY_CONFIG_DIR"] = str(tmp_path / "server-config")
        self.env["TALLY_SERVER_BOOTSTRAP_KEY"] = KEY  # not --bootstrap-key: a command line is public (ps)
        self.log = tmp_path / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "tally_server", "--port", str(self.port), "--db", str(self.db)]
        command += ["--log-level", "warning"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/v1/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise AssertionError("the server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path)
    try:
        yield process
    finally:
        process.stop()
