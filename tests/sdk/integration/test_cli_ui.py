"""`tally ui`: a one-time login link into the dashboard of a running server, or of the local server it starts."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import httpx
import pytest
from click.testing import CliRunner

from tally.cli import cli
from tally_server import RunningServer
from tally_server.process import free_port

pytestmark = pytest.mark.integration

LINK = re.compile(r"(http://\S+/login\?token=tl_\S+)")


def test_ui_prints_a_one_time_link_to_a_running_server(live_server: RunningServer) -> None:
    result = CliRunner().invoke(
        cli, ["--api-key", live_server.api_key, "--base-url", live_server.url, "ui", "--no-browser"]
    )
    assert result.exit_code == 0, result.output
    assert live_server.api_key not in result.output
    found = LINK.search(result.output)
    assert found is not None
    with httpx.Client() as browser, httpx.Client() as other:
        opened = browser.get(found.group(1))
        assert opened.status_code == 303
        assert browser.get(live_server.url + "/v1/auth/status").json()["key_kind"] == "org"
        assert other.get(found.group(1)).status_code == 401  # spent


# `python -m tally.cli`, with Ctrl-C as a terminal's foreground process has it (SIGINT handled by Python's default
# handler and not blocked), whatever this worker passes on: a `tally ui` that ignored Ctrl-C hung a fresh-clone run
# twice, only under the whole suite. Set by the child itself, not by a `preexec_fn`: that makes subprocess fork in
# Python, in a worker that may hold JAX's threads (the frameworks tests), whose at-fork hook warns of a deadlock.
_TALLY_AS_IN_A_TERMINAL = (
    "import runpy, signal, sys; "
    "signal.signal(signal.SIGINT, signal.default_int_handler); "
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
    "sys.argv[0] = 'tally'; "
    "runpy.run_module('tally.cli', run_name='__main__', alter_sys=True)"
)


def _signal_state(pid: int) -> str:
    """The process's blocked, ignored, caught and pending signal masks and its state (/proc), for a failure."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError as error:
        return str(error)
    wanted = ("State", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")
    return "; ".join(line.replace("\t", " ") for line in lines if line.split(":")[0] in wanted)


def test_ui_starts_the_local_server_when_nothing_answers(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "TALLY_CONFIG_DIR": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "TALLY_BASE_URL": f"http://127.0.0.1:{port}",
    }
    env.pop("TALLY_API_KEY", None)
    command = [sys.executable, "-c", _TALLY_AS_IN_A_TERMINAL, "ui", "--no-browser"]
    # Its own process group (the server it starts is in it), so that a hang is cleaned up; its output (and the
    # server's) is read to the end on a thread, so that a full pipe can never be what holds either up.
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    seen: list[str] = []

    def drain(stream: IO[str]) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=drain, args=(process.stdout,), daemon=True)
    reader.start()
    try:
        while (line := lines.get(timeout=60)) is not None:
            seen.append(line)
            if (found := LINK.search(line)) is not None:
                break
        else:
            pytest.fail("no link printed:\n" + "".join(seen))
        assert "starting the local server" in "".join(seen)
        with httpx.Client() as browser:
            assert browser.get(found.group(1)).status_code == 303
            assert browser.get(f"http://127.0.0.1:{port}/").status_code == 200
        assert (tmp_path / "data" / "tally" / "server.sqlite3").exists()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            signals = _signal_state(process.pid)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
            rest = []
            while (line := lines.get(timeout=5)) is not None:
                rest.append(line)
            pytest.fail(
                f"tally ui did not stop within 30 s of Ctrl-C (its signals then: {signals}); its output:\n"
                + "".join(seen + rest)
            )
        finally:
            reader.join(10)
            process.stdout.close()
    with pytest.raises(httpx.ConnectError):  # Ctrl-C stopped the server it started
        httpx.get(f"http://127.0.0.1:{port}/v1/health")
