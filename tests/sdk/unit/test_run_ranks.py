"""Which process of a distributed job logs (`tally.run._ranks`): pure decisions over an environment mapping."""

from __future__ import annotations

import pytest

from tally import ConfigurationError
from tally.run._ranks import RANK_VARIABLES, detect_rank, plan_rank


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, (None, None, None)),
        ({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "8"}, (3, "RANK", 8)),  # torchrun, 2 nodes of 4
        ({"SLURM_PROCID": "5", "SLURM_NTASKS": "6"}, (5, "SLURM_PROCID", 6)),  # srun
        ({"SLURM_PROCID": "1", "RANK": "6", "WORLD_SIZE": "8"}, (6, "RANK", 8)),  # srun torchrun: RANK wins
        ({"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "4"}, (2, "OMPI_COMM_WORLD_RANK", 4)),
        ({"PMI_RANK": "0", "PMI_SIZE": "2"}, (0, "PMI_RANK", 2)),
        ({"LOCAL_RANK": "1"}, (1, "LOCAL_RANK", None)),
        ({"RANK": " ", "SLURM_PROCID": "2"}, (2, "SLURM_PROCID", None)),  # blank counts as unset
    ],
)
def test_the_rank_comes_from_the_first_variable_set_in_order(
    environ: dict[str, str], expected: tuple[int | None, str | None, int | None]
) -> None:
    assert detect_rank(environ) == expected


def test_the_order_of_precedence_is_the_documented_one() -> None:
    assert RANK_VARIABLES == ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "LOCAL_RANK")


def test_only_rank_0_logs_and_the_others_say_why() -> None:
    assert plan_rank("r", rank=None, group=None, experiment_id=None, environ={}).inactive is None
    assert plan_rank("r", rank=None, group=None, experiment_id=None, environ={"RANK": "0"}).inactive is None
    plan = plan_rank("r", rank=None, group=None, experiment_id=None, environ={"RANK": "2", "WORLD_SIZE": "4"})
    assert plan.inactive is not None
    assert plan.inactive.startswith("rank 2 of 4 ($RANK) does not log: only rank 0 does; pass group=")


def test_an_explicit_rank_overrides_the_environment() -> None:
    assert plan_rank("r", rank=0, group=None, experiment_id=None, environ={"RANK": "3"}).inactive is None
    plan = plan_rank("r", rank=3, group=None, experiment_id=None, environ={})
    assert plan.inactive is not None
    assert plan.inactive.startswith("rank 3 (rank=) does not log")


def test_a_group_gives_each_rank_an_experiment_of_its_own() -> None:
    plan = plan_rank("train", rank=None, group="job-1", experiment_id=None, environ={"SLURM_PROCID": "7"})
    assert (plan.rank, plan.name, plan.group, plan.inactive) == (7, "train-rank7", "job-1", None)
    alone = plan_rank("train", rank=None, group="sweep-1", experiment_id=None, environ={})
    assert (alone.name, alone.group) == ("train", "sweep-1")  # outside a distributed job, the name stays


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rank": -1}, "rank must be a non-negative int"),
        ({"rank": True}, "rank must be a non-negative int"),
        ({"group": "job 1"}, "group is 'job 1': a group is 1 to 128 letters"),
        ({"group": ""}, "group is '': a group is 1 to 128"),
        (
            {"group": "j", "rank": 1, "experiment_id": "exp_1"},
            "group= gives each rank an experiment of its own",
        ),
    ],
)
def test_bad_arguments_name_what_to_change(kwargs: dict[str, object], message: str) -> None:
    arguments = {"rank": None, "group": None, "experiment_id": None, **kwargs}
    with pytest.raises(ValueError, match=message):
        plan_rank("r", environ={}, **arguments)  # type: ignore[arg-type]


def test_a_rank_variable_that_is_not_a_rank_is_a_configuration_error() -> None:
    with pytest.raises(
        ConfigurationError, match=r"RANK='one' is not a rank .*pass client.run\(..., rank=...\)"
    ):
        detect_rank({"RANK": "one"})
