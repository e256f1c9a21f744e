"""A training process SIGKILLed while its sender uploads an artifact. With a thread sender, the upload is cut and
`tally sync` uploads it; with a sender process, that process finishes it. Either way the artifact is stored exactly
once, the server shows no half file at any point, and the metrics logged before it were stored first."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tally._sync._run_port import RunPort
from tally.run import spool_status, sync_spools

from ..conftest import unique
from .conftest import ServerProcess, training_env
from .test_run_faults import client_for
from .test_run_sender_process_faults import wait_until_free

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).with_name("artifact_script.py")
SIZE = 96 * 1024 * 1024  # large enough that the upload is caught in flight, small enough for a few seconds


def start_and_kill_mid_upload(server: ServerProcess, tmp_path: Path, sender: str) -> tuple[str, str, Path]:
    """Start the training process, SIGKILL it once its upload has begun arriving; the experiment's id, the
    artifact's sha256 and the server's content directory."""
    server.start()
    contents = Path(str(server.db) + ".artifacts")
    checkpoint = tmp_path / "big.pt"
    with checkpoint.open("wb") as f:  # sparse: nothing held in memory, little written
        f.truncate(SIZE)
        f.seek(SIZE // 2)
        f.write(b"the middle")
    with checkpoint.open("rb") as f:
        sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    marker = tmp_path / "marker"
    env = training_env(tmp_path, server.url)
    with (tmp_path / "training.log").open("wb") as log:
        training = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(marker), str(checkpoint), unique("killed-upload"), sender],
            env=env,
            stdout=log,
            stderr=log,
        )
    deadline = time.monotonic() + 60
    while not list(contents.glob("incoming/*.part")):  # the upload has begun arriving
        assert training.poll() is None, (tmp_path / "training.log").read_text()
        assert time.monotonic() < deadline, "the upload never started"
        assert not list(contents.glob("sha256/*/*")), "the upload finished before it could be cut"
        time.sleep(0.002)
    training.send_signal(signal.SIGKILL)
    training.wait(30)
    experiment_id = marker.read_text().splitlines()[0]
    assert experiment_id.startswith("exp_")
    return experiment_id, sha256, contents


def test_training_process_sigkilled_mid_upload_then_tally_sync(server: ServerProcess, tmp_path: Path) -> None:
    experiment_id, sha256, contents = start_and_kill_mid_upload(server, tmp_path, "thread")
    with client_for(server.url) as client:
        assert list(client.artifacts.list(experiment_id)) == []  # cut mid-upload: nothing stored
        # Logged before the artifact, so sent before it: all stored by the time its upload began.
        assert len(list(client.metrics.list(experiment_id, name="loss"))) == 20
        deadline = time.monotonic() + 30
        while list(contents.glob("incoming/*")):  # the server removes the cut upload's temporary file
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert list(contents.glob("sha256/*/*")) == []  # never a half file under its content's name

        [report] = sync_spools(RunPort(client, owned=False), tmp_path / "spool")
        assert report.state == "synced"
        [artifact] = list(client.artifacts.list(experiment_id))
        assert (artifact.name, artifact.size_bytes, artifact.sha256) == ("checkpoints/big.pt", SIZE, sha256)
        [stored] = list(contents.glob("sha256/*/*"))
        assert stored.name == sha256
        assert stored.stat().st_size == SIZE
        assert list(contents.glob("incoming/*")) == []
        # Synced again (as a second `tally sync` would): nothing more is stored.
        assert sync_spools(RunPort(client, owned=False), tmp_path / "spool") == []
        assert len(list(client.artifacts.list(experiment_id))) == 1
    assert spool_status(tmp_path / "spool") == []


def test_training_process_sigkilled_mid_upload_its_sender_process_finishes_it(
    server: ServerProcess, tmp_path: Path
) -> None:
    experiment_id, sha256, contents = start_and_kill_mid_upload(server, tmp_path, "process")
    with client_for(server.url) as client:
        deadline = time.monotonic() + 60
        while not list(client.artifacts.list(experiment_id)):
            assert time.monotonic() < deadline, "the sender process did not finish the upload"
            stored = list(contents.glob("sha256/*/*"))
            assert all(path.stat().st_size == SIZE for path in stored)  # never a half file under its name
            time.sleep(0.05)
        [artifact] = list(client.artifacts.list(experiment_id))
        assert (artifact.name, artifact.size_bytes, artifact.sha256) == ("checkpoints/big.pt", SIZE, sha256)
        assert len(list(client.metrics.list(experiment_id, name="loss"))) == 20
        wait_until_free(tmp_path / "spool")  # the sender process sent the rest and ended
        # What is left for `tally sync` (the run's end, which its killed process never wrote) stores nothing twice.
        sync_spools(RunPort(client, owned=False), tmp_path / "spool")
        [stored] = list(contents.glob("sha256/*/*"))
        assert stored.name == sha256
        assert len(list(client.artifacts.list(experiment_id))) == 1
