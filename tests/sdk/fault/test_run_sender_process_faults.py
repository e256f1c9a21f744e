"""A run's sender process (`sender="process"`) with real processes killed: the training process SIGKILLed (its
sender process sends what it had logged, without `tally sync`), and the sender process SIGKILLed (the run starts
another, or, killed too often, says so and `tally sync` stores the rest). Each ends with: every value logged is
stored exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tally import Tally
from tally._sync._run_port import RunPort
from tally.run import FlushTimeoutError, spool_status, sync_spools
from tally.run._sender_process import RESTARTS, SenderProcess
from tally.run._spool import SpoolLock
from tally_server import RunningServer

from ..conftest import unique
from .conftest import ServerProcess, training_env
from .test_run_faults import assert_stored_once, client_for, kill_training_at_random, log_steps

pytestmark = pytest.mark.integration


def wait_until_free(spool: Path, timeout: float = 60.0) -> Path:
    """The run's spool directory, once no process holds its lock (the sender process has ended)."""
    [directory] = [path for path in spool.iterdir() if path.is_dir()]
    deadline = time.monotonic() + timeout
    lock = SpoolLock(directory)
    while not lock.acquire():
        assert time.monotonic() < deadline, "the sender process still holds the spool"
        time.sleep(0.05)
    lock.release()
    return directory


@pytest.mark.parametrize("seed", [1, 2])
def test_a_killed_training_process_s_sender_process_sends_what_it_logged(
    server: ServerProcess, tmp_path: Path, seed: int
) -> None:
    server.start()
    name = unique(f"killed-proc-{seed}")
    experiment_id, returned = kill_training_at_random(server, tmp_path, name, seed, sender="process")
    wait_until_free(tmp_path / "spool")  # the sender process saw its parent die, sent the rest, and ended
    with client_for(server.url) as client:
        stored_steps = {p.step for p in client.metrics.list(experiment_id, name="m/0", page_size=1000)}
        # Stored with no `tally sync`. The kill may land between log() returning and the marker's write.
        assert len(stored_steps) in (returned, returned + 1)
        assert_stored_once(client, experiment_id, len(stored_steps))
        # What is left for `tally sync` is at most a torn last record: it stores nothing twice.
        sync_spools(RunPort(client, owned=False), tmp_path / "spool")
        assert_stored_once(client, experiment_id, len(stored_steps))


