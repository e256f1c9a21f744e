# Generated from src/tally/_async/_run_port.py by scripts/unasync.py. Do not edit: edit the async file.
"""The run's sender's way to the server through one client: `tally.run._port.SenderPort` over `Tally`'s
resources, so the sender's requests take the client's credentials, retries, transport, hooks and logger.
`tally._run_ports.port_for` picks the port for a client (the async client's is driven from a loop of its own).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tally._chunked import ChunkedBody
from tally._errors import NotFoundError
from tally._types import IngestResult

if TYPE_CHECKING:
    from ._client import Tally

__all__ = ["RunPort"]

QUICK_TIMEOUT = 3.0
"""Seconds for the one attempt at a call the run's start makes (creating the experiment with `patient=False`,
reading its last step): the start must not wait on a server that is down."""


class RunPort:
    """The sender's calls on `client`. `owned`: the port made `client` for the run and closes it; a caller's own
    client is never closed by the run."""

    def __init__(self, client: Tally, *, owned: bool) -> None:
        self.client = client
        self.owned = owned

    @property
    def offline(self) -> bool:
        return self.client.offline

    @property
    def is_closed(self) -> bool:
        return self.client.is_closed

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
        experiment = self._client(patient).experiments.create(
            name,
            description=description,
            metadata=metadata,
            folder_id=folder_id,
            tags=tags,
            group=group,
            idempotency_key=idempotency_key,
        )
        return experiment.id

    def _client(self, patient: bool) -> Tally:
        return self.client if patient else self.client.with_options(max_retries=0, timeout=QUICK_TIMEOUT)

    def find_experiments(
        self, *, experiment_id: str | None, name: str | None, folder_id: str | None, patient: bool = True
    ) -> list[str]:
        client = self._client(patient)
        if experiment_id is not None:
            try:
                return [(client.experiments.get(experiment_id)).id]
            except NotFoundError:
                return []
        found: list[str] = []
        for experiment in client.experiments.list(name_prefix=name, folder_id=folder_id):
            if experiment.name == name:
                found.append(experiment.id)
        return found

    def reopen(self, experiment_id: str, *, patient: bool = True) -> None:
        self._client(patient).experiments.update_status(experiment_id, "running", reopen=True)

    def last_step(self, experiment_id: str) -> int | None:
        from tally.run._system import SYSTEM_PREFIX

        client = self.client.with_options(max_retries=0, timeout=QUICK_TIMEOUT)
        summary = client.experiments.summary(experiment_id)
        steps = [
            metric.last_step
            for metric in summary.metrics
            if metric.last_step is not None and not metric.name.startswith(SYSTEM_PREFIX)
        ]
        return max(steps, default=None)

    def ingest(self, experiment_id: str, events: list[dict[str, Any]]) -> IngestResult:
        return self.client.metrics.ingest(experiment_id, events)

    def ingest_encoded(self, experiment_id: str, body: ChunkedBody) -> IngestResult:
        """One request body the sender encoded itself (`{"events": [...]}`, within the contract's limits), from
        records `run.log()` checked when it took them: sent as `metrics.ingest` sends each of its batches, with
        the ingestion key and an Idempotency-Key of its own, without checking and encoding the events again,
        and in its parts (`tally._chunked`)."""
        from tally._base import new_idempotency_key

        return self.client.metrics._send_batch(
            experiment_id, body, sync=True, idempotency_key=new_idempotency_key(), options={}
        )

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
        self.client.annotations.create(
            experiment_id,
            text,
            step=step,
            timestamp=timestamp,
            metadata=metadata,
            client_event_id=client_event_id,
        )

    def merge_config(self, experiment_id: str, config: dict[str, Any] | None, tags: list[str] | None) -> None:
        from tally.run._config import CONFIG_KEY, nest

        experiment = self.client.experiments.get(experiment_id)
        metadata = dict(experiment.metadata)
        current = metadata.get(CONFIG_KEY)
        merged = nest(config or {}, into=current if isinstance(current, dict) else None)
        changes: dict[str, Any] = {}
        if config and merged != current:
            changes["metadata"] = {**metadata, CONFIG_KEY: merged}
        new_tags = [tag for tag in tags or () if tag not in experiment.tags]
        if new_tags:
            changes["tags"] = [*experiment.tags, *new_tags]
        if changes:
            self.client.experiments.update(experiment_id, **changes)

    def set_capture(self, experiment_id: str, captured: dict[str, Any]) -> None:
        from tally.run._capture import merged_metadata

        experiment = self.client.experiments.get(experiment_id)
        metadata = merged_metadata(dict(experiment.metadata), captured)
        if metadata is not None:
            self.client.experiments.update(experiment_id, metadata=metadata)

    def upload_artifact(
        self, experiment_id: str, path: Path, *, name: str, sha256: str, idempotency_key: str
    ) -> None:
        self.client.artifacts.upload(
            experiment_id, path, name=name, sha256=sha256, idempotency_key=idempotency_key
        )

    def set_status(self, experiment_id: str, status: str) -> None:
        self.client.experiments.update_status(experiment_id, status)

    def close(self) -> None:
        if self.owned:
            self.client.close()
