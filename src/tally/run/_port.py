"""What the run's sender needs of a client, and nothing more: `SenderPort`.

The run package never imports a client. `client.run(...)` hands the run a port over the caller's own client
(`tally._run_ports.port_for`), so every request of the sender goes through that client's credentials, settings,
transport or `http_client`, proxy, event hooks and logger; `tally sync` hands it one over a client built the
usual way. Tests hand it a stand-in (`tests/sdk/unit/test_run_sender.py`).

Every write is safe to repeat: the client mints one Idempotency-Key per call and resends it on its own retries;
across calls (a batch re-sent after a crash) the events' `client_event_id`s make the server count duplicates,
and the experiment is created under the run's stable `idempotency_key`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from tally._types import IngestResult

__all__ = ["SenderPort"]


class SenderPort(Protocol):
    """The calls the sender makes. Called from the sender's threads (two at most at once); must be thread-safe."""

    @property
    def offline(self) -> bool:
        """True when the client has no server (`Tally(offline=True)`): the run only spools."""
        ...

    @property
    def is_closed(self) -> bool:
        """True once the client this port sends through is closed: nothing more can be sent through it."""
        ...

    def create_experiment(
        self,
        name: str,
        *,
        description: str | None,
        metadata: Any,
        folder_id: str | None,
        tags: list[str] | None = None,
        idempotency_key: str,
        patient: bool = True,
        group: str | None = None,
    ) -> str:
        """Create the run's experiment, in `group` when the run has one (or get it back, for a key already used),
        and return its id. `patient=False`: one quick attempt (the run's start, which must not wait on a server
        that is down)."""
        ...

    def find_experiments(
        self, *, experiment_id: str | None, name: str | None, folder_id: str | None, patient: bool = True
    ) -> list[str]:
        """The ids of the experiments to resume: the one of `experiment_id` (none when it does not exist), else
        every unarchived one called exactly `name` (within `folder_id` when given)."""
        ...

    def reopen(self, experiment_id: str, *, patient: bool = True) -> None:
        """Make a resumed experiment `running` again: the contract's explicit reopen (recorded by the server as
        an annotation) of a completed, failed or cancelled one; nothing for a running one."""
        ...

    def last_step(self, experiment_id: str) -> int | None:
        """The highest step stored in the experiment, over all its metrics but the system metrics (`system/...`,
        stepped by the clock: `tally.run._system`) (None when no point has one): one
        quick read of its summary when a resumed run starts, so that `log()` without `step=` continues after it."""
        ...

    def ingest(self, experiment_id: str, events: list[dict[str, Any]]) -> IngestResult:
        """Store one batch of metric events (at most the contract's events per request)."""
        ...

    def annotate(
        self,
        experiment_id: str,
        *,
        text: str,
        step: int | None,
        timestamp: datetime,
        metadata: Any,
        client_event_id: str,
    ) -> None:
        """Store one annotation."""
        ...

    def merge_config(self, experiment_id: str, config: dict[str, Any] | None, tags: list[str] | None) -> None:
        """Merge dotted `config` keys into the experiment's metadata under `config`, and add `tags` to its own (a
        read, then an update that sends only what changed)."""
        ...

    def set_capture(self, experiment_id: str, captured: dict[str, Any]) -> None:
        """Set the experiment's metadata key `capture` to what the run captured (`tally.run._capture`), replacing
        an earlier one and fitted into the metadata's limits (a read, then an update when it changed)."""

    def upload_artifact(
        self, experiment_id: str, path: Path, *, name: str, sha256: str, idempotency_key: str
    ) -> None:
        """Upload the file at `path` (whose digest is `sha256`, computed when it was copied) as artifact `name`
        (streamed; the same key stores it once however often it is sent)."""
        ...

    def set_status(self, experiment_id: str, status: str) -> None:
        """Set the experiment's final status."""
        ...

    def close(self) -> None:
        """Release what the port made for the run (never the caller's own client)."""
        ...
