"""What the server would refuse never costs the valid events around it (issue 20, items 2 and 3).

- `run.log()` and `run.annotate()` refuse, at the call, what the contract refuses (the same check runs again when
  the sender sends), so the run goes on with every valid value.
- A spool can still hold a record the server refuses: one written by an older SDK, or one a rule only the server
  knows refuses. Such records are written here with the spool's own writer, as an older SDK would have. `tally sync`
  then sends every valid event, keeps the refused ones in the run's dead-letter file with the reason, says so (exit
  code 6, `--status`, `--json`), and never deletes a spool that still holds unsent valid events.
"""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tally import Tally
from tally.cli import cli
from tally.run import Run, RunRejectedError
from tally.run._format import KIND_ANNOTATION, KIND_LOG, frame
from tally_server import RunningServer

from ..conftest import unique

pytestmark = pytest.mark.integration

BAD_STEP = 2**53  # one past the contract's Step maximum


def point_counts(client: Tally, experiment_id: str) -> Counter[tuple[str, int | None]]:
    return Counter((p.name, p.step) for p in client.metrics.list(experiment_id, page_size=1000))


def append_raw(run: Run, payload: list[Any], events: int) -> None:
    """Append one record to the run's spool with the spool's writer, past `log()`'s checks (as an older SDK that
    lacked them would have written it). `payload` is the record without its sequence number."""
    run._seq += 1
    run._writer.append(frame([payload[0], run._seq, *payload[1:]]), events)
    run._logged += events


def dead_letters(root: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(root.glob("*.dead-letter.jsonl"))
        for line in path.read_text().splitlines()
    ]


@pytest.fixture
def online(live_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLY_API_KEY", live_server.api_key)
    monkeypatch.setenv("TALLY_BASE_URL", live_server.url)


# ---- refused at the call ------------------------------------------------------------------------------------------
def test_log_refuses_a_step_beyond_the_contract_and_every_valid_value_is_stored(sync_client: Tally) -> None:
    with sync_client.run(unique("big-step")) as run:
        for step in range(1000):
            run.log({"loss": 1 / (step + 1)}, step=step)
        with pytest.raises(ValueError, match="step"):
            run.log({"loss": 0.5}, step=BAD_STEP)
        with pytest.raises(ValueError, match="NUL"):
            run.log({"loss": 0.5}, step=1000, metadata={"split": "tr\x00ain"})
        for step in range(1000, 2000):
            run.log({"loss": 1 / (step + 1)}, step=step)
        run.flush(timeout=60)
        status = run.status()
    assert (status.logged, status.stored, status.rejected) == (2000, 2000, 0)
    assert sum(point_counts(sync_client, run.id or "").values()) == 2000


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"blob": "x" * 9000}, "8192-byte limit"),
        ({"loss": float("nan")}, "finite"),
        ({"nested": {"loss": float("inf")}}, "finite"),
        ({"note": "a\x00b"}, "NUL"),
    ],
)
def test_annotate_refuses_what_the_contract_refuses(
    sync_client: Tally, metadata: dict[str, Any], message: str
) -> None:
    with sync_client.run(unique("annotate")) as run:
        with pytest.raises(ValueError, match=message):
            run.annotate("lr drop", step=1, metadata=metadata)
        run.annotate("lr drop", step=1, metadata={"lr": 0.1})
        run.log({"loss": 0.5}, step=2)
        run.flush(timeout=60)
        assert (run.status().stored, run.status().rejected) == (2, 0)


# ---- refused later: split, dead-letter, report, keep --------------------------------------------------------------
def offline_spool_with(name: str, bad: list[Any], bad_events: int) -> None:
    """An offline run: 1,000 valid values, one record the server refuses, 1,000 valid values, then the end."""
    with Tally(offline=True) as offline, offline.run(name) as run:
        for step in range(1000):
            run.log({"loss": 1 / (step + 1)}, step=step, metadata={"split": "train"})
        append_raw(run, bad, bad_events)
        for step in range(1000, 2000):
            run.log({"loss": 1 / (step + 1)}, step=step, metadata={"split": "train"})


