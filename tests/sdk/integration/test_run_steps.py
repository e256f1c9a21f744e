"""Every event a run sends has a step (issue 21, "Steps"): `log()` without `step` takes the run's next step, one
counter per run; an explicit step sets the counter and may go backwards (stored, never dropped); `commit=False`
keeps the step open for the next call; a resumed run continues after the experiment's last stored step."""

from __future__ import annotations

from collections import Counter

import pytest

from tally import Tally

from ..conftest import unique

pytestmark = pytest.mark.integration


def points(client: Tally, experiment_id: str) -> Counter[tuple[str, int | None, float]]:
    return Counter((p.name, p.step, p.value) for p in client.metrics.list(experiment_id, page_size=1000))


def test_log_without_step_takes_the_runs_next_step(sync_client: Tally) -> None:
    with sync_client.run(unique("steps")) as run:
        assert run.step == 0
        run.log({"loss": 1.0})
        run.log({"loss": 2.0})
        run.log({"loss": 3.0}, step=10)  # an explicit step sets the counter
        run.log({"loss": 4.0})
        run.log({"loss": 5.0}, step=3)  # backwards: stored, never dropped
        run.log({"loss": 6.0})
        run.log({"loss": 7.0}, step=3)  # the same step again: both points are kept
        assert run.step == 4
        run.annotate("checkpoint")  # no step: the step of the last log()
    assert points(sync_client, run.id or "") == Counter(
        {
            ("loss", 0, 1.0): 1,
            ("loss", 1, 2.0): 1,
            ("loss", 10, 3.0): 1,
            ("loss", 11, 4.0): 1,
            ("loss", 3, 5.0): 1,
            ("loss", 4, 6.0): 1,
            ("loss", 3, 7.0): 1,
        }
    )
    [annotation] = list(sync_client.annotations.list(run.id or ""))
    assert annotation.step == 3


def test_commit_false_builds_one_step_from_several_calls(sync_client: Tally) -> None:
    with sync_client.run(unique("commit")) as run:
        run.log({"train/loss": 0.5}, commit=False)
        run.log({"train/acc": 0.9}, commit=False)
        run.log({"lr": 0.1})  # commits step 0
        run.log({"train/loss": 0.4})  # step 1
        run.log({"eval/loss": 0.7}, step=7, commit=False)
        run.log({"eval/acc": 0.8})  # still step 7, then commits it
        run.log({"train/loss": 0.3})
    steps = {(name, step) for name, step, _ in points(sync_client, run.id or "")}
    assert steps == {
        ("train/loss", 0),
        ("train/acc", 0),
        ("lr", 0),
        ("train/loss", 1),
        ("eval/loss", 7),
        ("eval/acc", 7),
        ("train/loss", 8),
    }


def test_a_resumed_run_continues_after_the_last_stored_step(sync_client: Tally) -> None:
    experiment = sync_client.experiments.create(unique("resume-steps"))
    sync_client.metrics.ingest(
        experiment.id,
        [{"name": "loss", "value": 1.0, "step": s} for s in range(42)]
        + [{"name": "acc", "value": 0.5, "step": s} for s in range(8)]
        + [{"name": "loss", "value": 9.0, "step": 3, "metadata": {"split": "eval"}}],
    )
    with sync_client.run(experiment_id=experiment.id) as run:
        assert run.step == 42  # the max over metrics of the last stored step, plus one
        run.log({"loss": 0.1})
        run.log({"loss": 0.2})
    resumed = sorted(step or 0 for name, step, value in points(sync_client, experiment.id) if value < 0.5)
    assert resumed == [42, 43]


def test_a_resumed_run_of_an_experiment_without_steps_starts_at_zero(sync_client: Tally) -> None:
    experiment = sync_client.experiments.create(unique("resume-empty"))
    with sync_client.run(experiment_id=experiment.id) as run:
        run.log({"loss": 0.1})
    assert points(sync_client, experiment.id) == Counter({("loss", 0, 0.1): 1})


def test_a_bad_step_is_refused_at_the_call_and_the_counter_is_unchanged(sync_client: Tally) -> None:
    with sync_client.run(unique("bad-step")) as run:
        run.log({"loss": 1.0})
        with pytest.raises(ValueError, match="step"):
            run.log({"loss": 2.0}, step=-1)
        run.log({"loss": 3.0})
    assert {step for _, step, _ in points(sync_client, run.id or "")} == {0, 1}


def test_a_resumed_run_continues_after_the_steps_a_crashed_process_left_in_its_spool(
    sync_client: Tally,
) -> None:
    experiment = sync_client.experiments.create(unique("resume-spooled"))
    sync_client.metrics.ingest(experiment.id, [{"name": "loss", "value": 1.0, "step": s} for s in range(10)])
    with Tally(offline=True) as offline:  # a job that crashed before its sender sent steps 10..29
        crashed = offline.run(experiment_id=experiment.id)
        for step in range(10, 30):
            crashed.log({"loss": 1.0}, step=step)
        crashed._lock.release()  # type: ignore[union-attr]  # as the kernel would for a dead process
        crashed._closed = True
    with sync_client.run(experiment_id=experiment.id) as run:
        assert run.step == 30
        run.log({"loss": 0.1})
    steps = Counter(step for _, step, _ in points(sync_client, experiment.id))
    assert steps == Counter(range(31))
