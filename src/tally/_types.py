"""The public types: immutable, typed, decoded straight from response bytes by msgspec.

Every response type mirrors one schema of `openapi/tally.yaml`; `tests/sdk/unit/test_types_match_spec.py`
checks their fields, required-ness and nullability against the spec so that they cannot drift. Unknown fields
from a newer server are ignored; open enumerations (`Experiment.status`, `AuthStatus.key_kind`) are plain
strings, so a value this SDK does not know yet still parses (compare them with `ExperimentStatus` / `KeyKind`,
which are `StrEnum`s).

Arrays are tuples; fields cannot be reassigned. `to_dict()` gives plain dicts and lists (datetimes kept).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = [
    "NOT_GIVEN",
    "Annotation",
    "AuthStatus",
    "CatalogEntry",
    "CompareResult",
    "CompareRow",
    "ComparedSeries",
    "CreatedIngestionKey",
    "EventConflict",
    "Experiment",
    "ExperimentStatus",
    "Folder",
    "Health",
    "IngestResult",
    "IngestionKey",
    "KeyKind",
    "MetadataValueCount",
    "MetricEvent",
    "MetricPoint",
    "NotGiven",
    "Page",
    "SeriesSelector",
]

T = TypeVar("T")


class NotGiven:
    """The type of `NOT_GIVEN`: an argument left out, unlike an explicit `None` (which clears a field)."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()