def test_tally_sync_sends_every_valid_event_and_dead_letters_the_refused_one(
    online: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique("sync-bad-step")
    offline_spool_with(name, [KIND_LOG, BAD_STEP, time.time(), None, {"loss": 0.5}], 1)
    runner = CliRunner()
    # No server to be reached: the sync fails, and the spool is kept whole, nothing dead-lettered.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with monkeypatch.context() as offline:
        offline.setenv("TALLY_BASE_URL", f"http://127.0.0.1:{port}")
        failed = runner.invoke(cli, ["sync", "--json"])
    assert failed.exit_code == 1, failed.output
    [kept] = json.loads(failed.stdout)
    assert (kept["state"], kept["pending"], kept["dead_letter"]) == ("failed", 2001, None)
    synced = runner.invoke(cli, ["sync", "--json"])
    assert synced.exit_code == 6, synced.output  # something was dead-lettered
    [report] = json.loads(synced.stdout)
    assert (report["state"], report["stored"], report["rejected"], report["pending"]) == (
        "synced",
        2000,
        1,
        0,
    )
    root = tmp_path / "spool"
    [letter] = dead_letters(root)
    assert report["dead_letter"] == str(next(root.glob("*.dead-letter.jsonl")))
    assert letter["kind"] == "metric"
    assert letter["record"]["step"] == BAD_STEP
    assert letter["record"]["name"] == "loss"
    assert "step" in letter["error"]["message"]
    with Tally() as client:
        [experiment] = list(client.experiments.list(name_prefix=name))
        assert experiment.status == "completed"
        counts = point_counts(client, experiment.id)
    assert sum(counts.values()) == 2000
    assert set(counts) == {("loss", step) for step in range(2000)}
    # The spool itself is gone (everything in it is stored or dead-lettered); the dead letter is kept and listed.
    assert not [path for path in root.iterdir() if path.is_dir()]
    listed = runner.invoke(cli, ["sync", "--status"])
    assert listed.exit_code == 0, listed.output
    assert "dead-letter" in listed.output
    assert "1 refused" in listed.output


def test_a_batch_the_server_refuses_is_split_until_the_refused_event_is_isolated(
    online: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's own check is switched off here, to stand in for a rule that only the server knows (a newer
    server's, say): the refusal then comes from the server, as a 400 for the whole batch."""
    import tally._events

    monkeypatch.setattr(tally._events, "check_event", lambda *args, **kwargs: None, raising=False)
    name = unique("server-refuses")
    offline_spool_with(name, [KIND_LOG, BAD_STEP, time.time(), None, {"loss": 0.5}], 1)
    synced = CliRunner().invoke(cli, ["sync"])
    assert synced.exit_code == 6, synced.output
    assert "stored 2,000" in synced.output
    assert "rejected 1" in synced.output
    [letter] = dead_letters(tmp_path / "spool")
    assert letter["record"]["step"] == BAD_STEP
    assert letter["error"]["status"] == 400
    assert letter["error"]["code"] == "invalid_request"
    assert letter["error"]["request_id"]
    with Tally() as client:
        [experiment] = list(client.experiments.list(name_prefix=name))
        assert sum(point_counts(client, experiment.id).values()) == 2000


def test_an_annotation_that_can_never_be_sent_is_dead_lettered_and_what_follows_is_stored(
    online: None, tmp_path: Path
) -> None:
    name = unique("sync-big-annotation")
    offline_spool_with(name, [KIND_ANNOTATION, "too much", 5, time.time(), {"blob": "x" * 9000}], 1)
    synced = CliRunner().invoke(cli, ["sync", "--json"])
    assert synced.exit_code == 6, synced.output
    [report] = json.loads(synced.stdout)
    assert (report["state"], report["stored"], report["rejected"]) == ("synced", 2000, 1)
    [letter] = dead_letters(tmp_path / "spool")
    assert letter["kind"] == "annotation"
    assert letter["record"]["text"] == "too much"
    assert "8192-byte limit" in letter["error"]["message"]
    with Tally() as client:
        [experiment] = list(client.experiments.list(name_prefix=name))
        assert experiment.status == "completed"
        assert sum(point_counts(client, experiment.id).values()) == 2000
    # A second sync finds nothing left to send and succeeds; the dead letter is still listed.
    again = CliRunner().invoke(cli, ["sync"])
    assert again.exit_code == 0, again.output
    assert "dead-letter" in again.output


def test_a_live_run_keeps_sending_around_a_refused_record_and_says_where_it_is(
    sync_client: Tally, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sync_client.run(unique("live-refused")) as run:
        for step in range(1000):
            run.log({"loss": 1 / (step + 1)}, step=step)
        append_raw(run, [KIND_LOG, BAD_STEP, time.time(), None, {"loss": 0.5}], 1)
        for step in range(1000, 2000):
            run.log({"loss": 1 / (step + 1)}, step=step)
        with pytest.raises(RunRejectedError, match="1 event") as raised:  # never silent
            run.flush(timeout=60)
        assert raised.value.rejected == 1
        status = run.status()
    assert (status.logged, status.stored, status.rejected, status.pending) == (2001, 2000, 1, 0)
    assert status.dead_letter is not None
    [letter] = dead_letters(tmp_path / "spool")
    assert letter["record"]["step"] == BAD_STEP
    assert sum(point_counts(sync_client, run.id or "").values()) == 2000
    err = capsys.readouterr().err
    assert "1 event" in err
    assert status.dead_letter in err
