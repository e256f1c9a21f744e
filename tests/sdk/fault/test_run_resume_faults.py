"""Resuming with a real server process stopped and started (issue 21, "Resume"): a resume the run's start cannot
settle (the server is down) is settled by the sender once the server is back, reopening the ended experiment
before the first event, so no event is refused with 409 `experiment_closed`."""

from __future__ import annotations

from collections import Counter

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
