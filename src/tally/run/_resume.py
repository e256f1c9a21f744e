"""Which experiment a run logs to: `client.run(..., resume=...)`, decided once, by the run's start when the
server answers, else by the sender before it sends the first record (the same function, `resolve_experiment`).

The modes follow wandb's `resume=` (its run id is our `experiment_id`, or the experiment's `name`, which the
server does not make unique, so a name that more than one experiment holds is refused as ambiguous):

    resume=      the experiment exists                    it does not exist
    "must"       resume it                                ResumeError
    "allow"      resume it                                create it (needs a name)
    "never"      ResumeError                              create it (needs a name)
    None         with experiment_id=: as "must"; with only a name: create a new experiment, never look one up

The experiment is looked up by `experiment_id=` when given, else by exact `name` (within `folder_id=` when
given). Resuming one that is completed, failed or cancelled reopens it to `running` (the contract's explicit
`reopen` transition, which the server records as an annotation); resuming a running one changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from tally._errors import TallyError

from ._port import SenderPort

__all__ = ["RESUME_MODES", "ResumeError", "ResumeMode", "resolve_experiment"]

ResumeMode = Literal["allow", "must", "never"]
RESUME_MODES = ("allow", "must", "never")


class ResumeError(TallyError):
    """`client.run(..., resume=...)` cannot go on: the experiment to resume is missing ("must"), exists
    ("never"), or its name is ambiguous. No retry changes it."""


def check_resume(resume: object, name: str | None, experiment_id: str | None) -> None:
    """Refuse, at `client.run(...)`, a combination that cannot work, naming the argument to change."""
    if resume is not None and resume not in RESUME_MODES:
        raise ValueError(f"resume must be 'allow', 'must', 'never' or None, not {resume!r}")
    if name is None and experiment_id is None:
        raise ValueError(
            "client.run needs a name (to create an experiment) or experiment_id= (to resume one)"
        )
    if resume is None and name is not None and experiment_id is not None:
        raise ValueError(
            "client.run takes a name (to create an experiment) or experiment_id= (to resume one), not both; "
            "with resume='allow', the name is for the experiment created when experiment_id= does not exist"
        )
    if resume in ("allow", "never") and name is None:
        raise ValueError(f"resume={resume!r} may create the experiment, so it needs a name")


def resolve_experiment(
    port: SenderPort,
    header: Mapping[str, Any],
    *,
    patient: bool,
    on_found: Callable[[str], None] | None = None,
) -> tuple[str, bool]:
    """The id of the experiment the run logs to, and whether it was resumed (reopened if it had ended), per
    `header["resume"]` (see the module's docstring). Raises ResumeError for what no retry changes, and the
    client's errors (a server that does not answer: then the sender tries again later).

    `on_found(experiment_id)` is called with an experiment to resume once it is known, before it is reopened: the
    run's start reads its last step there, so that a server that dies at the reopen (the start then leaves the
    resume to the sender) does not leave the run's steps starting over at 0."""
    mode = header.get("resume") or "must"
    name = header.get("name")
    found = port.find_experiments(
        experiment_id=header.get("experiment_id"),
        name=None if header.get("experiment_id") else name,
        folder_id=header.get("folder_id"),
        patient=patient,
    )
    wanted = header.get("experiment_id") or f"named {name!r}"
    if len(found) > 1:
        raise ResumeError(
            f"{len(found)} experiments are named {name!r} ({', '.join(found[:5])}): pass experiment_id= to say "
            "which to resume"
        )
    existing = found[0] if found else None
    if existing is None:
        if mode == "must":
            raise ResumeError(
                f"resume='must': no experiment {wanted} exists (or it is archived); use resume='allow' to "
                "create it"
            )
        created = port.create_experiment(
            str(name),
            description=header.get("description"),
            metadata=header.get("metadata"),
            folder_id=header.get("folder_id"),
            tags=header.get("tags"),
            idempotency_key=str(header.get("create_key") or f"tally-run-{header['run_key']}"),
            patient=patient,
            group=header.get("group"),
        )
        return created, False
    if mode == "never":
        raise ResumeError(
            f"resume='never': experiment {existing} ({wanted}) exists already; use resume='allow' to log to it, "
            "or another name"
        )
    if on_found is not None:
        on_found(existing)
    port.reopen(existing, patient=patient)
    return existing, True
