"""The reference server as a real process, for tests that kill it, trace it or crash it on purpose."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

__all__ = ["KEY", "ServerProcess", "free_port"]

KEY = "tk_org_" + "P" * 32

# Runs the server's CLI after executing a test's hook in the same process (a monkeypatch, never production code).
_LAUNCHER = """
import sys
hook = sys.argv.pop(1)
exec(compile(hook, "<test hook>", "exec"))
from tally_server.cli import serve
serve(prog_name="tally-server-under-test")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    """The processes `pid` started (Linux's /proc; none elsewhere, where the plain SIGTERM is used)."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class ServerProcess:
    """`python -m tally_server` on a file database, started and stopped (or killed) by a test."""

    def __init__(self, db: Path, config_dir: Path, *, extra_args: Sequence[str] = ()) -> None:
        self.db = db
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        self.env["TALLY_CONFIG_DIR"] = str(config_dir)
        # The key travels in the environment: a command line is visible to every local user.
        self.env["TALLY_SERVER_BOOTSTRAP_KEY"] = KEY
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.prefixed = False
        """Started under another command (strace): `process` is that command, the server its child."""
        self.log = config_dir.parent / f"server-{self.port}.log"

    def start(self, *, prefix: Sequence[str] = (), hook: str | None = None) -> ServerProcess:
        """Start it and wait until it answers. `prefix` runs it under another command (strace); `hook` is
        Python run inside the server process before it starts."""
        python = (
            [sys.executable, "-c", _LAUNCHER, hook]
            if hook is not None
            else [sys.executable, "-m", "tally_server"]
        )
        args = [
            "--port",
            str(self.port),
            "--db",
            str(self.db),
            "--log-level",
            "warning",
        ]
        self.prefixed = bool(prefix)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*prefix, *python, *args, *self.extra_args],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError("the server did not start")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no chance to finish what it was doing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        """SIGTERM to the server, which shuts down cleanly. Under a prefix the signal goes to the server itself:
        strace ignores SIGTERM while it runs a command (it waited out the 30 s below), and ends with its tracee."""
        if self.process is not None and self.process.poll() is None:
            traced = _children(self.process.pid) if self.prefixed else []
            if traced:
                for pid in traced:
                    os.kill(pid, signal.SIGTERM)
            else:
                self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, token: str = KEY) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0)
