"""A run's sender process (`sender="process"`) with real processes killed: the training process SIGKILLed (its
sender process sends what it had logged, without `tally sync`), and the sender process SIGKILLed (the run says
so, and `tally sync` stores the rest). Each ends with: every value logged is stored exactly once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tally import Tally
from tally._sync._run_port import RunPort
from tally.run import FlushTimeoutError, spool_status, sync_spools
from tally.run._spool import SpoolLock
from tally_server import RunningServer

from ..conftest import unique
from .conftest import ServerProcess
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


def test_a_killed_sender_process_is_said_and_tally_sync_stores_the_rest(
    live_server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Tally(api_key=live_server.api_key, base_url=live_server.url) as client:
        run = client.run(unique("killed-sender"), sender="process", flush_timeout=2)
        log_steps(run, range(500))
        run.flush(timeout=30)
        os.kill(run._sender.pid, signal.SIGKILL)  # type: ignore[union-attr]
        log_steps(run, range(500, 1000))
        began = time.monotonic()
        with pytest.raises(FlushTimeoutError, match="sender process ended"):
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
