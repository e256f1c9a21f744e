"""Resuming an experiment from a restarted job (issue 21, "Resume"): `client.run(..., resume="allow" | "must" |
"never")` by `experiment_id=` or exact name; a completed, failed or cancelled experiment is reopened to running
(recorded by the server as an annotation) instead of refusing every event with 409 `experiment_closed`."""

from __future__ import annotations

from collections import Counter

import pytest

from tally import AsyncTally, Tally
from tally.run import ResumeError

from ..conftest import unique

pytestmark = pytest.mark.integration


def steps_of(client: Tally, experiment_id: str) -> Counter[tuple[str, int | None]]:
    return Counter((p.name, p.step) for p in client.metrics.list(experiment_id, page_size=1000))


def notes(client: Tally, experiment_id: str) -> list[str]:
    return [a.text for a in client.annotations.list(experiment_id)]


@pytest.mark.parametrize("ended", ["completed", "failed", "cancelled"])
def test_resuming_an_ended_experiment_reopens_it_and_stores_every_event(
    sync_client: Tally, ended: str
) -> None:
    with sync_client.run(unique("ended")) as first:
        for _ in range(5):
            first.log({"loss": 1.0})
    experiment_id = first.id or ""
    if ended != "completed":
        sync_client.experiments.update_status(experiment_id, "running", reopen=True)
        sync_client.experiments.update_status(experiment_id, ended)
    assert sync_client.experiments.get(experiment_id).status == ended

    with sync_client.run(experiment_id=experiment_id) as run:  # resume=None with experiment_id: "must"
        assert sync_client.experiments.get(experiment_id).status == "running"
        for _ in range(5):
            run.log({"loss": 0.5})
        run.flush(timeout=30)
        assert (run.status().stored, run.status().rejected) == (5, 0)
    assert sync_client.experiments.get(experiment_id).status == "completed"
    assert steps_of(sync_client, experiment_id) == Counter({("loss", s): 1 for s in range(10)})
    assert f"reopened (was {ended})" in notes(sync_client, experiment_id)


def test_resume_allow_by_name_resumes_the_experiment_or_creates_it(sync_client: Tally) -> None:
    name = unique("allow")
    with sync_client.run(name, resume="allow") as first:  # none yet: created
        first.log({"loss": 1.0})
    with sync_client.run(name, resume="allow") as second:  # the same experiment, reopened
        second.log({"loss": 0.5})
    assert second.id == first.id
    assert [e.id for e in sync_client.experiments.list(name_prefix=name)] == [first.id]
    assert steps_of(sync_client, first.id or "") == Counter({("loss", 0): 1, ("loss", 1): 1})
    assert notes(sync_client, first.id or "") == ["reopened (was completed)"]


def test_resume_must_raises_for_a_missing_experiment(sync_client: Tally) -> None:
    with pytest.raises(ResumeError, match="resume='must'"):
        sync_client.run(unique("missing"), resume="must")
    with pytest.raises(ResumeError, match="exp_01JD0000000000000000000000"):
        sync_client.run(experiment_id="exp_01JD0000000000000000000000")


def test_resume_never_creates_or_raises_if_it_exists(sync_client: Tally) -> None:
    name = unique("never")
    with sync_client.run(name, resume="never") as run:
        run.log({"loss": 1.0})
    with pytest.raises(ResumeError, match="resume='never'"):
        sync_client.run(name, resume="never")
    assert sync_client.experiments.get(run.id or "").status == "completed"


def test_an_ambiguous_name_is_refused_naming_the_candidates(sync_client: Tally) -> None:
    name = unique("twice")
    ids = [sync_client.experiments.create(name).id for _ in range(2)]
    sync_client.experiments.create(name + "-other")  # a prefix match is not a name match
    with pytest.raises(ResumeError, match="2 experiments are named") as raised:
        sync_client.run(name, resume="allow")
    assert all(i in str(raised.value) for i in ids)


def test_bad_resume_arguments_are_refused_naming_the_fix(sync_client: Tally) -> None:
    with pytest.raises(ValueError, match="resume must be"):
        sync_client.run("x", resume="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a name"):
        sync_client.run(experiment_id="exp_x", resume="allow")
    with pytest.raises(ValueError, match="not both"):
        sync_client.run("x", experiment_id="exp_x")


def test_a_leftover_spool_that_ended_does_not_close_the_resumed_experiment(sync_client: Tally) -> None:
    experiment = sync_client.experiments.create(unique("superseded"))
    # An earlier process closed its run offline: its spool holds its steps and its end ("completed").
    with Tally(offline=True) as offline, offline.run(experiment_id=experiment.id) as earlier:
        for step in range(20):
            earlier.log({"loss": 1.0}, step=step)
    with sync_client.run(experiment_id=experiment.id) as run:
        assert run.step == 20
        for _ in range(10):
            run.log({"loss": 0.5})
        run.flush(timeout=30)
        assert run.status().rejected == 0
        assert sync_client.experiments.get(experiment.id).status == "running"
    assert steps_of(sync_client, experiment.id) == Counter({("loss", s): 1 for s in range(30)})
    assert sync_client.experiments.get(experiment.id).status == "completed"


async def test_an_async_clients_run_resumes_too(async_client: AsyncTally, sync_client: Tally) -> None:
    experiment = sync_client.experiments.create(unique("async-resume"))
    sync_client.experiments.update_status(experiment.id, "failed")
    with async_client.run(experiment_id=experiment.id, resume="allow", name="unused") as run:
        run.log({"loss": 0.5})
    assert run.id == experiment.id
    assert steps_of(sync_client, experiment.id) == Counter({("loss", 0): 1})
    assert sync_client.experiments.get(experiment.id).status == "completed"
