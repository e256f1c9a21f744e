"""Distributed jobs in one process (issue 21): the rank a run takes from the environment or from `rank=`, the
idle run of a rank that does not log, and groups through the SDK and the CLI. The real processes are in
tests/sdk/fault/test_run_ranks.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tally import AsyncTally, Tally
from tally.cli import cli
from tally_server import RunningServer

from ..conftest import AnyClient, call, collect, unique

pytestmark = pytest.mark.integration


async def test_a_rank_other_than_0_gets_an_idle_run_that_makes_nothing(
    client: AnyClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    name = unique("idle")
    with client.run(name, config={"lr": 0.1}, tags=["x"]) as run:
        for _ in range(3):
            run.log({"loss": 1.0})
        run.annotate("noted")
        run.config.update(batch=32)
        run.flush()
        assert run.step == 3
        assert run.id is None
    status = run.status()
    assert status.inactive == (
        "rank 1 of 2 ($RANK) does not log: only rank 0 does; pass group=... to log every rank to its own "
        "experiment, or rank=0 to make this process log"
    )
    assert (status.logged, status.stored, status.pending, status.spool) == (0, 0, 0, None)
    assert run.config["lr"] == 0.1
    assert "does not log" in repr(run)
    assert await collect(client.experiments.list(name_prefix=name)) == []
    assert not (tmp_path / "spool").exists()  # the conftest's TALLY_SPOOL_DIR: not even made


async def test_an_explicit_rank_wins_over_the_environment(
    client: AnyClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANK", "3")
    name = unique("forced")
    with client.run(name, rank=0) as run:
        run.log({"loss": 1.0})
    assert run.status().inactive is None
    assert [e.name for e in await collect(client.experiments.list(name_prefix=name))] == [name]
    monkeypatch.delenv("RANK")
    assert client.run(unique("forced"), rank=2).status().inactive is not None


def test_a_group_outside_a_distributed_job_keeps_the_name(sync_client: Tally) -> None:
    group = unique("sweep")
    for lr in (0.1, 0.2):
        with sync_client.run(f"{group}-lr{lr}", group=group) as run:
            run.log({"loss": lr}, step=0)
    found = list(sync_client.experiments.list(group=group))
    assert [e.name for e in found] == [f"{group}-lr0.1", f"{group}-lr0.2"]
    assert {e.group for e in found} == {group}


async def test_experiments_create_and_list_by_group_and_compare_a_group(client: AnyClient) -> None:
    group = unique("job")
    made = []
    for rank in (10, 2, 0):  # compared in rank order, whatever the order of creation
        experiment = await call(client.experiments.create(f"g-rank{rank}", group=group))
        await call(client.metrics.ingest(experiment.id, [{"name": "loss", "value": rank, "step": 0}]))
        made.append(experiment)
    listed = await collect(client.experiments.list(group=group))
    assert [e.id for e in listed] == [e.id for e in made]
    compared = await call(client.metrics.compare_group(group, "loss"))
    assert [s.experiment_id for s in compared.series] == [made[2].id, made[1].id, made[0].id]
    assert compared.rows[0].values == (0.0, 2.0, 10.0)
    with pytest.raises(ValueError, match="has no experiments"):
        await call(client.metrics.compare_group(unique("empty"), "loss"))


def test_the_cli_creates_lists_and_compares_by_group(
    live_server: RunningServer, sync_client: Tally, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALLY_API_KEY", live_server.api_key)
    monkeypatch.setenv("TALLY_BASE_URL", live_server.url)
    runner = CliRunner()
    group = unique("job")
    ids = []
    for rank in range(2):
        made = runner.invoke(cli, ["experiments", "create", f"cli-rank{rank}", "--group", group])
        assert made.exit_code == 0, made.output
        ids.append(made.output.strip())
        sync_client.metrics.ingest(ids[-1], [{"name": "loss", "value": rank + 0.5, "step": 1}])
    listed = runner.invoke(cli, ["experiments", "list", "--group", group, "--json"])
    assert [json.loads(line)["id"] for line in listed.output.splitlines()] == ids
    shown = runner.invoke(cli, ["experiments", "show", ids[0]])
    assert group in shown.output
    compared = runner.invoke(cli, ["metrics", "compare", "--group", group, "--name", "loss", "--json"])
    assert compared.exit_code == 0, compared.output
    result: dict[str, Any] = json.loads(compared.output)
    assert result["rows"] == [{"step": 1, "values": [0.5, 1.5]}]
    both = runner.invoke(cli, ["metrics", "compare", ids[0], "--group", group, "--name", "loss"])
    assert both.exit_code == 2
    assert "give EXPERIMENT_IDs or --group GROUP" in both.output


def test_the_clients_take_rank_and_group() -> None:
    import inspect

    for cls in (Tally, AsyncTally):
        parameters = inspect.signature(cls.run).parameters
        assert parameters["rank"].default is None
        assert parameters["group"].default is None