def test_a_killed_sender_process_is_started_again_and_the_run_stores_everything_once(
    live_server: RunningServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Killed idle (all stored), and killed while sending: each time the next child goes on from the spool's
    progress file, and the run ends with nothing for `tally sync`."""
    with Tally(api_key=live_server.api_key, base_url=live_server.url) as client:
        run = client.run(unique("killed-sender"), sender="process")
        sender = run._sender
        assert isinstance(sender, SenderProcess)
        log_steps(run, range(500))
        run.flush(timeout=30)
        first = sender.pid
        os.kill(first, signal.SIGKILL)  # idle: everything logged is stored
        wait_for_restarts(sender, 1)
        # Nothing more to send: caught up at once, by the progress the last child recorded.
        run.flush(timeout=30)
        assert sender.pid != first
        log_steps(run, range(500, 3000))
        os.kill(sender.pid, signal.SIGKILL)  # (most likely) while sending
        run.flush(timeout=30)
        assert sender.restarts == 2
        status = run.status()
        assert (status.stored, status.pending, status.rejected, status.last_error) == (30_000, 0, 0, None)
        assert run.close().pending == 0
        assert "started another (1 of at most 3 a run)" in caplog.text
        assert_stored_once(client, run.id or "", 3000)
        assert client.experiments.get(run.id or "").status == "completed"
    assert spool_status(tmp_path / "spool") == []


def test_a_killed_sender_process_is_started_again_at_once_while_the_loop_only_logs(
    live_server: RunningServer, tmp_path: Path
) -> None:
    """No `status()`, `flush()` or `close()` after the kill, and a slow loop (no segment fills): what it logs is
    stored all the same, since the run's watcher starts another child at once."""
    with Tally(api_key=live_server.api_key, base_url=live_server.url) as client:
        run = client.run(unique("killed-sender-slow"), sender="process")
        sender = run._sender
        assert isinstance(sender, SenderProcess)
        log_steps(run, range(10))
        first = sender.pid
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 60
        for step in range(10, 40):
            log_steps(run, range(step, step + 1))
            time.sleep(0.02)
        while len(list(client.metrics.list(run.id or "", name="m/0", page_size=1000))) < 40:
            assert time.monotonic() < deadline, "what the loop logged after the kill was not stored"
            time.sleep(0.05)
        assert sender.restarts == 1 and sender.pid != first  # noqa: PT018
        run.close()
        assert_stored_once(client, run.id or "", 40)
    assert spool_status(tmp_path / "spool") == []


def test_a_sender_process_killed_more_often_than_it_is_restarted_is_said_and_tally_sync_stores_the_rest(
    live_server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Tally(api_key=live_server.api_key, base_url=live_server.url) as client:
        run = client.run(unique("killed-sender-often"), sender="process", flush_timeout=2)
        sender = run._sender
        assert isinstance(sender, SenderProcess)
        log_steps(run, range(500))
        run.flush(timeout=30)
        for restarts in range(1, RESTARTS + 1):
            os.kill(sender.pid, signal.SIGKILL)
            wait_for_restarts(sender, restarts)
            assert run.status().last_error is None  # started again
        os.kill(sender.pid, signal.SIGKILL)
        log_steps(run, range(500, 1000))
        began = time.monotonic()
        with pytest.raises(FlushTimeoutError, match=f"sender process ended .*after {RESTARTS} restarts"):
            run.flush(timeout=30)
        assert time.monotonic() - began < 10  # said at once, not after the timeout
        status = run.status()
        assert "tally sync" in (status.last_error or "")
        assert status.pending == 5000
        run.close()
        assert "tally sync" in capsys.readouterr().err
        [report] = sync_spools(RunPort(client, owned=False), tmp_path / "spool")
        assert report.state == "synced"
        assert_stored_once(client, run.id or "", 1000)
        assert client.experiments.get(run.id or "").status == "completed"
    assert spool_status(tmp_path / "spool") == []


def wait_for_restarts(sender: SenderProcess, restarts: int, timeout: float = 30.0) -> None:
    """Until the run's watcher has started the killed child again (nothing else asks it to)."""
    deadline = time.monotonic() + timeout
    while sender.restarts < restarts:
        assert time.monotonic() < deadline, f"the sender process was not started again ({sender.restarts})"
        time.sleep(0.01)
    assert sender.restarts == restarts


FORKING_SCRIPT = """
import os, sys
from tally import Tally
from tally.run._sender_process import SenderProcess

with Tally() as client:
    run = client.run(sys.argv[1], sender="process")
    sender = run._sender
    assert isinstance(sender, SenderProcess)
    for step in range(100):
        run.log({f"m/{i}": step + i / 10 for i in range(10)}, step=step)
    pid = os.fork()
    if pid == 0:  # the fork: its run's status, then leave without the parent's teardown
        code = 1
        try:
            child = sender.pid
            said = run.status().last_error or ""  # (a slow server's timeout may show: not what this checks)
            code = 0 if (sender.restarts, sender.pid, sender._death) == (0, child, None) else 2
            code = code or (3 if "sender process ended" in said else 0)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    print("fork exit code", os.waitstatus_to_exitcode(status))
    closed = run.close()
    print("pending", closed.pending, "restarts", sender.restarts, "experiment", run.id)
"""


def test_a_fork_of_the_training_process_never_starts_a_sender_process_of_its_own(
    live_server: RunningServer, tmp_path: Path
) -> None:
    """A DataLoader's worker is a fork of the training process: there the sender process is not its child, and
    may look ended. Asking its run's status there starts nothing and says nothing of a death. (Most forks inherit
    the watcher's hold on the child's `waitpid` lock, and see it running; `revive`'s check of the process covers
    a fork made in the moment between two children. In a process of its own: this one may hold libraries that
    refuse a fork, such as JAX after the Keras tests.)"""
    done = subprocess.run(
        [sys.executable, "-c", FORKING_SCRIPT, unique("forked")],
        env=training_env(tmp_path, live_server.url, live_server.api_key),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "fork exit code 0", done.stdout + done.stderr
    _, pending, _, restarts, _, experiment_id = lines[1].split()
    assert (pending, restarts) == ("0", "0")
    with Tally(api_key=live_server.api_key, base_url=live_server.url) as client:
        assert_stored_once(client, experiment_id, 100)
