"""Resuming with a real server process stopped and started (issue 21, "Resume"): a resume the run's start cannot
settle (the server is down) is settled by the sender once the server is back, reopening the ended experiment
before the first event, so no event is refused with 409 `experiment_closed`."""

from __future__ import annotations

import signal
from collections import Counter
from datetime import UTC, datetime

import pytest

from tally import Tally
from tally.run import RunRejectedError

from ..conftest import unique
from .conftest import KEY, ServerProcess

pytestmark = pytest.mark.integration


def test_a_resume_started_while_the_server_is_down_reopens_the_experiment_once_it_is_up(
    server: ServerProcess,
) -> None:
    server.start()
    with Tally(api_key=KEY, base_url=server.url) as client:
        with client.run(unique("resume-down")) as first:
            for step in range(5):
                first.log({"loss": 1.0}, step=step)
        experiment_id = first.id or ""
        assert client.experiments.get(experiment_id).status == "completed"
        server.stop()

        run = client.run(experiment_id=experiment_id, flush_timeout=60)
        for step in range(5, 10):
            run.log({"loss": 0.5}, step=step)
        assert run.status().pending == 5
        # And one that cannot be: its experiment does not exist (resume "must", the default with an id).
        missing = client.run(experiment_id="exp_01JD0000000000000000000000", flush_timeout=0.5)
        missing.log({"loss": 0.5}, step=0)
        server.start()
        run.flush(timeout=60)
        assert (run.status().stored, run.status().rejected) == (5, 0)
        assert client.experiments.get(experiment_id).status == "running"
        run.close()
        assert client.experiments.get(experiment_id).status == "completed"
        points = Counter((p.name, p.step) for p in client.metrics.list(experiment_id))
        assert points == Counter({("loss", s): 1 for s in range(10)})
        assert [a.text for a in client.annotations.list(experiment_id)] == ["reopened (was completed)"]
        with pytest.raises(
            RunRejectedError, match="cannot send: resume='must': no experiment exp_01JD"
        ) as raised:
            missing.flush(timeout=60)
        assert raised.value.pending == 1
        assert "resume='must'" in (missing.status().last_error or "")
        with pytest.raises(RunRejectedError):
            missing.close()  # raised again: while it cannot send, the run says so at every flush and close


# Run inside the server process (tests/sdk/fault/conftest.py's launcher): SIGKILL the server at the reopen
# transition of `updateExperimentStatus` with `reopen: true`, at one of two moments:
# - "in the transaction": the status and the reopen annotation are written, nothing is committed yet;
# - "after the commit": the transaction committed (with the idempotent answer), the answer is never sent.
_KILL_AT_REOPEN = """
import os, signal
from tally_server.pipeline import Pipeline
from tally_server.storage.store import SqlRepository

MOMENT = {moment!r}
update_status = SqlRepository.update_experiment_status
run_recorded = Pipeline._run_recorded

def killed_in_the_transaction(self, *args, reopened_by=None, **kwargs):
    result = update_status(self, *args, reopened_by=reopened_by, **kwargs)
    if reopened_by is not None and MOMENT == "in the transaction":
        os.kill(os.getpid(), signal.SIGKILL)
    return result

def killed_after_the_commit(self, call, *args, **kwargs):
    out = run_recorded(self, call, *args, **kwargs)
    if call.operation.operation_id == "updateExperimentStatus" and call.body.get("reopen"):
        if MOMENT == "after the commit":
            os.kill(os.getpid(), signal.SIGKILL)
    return out

SqlRepository.update_experiment_status = killed_in_the_transaction
Pipeline._run_recorded = killed_after_the_commit
"""


@pytest.mark.parametrize("moment", ["in the transaction", "after the commit"])
def test_the_server_sigkilled_at_the_reopen_of_a_resume_then_restarted(
    server: ServerProcess, moment: str
) -> None:
    """Issue 21's "the server killed mid-resume": resuming a completed experiment (resume="allow") while the
    server is SIGKILLed at the reopen transition and restarted. The run ends with the experiment reopened exactly
    once (one reopen annotation), and every event stored once: none lost, none doubled, and `log()` without a
    step goes on after the stored steps (the start read them before it asked for the reopen)."""
    server.start(hook=_KILL_AT_REOPEN.format(moment=moment))  # (only a reopen meets the hook)
    name = unique("resume-killed")
    with Tally(api_key=KEY, base_url=server.url) as client:
        with client.run(name) as first:
            for _ in range(5):
                first.log({"loss": 1.0})  # steps 0 to 4
        experiment_id = first.id or ""
        assert client.experiments.get(experiment_id).status == "completed"

        run = client.run(name, experiment_id=experiment_id, resume="allow", flush_timeout=60)
        assert server.wait_dead() == -signal.SIGKILL  # the run's start reopened, and the server died there
        assert run.step == 5  # the steps go on after the stored ones, though the start could not finish
        for _ in range(5):
            run.log({"loss": 0.5})
        run.annotate("resumed after the crash", step=5)
        restarted_at = datetime.now(UTC)
        server.start()  # the same database, without the hook
        run.flush(timeout=60)
        status = run.status()
        assert (status.stored, status.rejected, status.pending) == (6, 0, 0)
        assert client.experiments.get(experiment_id).status == "running"
        run.close()

        assert client.experiments.get(experiment_id).status == "completed"
        points = Counter((p.name, p.step, p.value) for p in client.metrics.list(experiment_id))
        assert points == Counter({("loss", s, 1.0 if s < 5 else 0.5): 1 for s in range(10)})
        notes = {a.text: a for a in client.annotations.list(experiment_id)}
        assert sorted(notes) == ["reopened (was completed)", "resumed after the crash"]
        # Which reopen counted: the one that met the kill if it had committed, else the sender's, after the restart.
        reopened = notes["reopened (was completed)"].created_at
        assert (reopened < restarted_at) is (moment == "after the commit")
