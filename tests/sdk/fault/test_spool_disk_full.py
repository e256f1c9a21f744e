"""A full disk under the spool (issue 20, item 4): a training process whose `TALLY_SPOOL_DIR` is a 2 MiB tmpfs.

The spool reserves its space before it writes through its memory map, so a full disk is an error the run's
`on_full` policy handles (wait for the sender to free segments, drop the oldest, or raise `SpoolFullError` naming
the directory and the fix), never a SIGBUS that kills the process. Each case runs the training loop in a process
of its own, as a user's would be. Mounting needs root (CI runs as root); without it the tests are skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tally import Tally
from tally.run import spool_status
from tally_server import RunningServer

from ..conftest import unique

pytestmark = pytest.mark.integration

TRAINING = r"""
import json, sys
from tally import Tally

mode, policy, steps, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
with Tally(offline=(mode == "offline")) as client:
    run = client.run(name, on_full=policy, flush_timeout=120)
    for step in range(steps):
        run.log({f"m/{i}": step + i / 10 for i in range(10)}, step=step)
    status = run.close()
print(json.dumps({"logged": status.logged, "stored": status.stored, "dropped": status.dropped,
                  "pending": status.pending, "experiment_id": status.experiment_id}))
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, unmounted afterwards."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs these as root)")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], check=False).returncode != 0:
            with contextlib.suppress(OSError):
                subprocess.run(["umount", "-l", str(mount)], check=False)


def train(
    spool: Path, tmp_path: Path, *, mode: str, policy: str, steps: int, server: RunningServer | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    env.update(TALLY_SPOOL_DIR=str(spool / "spool"), TALLY_CONFIG_DIR=str(tmp_path / "config"))
    if server is not None:
        env.update(TALLY_API_KEY=server.api_key, TALLY_BASE_URL=server.url)
    return subprocess.run(
        [sys.executable, "-c", TRAINING, mode, policy, str(steps), unique(f"disk-{mode}-{policy}")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_offline_on_a_full_disk_log_raises_spool_full_naming_the_directory(
    small_disk: Path, tmp_path: Path
) -> None:
    done = train(small_disk, tmp_path, mode="offline", policy="block", steps=200_000)
    assert done.returncode != -signal.SIGBUS, "killed by SIGBUS"
    assert done.returncode == 1, done.stderr
    [error] = [
        line for line in done.stderr.splitlines() if line.startswith("tally.run._spool.SpoolFullError")
    ]
    assert error.startswith("tally.run._spool.SpoolFullError: no space left on the device of the spool "), (
        error
    )
    assert str(small_disk / "spool") in error
    assert "TALLY_SPOOL_DIR" in error
    assert "tally sync" in error
    # What log() had taken is in the spool, whole, for `tally sync`.
    [report] = spool_status(small_disk / "spool")
    assert report.pending > 100_000


def test_drop_oldest_on_a_full_disk_drops_segments_and_goes_on(small_disk: Path, tmp_path: Path) -> None:
    done = train(small_disk, tmp_path, mode="offline", policy="drop_oldest", steps=100_000)
    assert done.returncode != -signal.SIGBUS, "killed by SIGBUS"
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["logged"] == 1_000_000
    assert 0 < status["dropped"] < status["logged"]
    assert status["pending"] == status["logged"] - status["dropped"]
    assert "no space left" in done.stderr


def test_block_on_a_full_disk_waits_for_the_sender_and_stores_everything(
    small_disk: Path, tmp_path: Path, live_server: RunningServer
) -> None:
    steps = 20_000  # about 2.7 MiB of spool: more than the disk holds
    done = train(small_disk, tmp_path, mode="online", policy="block", steps=steps, server=live_server)
    assert done.returncode != -signal.SIGBUS, "killed by SIGBUS"
    assert done.returncode == 0, done.stderr
    assert "log() waits for the sender" in done.stderr  # the disk did fill up
    status = json.loads(done.stdout)
    assert (status["logged"], status["stored"], status["dropped"]) == (steps * 10, steps * 10, 0)
    with Tally(api_key=live_server.api_key, base_url=live_server.url) as client:
        assert client.experiments.get(status["experiment_id"]).status == "completed"
        stored = client.metric_catalog.list(experiment_id=status["experiment_id"])
        assert sum(entry.count for entry in stored) == steps * 10
