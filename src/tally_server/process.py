"""The reference server as a child process: start `python -m tally_server`, learn its URL, wait until it answers.

One helper for everything that runs the server in a process of its own (the fault and lifecycle tests that kill
it, the benchmarks that measure it), so that they start it, wait for it and report its failure to start the same
way. It reads the URL the server announces on its first line of output (with `--port 0`, the port it was given,
so no port is picked in advance and then raced for), then waits for `/v1/health`. Imports nothing of `tally`.

    with start_server_process(["--db", str(db)], logs=tmp_path, env=env) as server:
        httpx.get(server.url + "/v1/health")
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "ServerProcess",
    "ServerStartError",
    "free_port",
    "is_healthy",
    "start_server_process",
    "wait_until_healthy",
]

_ANNOUNCED = re.compile(r"^Tally reference server on (http://\S+) ", re.MULTILINE)
_SERVER = (sys.executable, "-m", "tally_server")


class ServerStartError(RuntimeError):
    """The server exited, or did not answer in time; the message ends with the tail of its stderr."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now, for a caller that must know the URL before the server starts (a test that runs a client
    against a server that is still down). Otherwise pass `port=0` and read `ServerProcess.url`."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def is_healthy(url: str) -> bool:
    """Whether the server at `url` answers `/v1/health` with 200 now."""
    try:
        with urllib.request.urlopen(url + "/v1/health", timeout=2.0) as response:  # noqa: S310 - our own http URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class ServerProcess:
    """A started server process: `.url`, `.port`, `.process`, its output (`.stdout_path`, `.stderr_path`,
    `.stdout()`, `.stderr()`), `.stop()` (SIGTERM: a clean shutdown) and `.kill()` (SIGKILL); a context manager
    that stops it."""

    def __init__(self, process: subprocess.Popen[bytes], stdout_path: Path, stderr_path: Path) -> None:
        self.process = process
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self.url = ""
        self.port = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait (SIGKILL after `timeout` seconds); the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.process.wait(timeout))

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no chance to finish what it was doing."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:  # never its environment (which may hold a bootstrap key)
        return f"ServerProcess(pid={self.process.pid}, url={self.url!r})"

    def _failure(self, what: str) -> ServerStartError:
        tail = self.stderr()[-2000:] if self.stderr_path.exists() else ""
        return ServerStartError(f"the reference server {what}; its stderr ends:\n{tail}")


def wait_until_healthy(server: ServerProcess, timeout: float = 60.0) -> ServerProcess:
    """Learn the URL the server announces, then wait until it answers `/v1/health` with 200; ServerStartError
    (the server's stderr in its message) if it exits first or `timeout` seconds pass. Returns `server`."""
    deadline = time.monotonic() + timeout
    while not server.url:
        match = _ANNOUNCED.search(server.stdout())
        if match:
            server.url = match.group(1)
            server.port = int(server.url.rsplit(":", 1)[1])
            break
        if server.process.poll() is not None:
            raise server._failure(f"exited with status {server.process.returncode} before announcing its URL")
        if time.monotonic() > deadline:
            raise server._failure(f"announced no URL within {timeout:g} seconds")
        time.sleep(0.02)
    while not is_healthy(server.url):
        if server.process.poll() is not None:
            raise server._failure(f"exited with status {server.process.returncode}")
        if time.monotonic() > deadline:
            raise server._failure(f"did not answer {server.url}/v1/health within {timeout:g} seconds")
        time.sleep(0.02)
    return server


def start_server_process(
    args: Sequence[str] = (),
    *,
    logs: str | os.PathLike[str],
    port: int = 0,
    host: str = "127.0.0.1",
    env: Mapping[str, str] | None = None,
    command: Sequence[str] = _SERVER,
    prefix: Sequence[str] = (),
    timeout: float = 60.0,
    wait: bool = True,
) -> ServerProcess:
    """Start `python -m tally_server --host <host> --port <port> <args>` and, unless `wait=False`, return once it
    answers `/v1/health` (`wait_until_healthy`), stopping it if it does not.

    `port=0` lets the server pick a free port and announce it. `env` is its whole environment (this process's
    when None): pass a bootstrap key there, never in `args` (a command line is visible to every local user).
    Its stdout and stderr go to new files in the directory `logs`. `command` replaces `python -m tally_server`
    (a test's launcher that patches something first: it must run `tally_server.cli.serve`); `prefix` runs it
    under another command (`strace -f ...`).
    """
    directory = Path(logs)
    directory.mkdir(parents=True, exist_ok=True)
    handles = []
    for suffix in (".stdout", ".stderr"):
        fd, name = tempfile.mkstemp(prefix="server-", suffix=suffix, dir=directory)
        handles.append((os.fdopen(fd, "wb"), Path(name)))
    (out, stdout_path), (err, stderr_path) = handles
    with out, err:
        process = subprocess.Popen(
            [*prefix, *command, "--host", host, "--port", str(port), *args],
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    server = ServerProcess(process, stdout_path, stderr_path)
    if not wait:
        return server
    try:
        return wait_until_healthy(server, timeout)
    except BaseException:
        server.kill()
        raise
