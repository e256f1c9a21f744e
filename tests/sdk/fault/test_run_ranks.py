"""Ranks logging at once (issue 21, "Distributed jobs"): several real processes started together with the
variables torchrun sets (RANK, LOCAL_RANK, WORLD_SIZE), each running the same training loop.

By default only rank 0 logs: one experiment, holding rank 0's points only; the other ranks make no spool and no
experiment, and their status says why. With `group=`, every rank logs to an experiment of its own in the group,
each holding exactly its own events, and the group compares as one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tally import Tally
from tally_server import RunningServer

from ..conftest import unique

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).with_name("rank_script.py")
WORLD = 3
STEPS = 50


def _launch(live_server: RunningServer, tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    """Start WORLD ranks at once, as torchrun would, and wait for them all; their final statuses, by rank."""
    ranks = []
    for rank in range(WORLD):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        env |= {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(WORLD),
            "TALLY_API_KEY": live_server.api_key,
            "TALLY_BASE_URL": live_server.url,
            "TALLY_CONFIG_DIR": str(tmp_path / "config"),
            "TALLY_SPOOL_DIR": str(tmp_path / f"spool-{rank}"),
        }
        ranks.append(
            subprocess.Popen(
                [sys.executable, str(SCRIPT), *args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    statuses = []
    for rank, process in enumerate(ranks):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, (rank, err)
        statuses.append(json.loads(out.strip().splitlines()[-1]))
    return statuses


def _points(client: Tally, experiment_id: str) -> Counter[tuple[str, int | None, float]]:
    return Counter((p.name, p.step, p.value) for p in client.metrics.list(experiment_id))


def _expected(rank: int) -> Counter[tuple[str, int | None, float]]:
    return Counter(
        {("loss", step, float(rank * 1000 + step)): 1 for step in range(STEPS)}
        | {("rank", step, float(rank)): 1 for step in range(STEPS)}
    )


def test_only_rank_0_logs_by_default(live_server: RunningServer, tmp_path: Path, sync_client: Tally) -> None:
    name = unique("ranks")
    statuses = _launch(live_server, tmp_path, name, str(STEPS))
    made = [e for e in sync_client.experiments.list(name_prefix=name) if e.name.startswith(name)]
    assert [e.name for e in made] == [name]
    assert statuses[0]["experiment_id"] == made[0].id
    assert (statuses[0]["stored"], statuses[0]["inactive"]) == (2 * STEPS, None)
    assert _points(sync_client, made[0].id) == _expected(0)
    for rank in range(1, WORLD):
        status = statuses[rank]
        assert (status["experiment_id"], status["logged"], status["spool"]) == (None, 0, None)
        assert status["inactive"].startswith(f"rank {rank} of {WORLD} ($RANK) does not log: only rank 0 does")
        assert not (tmp_path / f"spool-{rank}").exists()  # no spool made, not even its directory


def test_with_a_group_every_rank_logs_exactly_its_own_events_to_its_own_experiment(
    live_server: RunningServer, tmp_path: Path, sync_client: Tally
) -> None:
    name, group = unique("ranks"), unique("job")
    statuses = _launch(live_server, tmp_path, name, str(STEPS), group)
    members = {e.name: e for e in sync_client.experiments.list(group=group)}
    assert sorted(members) == [f"{name}-rank{rank}" for rank in range(WORLD)]
    for rank in range(WORLD):
        experiment = members[f"{name}-rank{rank}"]
        assert (experiment.group, experiment.status) == (group, "completed")
        assert statuses[rank]["experiment_id"] == experiment.id
        assert (statuses[rank]["stored"], statuses[rank]["rejected"]) == (2 * STEPS, 0)
        assert _points(sync_client, experiment.id) == _expected(rank)
    # The group compares as one: a column per rank, in rank order.
    compared = sync_client.metrics.compare_group(group, "loss")
    assert [s.experiment_id for s in compared.series] == [members[f"{name}-rank{r}"].id for r in range(WORLD)]
    assert compared.rows[7].values == tuple(float(rank * 1000 + 7) for rank in range(WORLD))
