"""What a run captures of where it runs (issue 21, "Capture"): on by default, each item off with one switch
(`client.run(..., capture=tally.Capture(git=False))`, `capture=False`), stored in the experiment's metadata under
the reserved key `capture`, with no credential of a git remote or the command line, through the spool."""

from __future__ import annotations

import json
import platform
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import tally
from tally import AsyncTally, Tally

from ..conftest import unique

pytestmark = pytest.mark.integration

SECRET_REMOTE = "https://user:ghp_secret1234567890@github.com/o/r.git"


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with one commit on `main`, a credential in its remote, a modified tracked file; the
    working directory."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("print(1)\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "first")
    git(path, "remote", "add", "origin", SECRET_REMOTE)
    (path / "train.py").write_text("print(2)\n")
    monkeypatch.chdir(path)
    return path


def captured(client: Tally, experiment_id: str | None) -> dict[str, object] | None:
    value = client.experiments.get(experiment_id or "").metadata.get("capture")
    assert value is None or isinstance(value, dict)
    return value


def test_everything_is_captured_by_default_and_read_back(
    sync_client: Tally, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = [
        "train.py",
        "--api-key",
        "tk_org_abcdefgh12345678",
        "--token=hunter2",
        "--lr",
        "0.1",
        "db.password=pw",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    with sync_client.run(unique("capture")) as run:
        run.log({"loss": 1.0})
    found = captured(sync_client, run.id)
    assert found is not None
    assert found["git"] == {
        "commit": git(repo, "rev-parse", "HEAD"),
        "branch": "main",
        "dirty": True,
        "remote": "https://github.com/o/r.git",
    }
    assert found["command"] == "train.py --api-key '***' '--token=***' --lr 0.1 'db.password=***'"
    assert found["python"] == platform.python_version()
    assert found["platform"] == platform.platform()
    assert found["hostname"] == socket.gethostname()
    packages = found["packages"]
    assert isinstance(packages, dict)
    assert packages["httpx"]
    assert packages["tally-metrics"]
    assert len(json.dumps(packages, separators=(",", ":"))) <= 2048
    text = json.dumps(sync_client.experiments.get(run.id or "").metadata)
    for secret in ("ghp_secret", "hunter2", "tk_org_abcdefgh", "user:", "pw'"):
        assert secret not in text
    # Filterable like any metadata.
    listed = sync_client.experiments.list(metadata_key="capture.git.branch", metadata_value="main")
    assert run.id in [experiment.id for experiment in listed]


def test_each_item_has_a_switch_and_false_records_nothing(sync_client: Tally, repo: Path) -> None:
    with sync_client.run(unique("off"), capture=False) as run:
        run.log({"loss": 1.0})
    assert captured(sync_client, run.id) is None
    with sync_client.run(unique("some"), capture=tally.Capture(git=False, packages=False)) as run:
        run.log({"loss": 1.0})
    found = captured(sync_client, run.id)
    assert found is not None
    assert sorted(found) == ["command", "hostname", "platform", "python"]
    with sync_client.run(unique("git"), capture=tally.Capture(command=False)) as run:
        pass
    found = captured(sync_client, run.id)
    assert found is not None
    assert "git" in found
    assert "command" not in found


def test_no_repository_or_no_git_binary_is_no_error(
    sync_client: Tally, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no repository above, either
    with sync_client.run(unique("norepo")) as run:
        run.log({"loss": 1.0})
    found = captured(sync_client, run.id)
    assert found is not None
    assert "git" not in found
    assert found["python"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no git binary at all
    with sync_client.run(unique("nogit")) as run:
        run.log({"loss": 1.0})
    found = captured(sync_client, run.id)
    assert found is not None
    assert "git" not in found


def test_a_resumed_run_replaces_the_capture(sync_client: Tally, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py", "--epochs", "1"])
    with sync_client.run(unique("resume"), metadata={"owner": "ana"}, config={"lr": 0.1}) as first:
        first.log({"loss": 1.0})
    monkeypatch.setattr(sys, "argv", ["train.py", "--epochs", "2"])
    with sync_client.run(experiment_id=first.id) as second:
        second.log({"loss": 0.5})
    metadata = sync_client.experiments.get(first.id or "").metadata
    assert metadata["capture"]["command"] == "train.py --epochs 2"
    assert metadata["owner"] == "ana"
    assert metadata["config"] == {"lr": 0.1}


def test_capture_goes_through_the_spool_of_an_offline_run(
    sync_client: Tally, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tally._sync._run_port import RunPort
    from tally.run import sync_spools

    monkeypatch.setattr(sys, "argv", ["offline.py"])
    name = unique("offline")
    with Tally(offline=True) as offline, offline.run(name) as run:
        run.log({"loss": 1.0})
    [report] = sync_spools(RunPort(sync_client, owned=False), tmp_path / "spool")
    assert report.state == "synced"
    [experiment] = list(sync_client.experiments.list(name_prefix=name))
    assert experiment.metadata["capture"]["command"] == "offline.py"


def test_the_reserved_key_and_bad_switches_are_refused_naming_the_fix(sync_client: Tally) -> None:
    with pytest.raises(ValueError, match="'capture' is reserved"):
        sync_client.run(unique("reserved"), metadata={"capture": {"mine": 1}})
    with pytest.raises(TypeError, match=r"capture must be True, False or a tally\.Capture"):
        sync_client.run(unique("bad"), capture="yes")  # type: ignore[arg-type]


def test_a_capture_too_large_for_the_metadata_is_fitted_never_fails_the_run(
    sync_client: Tally, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py"])
    big = {f"key{i}": "x" * 100 for i in range(60)}  # about 6.8 KiB of the 8 KiB
    with sync_client.run(unique("big"), metadata=big) as run:
        run.log({"loss": 1.0})
    assert run.status().rejected == 0
    metadata = sync_client.experiments.get(run.id or "").metadata
    assert len(json.dumps(metadata, separators=(",", ":")).encode()) <= 8192
    assert metadata["capture"]["python"] == platform.python_version()
    assert metadata["capture"]["packages_omitted"] > 0


async def test_an_async_clients_run_captures_too(
    async_client: AsyncTally, sync_client: Tally, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["async.py", "--secret", "s3cr3t"])
    with async_client.run(unique("async"), system_metrics_interval=0) as run:  # its port: a loop of its own
        run.log({"loss": 1.0})
    found = captured(sync_client, run.id)
    assert found is not None
    assert found["command"] == "async.py --secret '***'"
