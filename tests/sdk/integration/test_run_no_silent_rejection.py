"""No rejection is ever silent (issue 21, "Resume"): events the server refuses for any reason (409
`experiment_closed`, a 400 of validation) raise `RunRejectedError` at `run.flush()` and `run.close()`, with the
counts and the first reasons, and are counted in `run.status()`, whose `last_error` names the rejection."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tally import Tally
from tally._sync._run_port import RunPort
from tally.run import RunRejectedError, spool_status, sync_spools
from tally.run._format import KIND_LOG, frame

from ..conftest import unique

pytestmark = pytest.mark.integration

BAD_STEP = 2**53  # one past the contract's Step maximum: the server refuses it with a 400


@pytest.mark.parametrize("sender", ["thread", "process"])
def test_events_refused_because_the_experiment_was_closed_raise_at_flush(
    sync_client: Tally, sender: str
) -> None:
    run = sync_client.run(unique("closed-under-it"), sender=sender)  # type: ignore[arg-type]
    run.log({"loss": 1.0})
    run.flush(timeout=30)
    sync_client.experiments.update_status(run.id or "", "cancelled")  # someone ends it meanwhile
    for _ in range(3):
        run.log({"loss": 0.5})
    with pytest.raises(RunRejectedError) as raised:
        run.flush(timeout=30)
    error = raised.value
    assert (error.rejected, error.experiment_id) == (3, run.id)
    assert "experiment_closed" in error.reasons[0]
    assert "3 events" in str(error)
    assert "experiment_closed" in str(error)
    assert error.dead_letter is not None
    assert error.dead_letter in str(error)
    status = run.status()
    assert (status.stored, status.rejected, status.pending) == (1, 3, 0)
    assert "experiment_closed" in (status.last_error or "")
    run.flush(timeout=30)  # reported once: a later flush with nothing new refused returns
    run.close()  # likewise for close


def test_close_raises_for_refusals_no_flush_reported(sync_client: Tally) -> None:
    run = sync_client.run(unique("closed-then-close"))
    sync_client.experiments.update_status(run.id or "", "failed")
    run.log({"loss": 0.5})
    run.log({"loss": 0.4})
    with pytest.raises(RunRejectedError, match="2 events") as raised, run:
        pass  # leaving the block closes the run
    assert raised.value.rejected == 2
    assert run.status().rejected == 2


def test_a_block_that_raises_keeps_its_own_exception(
    sync_client: Tally, capsys: pytest.CaptureFixture[str]
) -> None:
    run = sync_client.run(unique("block-raises"))
    sync_client.experiments.update_status(run.id or "", "failed")
    run.log({"loss": 0.5})
    with pytest.raises(KeyError, match="mine"), run:
        raise KeyError("mine")
    assert run.status().rejected == 1
    assert "1 events" in capsys.readouterr().err  # still said, on stderr


def test_events_refused_by_validation_raise_at_flush_and_the_rest_is_stored(sync_client: Tally) -> None:
    with sync_client.run(unique("invalid")) as run:
        run.log({"loss": 1.0})
        # A record past log()'s checks, as an older SDK could have spooled it: the server refuses it with a 400.
        run._seq += 1
        run._writer.append(frame([KIND_LOG, run._seq, BAD_STEP, time.time(), None, {"loss": 0.5}]), 1)
        run._logged += 1
        run.log({"loss": 2.0})
        with pytest.raises(RunRejectedError, match="1 event") as raised:
            run.flush(timeout=30)
        assert "step" in raised.value.reasons[0]
        assert (run.status().stored, run.status().rejected) == (2, 1)


def test_tally_sync_keeps_a_spool_whose_resume_cannot_be_made_and_says_why(
    sync_client: Tally, tmp_path: Path
) -> None:
    with Tally(offline=True) as offline, offline.run(experiment_id="exp_01JD0000000000000000000000") as run:
        run.log({"loss": 0.5}, step=0)
    [report] = sync_spools(RunPort(sync_client, owned=False), tmp_path / "spool")
    assert report.state == "failed"
    assert "resume='must'" in (report.error or "")
    assert [r.pending for r in spool_status(tmp_path / "spool")] == [1]  # kept whole, not deleted