class ExperimentStatus(enum.StrEnum):
    """The statuses known to this SDK. `Experiment.status` is a `str`: it equals these, or a newer value."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class KeyKind(enum.StrEnum):
    """The key kinds known to this SDK. `AuthStatus.key_kind` is a `str`: one of these, or a newer value."""

    ORG = "org"
    INGESTION = "ingestion"


class _Model(msgspec.Struct, frozen=True, kw_only=True, weakref=True):
    """Base of every public type. Weak-referenceable, so that `tally.request_id(obj)` can find the request id of
    the response an object came from (`tally._request_ids`)."""

    @property
    def _request_id(self) -> str | None:
        """The `X-Request-Id` of the response this object came from (as openai-python's `obj._request_id`)."""
        from tally._request_ids import request_id

        return request_id(self)

    def to_dict(self) -> dict[str, Any]:
        """This object as plain dicts and lists (datetimes stay `datetime`)."""
        result: dict[str, Any] = msgspec.to_builtins(self, builtin_types=(datetime,))
        return result


# ---- responses ---------------------------------------------------------------------------------------------
class Health(_Model, frozen=True, kw_only=True):
    """The service's liveness (spec: `Health`)."""

    status: str
    version: str
    time: datetime


class AuthStatus(_Model, frozen=True, kw_only=True):
    """The credential that made the request (spec: `AuthStatus`), plus where the SDK found it."""

    organization_id: str
    organization_name: str
    key_id: str
    key_kind: str
    scopes: tuple[str, ...]
    experiment_id: str | None
    credential_source: str | None = None
    """SDK-only: which credential source won (`argument`, `env:TALLY_API_KEY`, `file:<path>`)."""


class Folder(_Model, frozen=True, kw_only=True):
    """A folder (spec: `Folder`)."""

    id: str
    name: str
    parent_id: str | None
    description: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None
    """When it was archived; None when it is not (or from a server older than contract 1.2.0)."""


class Experiment(_Model, frozen=True, kw_only=True):
    """An experiment (spec: `Experiment`). `status` is a str; compare it with `ExperimentStatus`."""

    id: str
    name: str
    folder_id: str | None
    description: str | None
    metadata: dict[str, Any]
    status: str
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    tags: tuple[str, ...] = ()
    """Its tags, in the order given (empty from a server older than contract 1.2.0)."""
    archived_at: datetime | None = None
    """When it was archived; None when it is not (or from a server older than contract 1.2.0)."""


class EventConflict(_Model, frozen=True, kw_only=True):
    """An event not stored: its `client_event_id` was used with another payload (spec: `EventConflict`).

    `index` is the event's position in the list passed to `metrics.ingest`, even when the SDK split it."""

    index: int
    client_event_id: str
    message: str


class IngestResult(_Model, frozen=True, kw_only=True):
    """The outcome of one `metrics.ingest` call (spec: `IngestMetricsResult`), summed over its batches."""

    accepted: int
    duplicates: int
    conflicts: tuple[EventConflict, ...]


class MetricPoint(_Model, frozen=True, kw_only=True):
    """One stored metric point (spec: `MetricPoint`)."""

    name: str
    value: float
    step: int | None
    timestamp: datetime
    metadata: dict[str, str]
    client_event_id: str


class ComparedSeries(_Model, frozen=True, kw_only=True):
    """A compared series and how many steps it has in the window (spec: `ComparedSeries`)."""

    experiment_id: str
    name: str
    metadata: dict[str, str]
    points: int


class CompareRow(_Model, frozen=True, kw_only=True):
    """One step, with each series' value at it, in the order of the series (spec: `CompareRow`)."""

    step: int
    values: tuple[float | None, ...]


class CompareResult(_Model, frozen=True, kw_only=True):
    """Series aligned by step (spec: `CompareMetricsResult`)."""

    series: tuple[ComparedSeries, ...]
    rows: tuple[CompareRow, ...]
    truncated: bool

    def to_pandas(self, labels: Sequence[str] | None = None) -> pd.DataFrame:
        """A pandas DataFrame: a `step` column, then one column per series, named by `labels` or readably
        (`tally._frames.series_labels`). Needs the `[pandas]` extra."""
        from tally._frames import compare_to_pandas

        return compare_to_pandas(self, labels)

    def to_polars(self, labels: Sequence[str] | None = None) -> pl.DataFrame:
        """`to_pandas`, as a polars DataFrame. Needs the `[polars]` extra."""
        from tally._frames import compare_to_polars

        return compare_to_polars(self, labels)


class CatalogEntry(_Model, frozen=True, kw_only=True):
    """One metric name and what is known of it (spec: `MetricCatalogEntry`)."""

    name: str
    count: int
    experiment_count: int
    first_seen: datetime
    last_seen: datetime
    metadata_keys: tuple[str, ...]


class MetadataValueCount(_Model, frozen=True, kw_only=True):
    """One distinct metadata value and how many points carry it (spec: `MetadataValueCount`)."""

    value: str
    count: int


class IngestionKey(_Model, frozen=True, kw_only=True):
    """An ingestion key, without its token (spec: `IngestionKey`)."""

    id: str
    experiment_id: str
    name: str | None
    token_hint: str
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None = None  # absent from servers older than the field: such keys never expire


class CreatedIngestionKey(IngestionKey, frozen=True, kw_only=True):
    """A new ingestion key with its token, shown once (spec: `CreatedIngestionKey`); the repr hides it."""

    token: str

    def __repr__(self) -> str:
        return (
            f"CreatedIngestionKey(id={self.id!r}, experiment_id={self.experiment_id!r}, name={self.name!r}, "
            f"token_hint={self.token_hint!r}, created_at={self.created_at!r}, "
            f"revoked_at={self.revoked_at!r}, expires_at={self.expires_at!r}, "
            f"token='tk_ing_…{self.token_hint}')"
        )

    def __rich_repr__(self) -> Any:
        yield "id", self.id
        yield "experiment_id", self.experiment_id
        yield "name", self.name
        yield "token_hint", self.token_hint
        yield "token", f"tk_ing_…{self.token_hint}"


class Annotation(_Model, frozen=True, kw_only=True):
    """A note on an experiment (spec: `Annotation`)."""

    id: str
    experiment_id: str
    text: str
    step: int | None
    timestamp: datetime
    metadata: dict[str, Any]
    client_event_id: str
    created_at: datetime


class Page(msgspec.Struct, Generic[T], frozen=True, kw_only=True, weakref=True):
    """One page of a list (spec: every `...Page` schema): its items and the cursor of the next page."""

    data: tuple[T, ...]
    next_cursor: str | None

    @property
    def _request_id(self) -> str | None:
        """The `X-Request-Id` of the response this page came from."""
        from tally._request_ids import request_id

        return request_id(self)


# ---- requests ----------------------------------------------------------------------------------------------
class MetricEvent(_Model, frozen=True, kw_only=True, omit_defaults=True):
    """One metric observation to ingest (spec: `MetricEvent`); a plain dict with the same keys works too.

    `client_event_id` may be left out when `step` is set: the SDK then uses `tally.event_id(...)`."""

    name: str
    value: float
    step: int | None = None
    timestamp: datetime | None = None
    metadata: dict[str, str] | None = None
    client_event_id: str | None = None


class SeriesSelector(_Model, frozen=True, kw_only=True, omit_defaults=True):
    """One series to compare (spec: `SeriesSelector`); a plain dict with the same keys works too."""

    experiment_id: str
    name: str
    metadata: dict[str, str] | None = None
