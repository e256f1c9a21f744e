"""The storage interface the HTTP layer talks to, its record types and its errors.

The handlers only ever call a `Repository`: `tally_server.storage.store.SqlRepository`, on SQLite (the embedded
default) or PostgreSQL (several processes on one database), chosen from `--db` by
`tally_server.storage.backends.open_repository`.

Records cross this boundary already shaped as the contract's JSON objects (dicts), with metadata kept as raw JSON
text (`msgspec.Raw`) so that listing a page does not parse and re-encode every point's metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from tally_server.contents import ContentStore, Staged
    from tally_server.storage.sessions import DashboardSessions

__all__ = [
    "BootstrapResult",
    "ConflictError",
    "ExperimentArchivedError",
    "ExperimentClosedError",
    "FolderNotEmptyError",
    "IdempotencyClaim",
    "InvalidTransitionError",
    "MetricBatchIn",
    "NotFoundError",
    "Page",
    "Principal",
    "Repository",
    "StorageError",
    "UnstorableTextError",
]

Json = dict[str, Any]
Key = tuple[Any, ...]


class MetricBatchIn(Protocol):
    """A validated ingest batch, column by column (`tally_server.ingest_batch.IngestBatch` is the one the server
    passes): one entry per event, in the batch's order. A step-less event's step is None, an event without a
    timestamp has `msgspec.UNSET`, and each label set is as stored (compact JSON text with sorted keys; `{}`
    when it has none)."""

    @property
    def names(self) -> Sequence[str]: ...
    @property
    def values(self) -> Sequence[float]: ...
    @property
    def client_event_ids(self) -> Sequence[str]: ...
    @property
    def steps(self) -> Sequence[int | None]: ...
    @property
    def timestamps(self) -> Sequence[object]: ...
    @property
    def labels(self) -> Sequence[str]: ...


class StorageError(Exception):
    """A rule of the data model refused the operation."""


class UnstorableTextError(StorageError):
    """A text value the database cannot hold (PostgreSQL refuses the NUL character in text)."""

    def __init__(self) -> None:
        super().__init__(
            "Text values cannot contain the NUL character (\\u0000) on this server's database; remove it."
        )


class NotFoundError(StorageError):
    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"No {kind} {ident}.")
        self.kind = kind
        self.ident = ident


class ConflictError(StorageError):
    def __init__(self, message: str, details: Json | None = None) -> None:
        super().__init__(message)
        self.details = details


class InvalidTransitionError(StorageError):
    def __init__(self, experiment_id: str, current: str, requested: str) -> None:
        super().__init__(f"Experiment {experiment_id} is {current}; terminal states are final.")
        self.current = current
        self.requested = requested


class ExperimentClosedError(StorageError):
    def __init__(self, experiment_id: str, status: str) -> None:
        super().__init__(f"Experiment {experiment_id} is {status}; it no longer accepts metrics.")
        self.experiment_id = experiment_id
        self.status = status


class FolderNotEmptyError(StorageError):
    def __init__(self, folder_id: str, experiments: int, folders: int) -> None:
        held = " and ".join(
            f"{count} {noun}{'' if count == 1 else 's'}"
            for count, noun in ((experiments, "experiment"), (folders, "folder"))
            if count
        )
        super().__init__(
            f"Folder {folder_id} holds {held} (archived ones included); move or delete them first, then delete it."
        )
        self.folder_id = folder_id
        self.experiments = experiments
        self.folders = folders


class ExperimentArchivedError(StorageError):
    def __init__(self, experiment_id: str) -> None:
        super().__init__(
            f"Experiment {experiment_id} is archived; it accepts no metrics or annotations. Unarchive it "
            f"(POST /v1/experiments/{experiment_id}/unarchive, or client.experiments.unarchive) to send data again."
        )
        self.experiment_id = experiment_id


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: the key, its kind and organisation, and for an ingestion key its experiment."""

    key_id: str
    kind: Literal["org", "ingestion"]
    org_pk: int
    org_id: str
    org_name: str
    experiment_pk: int | None = None
    experiment_id: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: the items, and the keyset position after the last one (None on the last page)."""

    items: list[Json]
    next_key: Key | None


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    org_id: str
    created_org: bool
    new_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """The outcome of claiming an Idempotency-Key: `claimed` (run it), `running`, `mismatch`, or `done`."""

    state: Literal["claimed", "running", "mismatch", "done"]
    status: int = 0
    body: bytes = field(default=b"", repr=False)
    headers: dict[str, str] = field(default_factory=dict)


class Repository(Protocol):
    """Everything the server stores and reads."""

    sessions: DashboardSessions
    """The dashboard's sessions and login links (storage/sessions.py)."""

    def close(self) -> None: ...

    def check_available(self) -> None:
        """Raise a `tally_server.storage.faults.DatabaseFault` when the database cannot serve now (for the
        health check: a SQLite file deleted or replaced under the server); cheap, no query."""
        ...

    def atomic(self) -> AbstractContextManager[None]:
        """A transaction around every write this thread makes inside the block: all of them are committed
        together when the block ends, or none if it raises. The pipeline runs an operation and stores its
        idempotent answer inside one, so a crash can never leave the effect without its record."""
        ...

    # organisations and keys
    def bootstrap(self, token: str | None, *, mint_if_existing: bool) -> BootstrapResult: ...
    def create_organization(self, name: str) -> tuple[str, str]: ...
    def authenticate(self, token: str) -> Principal | None: ...
    def experiment_ref(self, org_pk: int, experiment_id: str) -> tuple[int, str]: ...

    # folders
    def list_folders(
        self,
        org_pk: int,
        parent_id: str | None,
        limit: int,
        after: Key | None,
        include_archived: bool = False,
    ) -> Page: ...
    def create_folder(
        self, org_pk: int, name: str, parent_id: str | None, description: str | None, metadata: Any
    ) -> Json: ...
    def get_folder(self, org_pk: int, folder_id: str) -> Json: ...
    def patch_folder(self, org_pk: int, folder_id: str, changes: Json) -> Json: ...
    def rename_folder(self, org_pk: int, folder_id: str, name: str) -> Json: ...
    def move_folder(self, org_pk: int, folder_id: str, parent_id: str | None) -> Json: ...
    def delete_folder(self, org_pk: int, folder_id: str) -> None:
        """Delete an empty folder; FolderNotEmptyError (with counts) when it holds experiments or folders."""
        ...

    def set_folder_archived(self, org_pk: int, folder_id: str, archived: bool) -> Json:
        """Archive (or unarchive) a folder; a no-op answering the folder as it is when already so."""
        ...

    # experiments
    def list_experiments(self, org_pk: int, filters: Json, limit: int, after: Key | None) -> Page: ...
    def create_experiment(
        self,
        org_pk: int,
        name: str,
        folder_id: str | None,
        description: str | None,
        metadata: Any,
        tags: Sequence[str] = (),
        group: str | None = None,
    ) -> Json: ...
    def get_experiment(self, org_pk: int, experiment_id: str) -> Json: ...
    def update_experiment_status(
        self, org_pk: int, experiment_id: str, status: str, *, reopened_by: str | None = None
    ) -> Json:
        """Set the status; a terminal one is final unless `reopened_by` (the key id asking for the explicit
        reopen to `running`), in which case the reopening is recorded as an annotation in the same
        transaction."""
        ...

    def move_experiment(self, org_pk: int, experiment_id: str, folder_id: str | None) -> Json: ...
    def update_experiment(self, org_pk: int, experiment_id: str, changes: Json) -> Json:
        """Change name, description, metadata or tags: absent keys stay, None clears."""
        ...

    def set_experiment_archived(self, org_pk: int, experiment_id: str, archived: bool) -> Json:
        """Archive (or unarchive) an experiment; a no-op answering it as it is when already so."""
        ...

    def delete_experiment(self, org_pk: int, experiment_id: str) -> None:
        """Delete the experiment and every row that refers to it, in one transaction; NotFoundError if none."""
        ...

    # metrics
    def ingest_metrics(self, experiment_pk: int, experiment_id: str, batch: MetricBatchIn) -> Json: ...
    def list_metrics(
        self, org_pk: int, experiment_id: str, filters: Json, limit: int, after: Key | None
    ) -> Page: ...
    def get_experiment_summary(self, org_pk: int, experiment_id: str, name: str | None) -> Json:
        """`ExperimentSummary`: the summaries ingestion keeps per metric name and label set."""

    def metric_series(self, org_pk: int, experiment_id: str, filters: Json) -> Json:
        """`getMetricSeries`: the buckets of one metric's curve (filters: the operation's query parameters)."""
        ...

    def compare_metrics(
        self, org_pk: int, series: Sequence[Json], min_step: int | None, max_step: int | None, limit: int
    ) -> Json: ...
    def list_metric_catalog(
        self,
        org_pk: int,
        experiment_id: str | None,
        folder_id: str | None,
        name_prefix: str | None,
        limit: int,
        after: Key | None,
    ) -> Page: ...
    def inspect_metric_values(
        self,
        org_pk: int,
        metric_name: str,
        metadata_key: str,
        experiment_id: str | None,
        folder_id: str | None,
        limit: int,
        after: Key | None,
    ) -> Page: ...

    # ingestion keys
    def list_ingestion_keys(self, org_pk: int, experiment_id: str, limit: int, after: Key | None) -> Page: ...
    def create_ingestion_key(
        self, org_pk: int, experiment_id: str, name: str | None, expires_in_seconds: int | None = None
    ) -> Json: ...
    def reissue_ingestion_token(self, org_pk: int, key_id: str) -> Json: ...
    def get_ingestion_key(self, org_pk: int, key_id: str) -> Json: ...
    def revoke_ingestion_key(self, org_pk: int, key_id: str) -> Json: ...

    # annotations
    def list_annotations(self, org_pk: int, experiment_id: str, limit: int, after: Key | None) -> Page: ...
    def create_annotation(
        self, experiment_pk: int, experiment_id: str, payload: Json
    ) -> tuple[bool, Json]: ...
    def get_annotation(self, org_pk: int, experiment_id: str, annotation_id: str) -> Json: ...
    def update_annotation(self, org_pk: int, experiment_id: str, annotation_id: str, changes: Json) -> Json:
        """Change text or metadata: absent keys stay, metadata None clears it."""
        ...

    def delete_annotation(self, org_pk: int, experiment_id: str, annotation_id: str) -> None:
        """Delete one annotation (NotFoundError when absent); its client_event_id is free again."""
        ...

    # artifacts (storage/artifacts.py; their contents in tally_server.contents)
    contents: ContentStore | None
    """Where artifact contents live; attached by `create_app` (None: artifact operations fail)."""

    def create_artifact(self, org_pk: int, experiment_id: str, name: str, staged: Staged) -> Json:
        """Record a whole, checked upload and publish its content, in one transaction."""
        ...

    def list_artifacts(self, org_pk: int, experiment_id: str, limit: int, after: Key | None) -> Page: ...
    def get_artifact(self, org_pk: int, experiment_id: str, artifact_id: str) -> Json: ...
    def delete_artifact(self, org_pk: int, experiment_id: str, artifact_id: str) -> None:
        """Delete one artifact (NotFoundError when absent), and its content when no other artifact uses it."""
        ...

    # idempotency
    def idempotency_claim(
        self,
        org_pk: int,
        key: str,
        fingerprint: str,
        now_us: int,
        expire_before_us: int,
        stale_before_us: int,
    ) -> IdempotencyClaim: ...
    def idempotency_complete(
        self, org_pk: int, key: str, status: int, body: bytes, headers: dict[str, str]
    ) -> None: ...
    def idempotency_release(self, org_pk: int, key: str) -> None: ...
    def idempotency_purge(self, expire_before_us: int) -> int: ...
