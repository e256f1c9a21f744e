"""The reference server as a real process, for tests that kill it, trace it or crash it on purpose."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx

from tally_server.process import ServerProcess as RunningProcess
from tally_server.process import start_server_process

__all__ = ["KEY", "ServerProcess"]

KEY = "tk_org_" + "P" * 32

# Runs the server's CLI after executing a test's hook in the same process (a monkeypatch, never production code).
_LAUNCHER = """
import sys
hook = sys.argv.pop(1)
exec(compile(hook, "<test hook>", "exec"))
from tally_server.cli import serve
serve(prog_name="tally-server-under-test")
"""


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
        self.logs = config_dir.parent / f"{config_dir.name}-logs"
        self.port = 0
        """0 until the first start, which lets the server pick one; a restart reuses it."""
        self.url = ""
        self.running: RunningProcess | None = None
        self.prefixed = False
        """Started under another command (strace): `process` is that command, the server its child."""

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.running.process if self.running is not None else None

    @property
    def log(self) -> Path:
        """The last start's stderr (the server's log)."""
        assert self.running is not None, "not started"
        return self.running.stderr_path

    def start(self, *, prefix: Sequence[str] = (), hook: str | None = None) -> ServerProcess:
        """Start it and wait until it answers. `prefix` runs it under another command (strace); `hook` is
        Python run inside the server process before it starts."""
        command = (
            [sys.executable, "-c", _LAUNCHER, hook]
            if hook is not None
            else [sys.executable, "-m", "tally_server"]
        )
        self.prefixed = bool(prefix)
        self.running = start_server_process(
            ["--db", str(self.db), "--log-level", "warning", *self.extra_args],
            logs=self.logs,
            port=self.port,
            env=self.env,
            command=command,
            prefix=prefix,
        )
        self.port, self.url = self.running.port, self.running.url
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no chance to finish what it was doing."""
        assert self.running is not None
        self.running.kill()

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
