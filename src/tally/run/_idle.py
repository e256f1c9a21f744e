"""The run of a process that does not log (a rank other than 0 of a distributed job, see `tally.run._ranks`):
the same surface as `Run`, so the training loop runs unchanged on every rank, but `log()` only advances the step
counter. No spool, no thread, no request, no experiment; `status().inactive` says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal

from ._config import RunConfig, flatten_config
from ._run import Run, RunStatus

__all__ = ["IdleRun"]


class IdleRun(Run):
    """A `Run` that records nothing (see the module's docstring). Its input is not checked either: the rank that
    logs checks the same values."""

    def __init__(self, name: str | None, reason: str, config: Any = None) -> None:
        # Run.__init__ is not called: it takes a spool and a sender, which this run must not make.
        self.name = name
        self.inactive = reason
        self.offline = False
        self.flush_timeout = 0.0
        self._step = 0
        self._logged = 0
        self._closed = False
        self.config = RunConfig(flatten_config(config) if config is not None else {}, self._keep_config)

    def _keep_config(self, flat: dict[str, Any] | None, tags: list[str] | None = None) -> None:
        return None

    @property
    def id(self) -> str | None:
        return None

    def log(
        self,
        values: Mapping[str, Any],
        step: int | None = None,
        metadata: Mapping[str, str] | None = None,
        *,
        commit: bool = True,
    ) -> None:
        if step is None:
            step = self._step
        self._step = step + 1 if commit else step

    def annotate(
        self, text: str, *, step: int | None = None, metadata: Mapping[str, Any] | None = None
    ) -> None:
        return None

    def flush(self, timeout: float | None = 30.0) -> None:
        return None

    def status(self) -> RunStatus:
        return RunStatus(
            experiment_id=None,
            logged=0,
            stored=0,
            pending=0,
            rejected=0,
            dropped=0,
            last_error=None,
            spool=None,
            offline=False,
            inactive=self.inactive,
        )

    def close(self, status: Literal["completed", "failed", "cancelled"] = "completed") -> RunStatus:
        self._closed = True
        return self.status()

    def _close(self, status: Literal["completed", "failed", "cancelled"]) -> RunStatus:
        return self.close(status)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closed = True

    def __repr__(self) -> str:
        return f"<IdleRun {self.name!r}: {self.inactive}>"
