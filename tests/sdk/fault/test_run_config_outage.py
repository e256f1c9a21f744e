"""`run.config.update(...)` goes through the spool, so it survives an outage: with the real server process not
yet started, the experiment's creation (with its config and tags) and a later config update wait in the spool,
and both reach the server once it is up (issue 21, "Config and tags"); so does the run's capture ("Capture")."""

from __future__ import annotations

import platform

import pytest

from tally import Tally

from ..conftest import unique
from .conftest import KEY, ServerProcess

pytestmark = pytest.mark.integration


def test_config_and_tags_survive_an_outage(server: ServerProcess) -> None:
    name = unique("config-outage")
    with Tally(api_key=KEY, base_url=server.url) as client:
        with client.run(name, config={"optim": {"lr": 0.1}}, tags=["outage"], flush_timeout=60) as run:
            run.log({"loss": 1.0})
            run.config.update({"optim": {"lr": 0.01}}, epochs=3)
            assert run.id is None  # nothing has reached the server yet
            server.start()
            run.flush(timeout=60)
        experiment = client.experiments.get(run.id or "")
        metadata = dict(experiment.metadata)
        # The capture, taken at the start while the server was down, waited in the spool too.
        assert metadata.pop("capture")["python"] == platform.python_version()
        assert metadata == {"config": {"optim": {"lr": 0.01}, "epochs": 3}}
        assert list(experiment.tags) == ["outage"]
        found = client.experiments.list(metadata_key="config.epochs", metadata_value=3, name_prefix=name)
        assert [e.id for e in found] == [run.id]
