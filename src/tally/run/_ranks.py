"""Which process of a distributed job logs: `client.run(..., rank=..., group=...)`, decided before anything is
made (no spool, no thread, no request), by pure functions over the environment.

A multi-GPU job runs one process per device, each with a copy of the training loop. Logging from all of them
without a plan gives N experiments of the same name (or N writers on one), so by default only rank 0 logs; the
others get an idle run (`tally.run._idle`) whose `log()` does nothing and whose `status().inactive` says why.

The rank is the explicit `rank=` argument when given (it wins over the environment, so `rank=0` makes any process
log), else the first of these variables that is set, in this order:

    RANK                   torchrun / torch.distributed.launch, `accelerate launch` (multi-GPU: it runs torchrun),
                           DeepSpeed's launcher, Lightning, and scripts that map SLURM's variables to torch's
    SLURM_PROCID           srun (a task's global rank; under `srun torchrun`, RANK is set too and wins, since
                           SLURM_PROCID is then the node's task, not the process)
    OMPI_COMM_WORLD_RANK   Open MPI's mpirun (`accelerate launch` for multi-CPU jobs reads it too)
    PMI_RANK               MPICH / Intel MPI
    LOCAL_RANK             a launcher that sets only the rank within one machine (one machine, so it is global)

The world size (only for the status message) is `WORLD_SIZE`, `SLURM_NTASKS`, `OMPI_COMM_WORLD_SIZE` or
`PMI_SIZE`. A variable that is set but not a non-negative integer is a ConfigurationError naming it.

With `group="job-123"` every rank logs, each to its own experiment `<name>-rank<k>` in that group (the
experiment's `group` field; `listExperiments?group=`, `client.metrics.compare(group=...)` and the dashboard show
them together). Outside a distributed job (no rank anywhere) `group=` keeps the name as given: it then groups
separate runs, such as a sweep's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from tally_api_types.limits import (
    EXPERIMENT_GROUP_MAX_LENGTH,
    EXPERIMENT_GROUP_MIN_LENGTH,
    EXPERIMENT_GROUP_PATTERN,
)

from tally._errors import ConfigurationError

__all__ = ["RANK_VARIABLES", "WORLD_SIZE_VARIABLES", "RankPlan", "detect_rank", "plan_rank"]

RANK_VARIABLES = ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "LOCAL_RANK")
"""The variables that name a process's rank, in the order of precedence (see the module's docstring)."""
WORLD_SIZE_VARIABLES = ("WORLD_SIZE", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
_GROUP = re.compile(EXPERIMENT_GROUP_PATTERN)


@dataclass(frozen=True)
class RankPlan:
    """What `client.run(...)` does in this process: log to `name` (None: as the caller said) in `group`, or, when
    `inactive` says why, nothing."""

    rank: int | None
    name: str | None
    group: str | None
    inactive: str | None = None


def _integer(environ: Mapping[str, str], variable: str) -> int | None:
    text = environ.get(variable, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigurationError(
            f"{variable}={text!r} is not a rank (a non-negative integer): fix the launcher's environment, or pass "
            "client.run(..., rank=...)"
        )
    return value


def detect_rank(environ: Mapping[str, str]) -> tuple[int | None, str | None, int | None]:
    """(rank, the variable it came from, world size) from `environ`; (None, None, None) outside a distributed
    job."""
    for variable in RANK_VARIABLES:
        rank = _integer(environ, variable)
        if rank is not None:
            world = next(
                (size for size in (_integer(environ, v) for v in WORLD_SIZE_VARIABLES) if size is not None),
                None,
            )
            return rank, variable, world
    return None, None, None


def plan_rank(
    name: str | None,
    *,
    rank: int | None,
    group: str | None,
    experiment_id: str | None,
    environ: Mapping[str, str] | None = None,
) -> RankPlan:
    """Decide what this process's `client.run(...)` does (see the module's docstring); ValueError for a `rank=` or
    a combination that cannot work, naming the argument."""
    if rank is not None and (type(rank) is not int or rank < 0):
        raise ValueError(f"rank must be a non-negative int (this process's rank) or None, not {rank!r}")
    if group is not None and (
        not isinstance(group, str)
        or not EXPERIMENT_GROUP_MIN_LENGTH <= len(group) <= EXPERIMENT_GROUP_MAX_LENGTH
        or not _GROUP.match(group)
    ):
        raise ValueError(
            f"group is {group!r}: a group is 1 to {EXPERIMENT_GROUP_MAX_LENGTH} letters, digits and _ . : / = - "
            "(e.g. the job's id, 'job-123')"
        )
    source = "rank="
    world: int | None = None
    if rank is None:
        rank, variable, world = detect_rank(os.environ if environ is None else environ)
        source = f"${variable}" if variable else source
    if group is not None:
        if rank is None:
            return RankPlan(None, name, group)
        if experiment_id is not None:
            raise ValueError(
                "group= gives each rank an experiment of its own (<name>-rank<k>), so it takes a name, not "
                "experiment_id=; resume a group by name with resume='allow'"
            )
        return RankPlan(rank, f"{name}-rank{rank}" if name is not None else None, group)
    if rank is None or rank == 0:
        return RankPlan(rank, name, None)
    of = f" of {world}" if world is not None else ""
    return RankPlan(
        rank,
        name,
        None,
        inactive=(
            f"rank {rank}{of} ({source}) does not log: only rank 0 does; pass group=... to log every rank to "
            "its own experiment, or rank=0 to make this process log"
        ),
    )
