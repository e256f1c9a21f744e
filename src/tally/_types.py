"""The public types: generated from `openapi/tally.yaml` into `tally_api_types` by `make generate`.

Nothing here restates a schema. Most names are the generated classes themselves; a few are thin subclasses that
add SDK-only behaviour (`AuthStatus.credential_source`, `CompareResult.to_pandas`, `CreatedIngestionKey`'s repr,
`MetricEvent`'s optional `client_event_id`) or keep the SDK's shorter name (`CatalogEntry`, `IngestResult`). A
property added to a response schema therefore reaches `tally.<Type>` with `make generate` alone.

`Experiment`, `Folder` and `Annotation` here are the generated, field-only classes: the public `tally.Experiment`,
... are their subclasses with methods that act (`tally._sync._objects`, `tally._async._objects`).

All are frozen msgspec Structs decoded straight from response bytes; arrays are tuples; free-form values
(`metadata`) are read-only at any depth (`FrozenDict`, `FrozenList`), except in metric points; `to_dict()` gives
plain dicts and lists (datetimes kept). Unknown fields from a newer server are ignored, and open enumerations
(`Experiment.status`, `AuthStatus.key_kind`) are plain strings, so a value this SDK does not know yet still
parses (compare them with `ExperimentStatus` / `KeyKind`, generated `StrEnum`s). Nullable and optional response
properties default to None (or the schema's default), so a new SDK reads an older server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import tally_api_types as _generated
from tally_api_types import (
    Annotation,
    Artifact,
    ComparedSeries,
    CompareRow,
    EventConflict,
    Experiment,
    ExperimentStatus,
    ExperimentSummary,
    Folder,
    Health,
    IngestionKey,
    KeyKind,
    MetadataValueCount,
    MetricPoint,
    MetricSeriesBucket,
    MetricSummary,
    Model,
    Page,
    SeriesSelector,
)

from tally._not_given import NOT_GIVEN, NotGiven

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = [
    "NOT_GIVEN",
    "Annotation",
    "Artifact",
    "AuthStatus",
    "CatalogEntry",
    "CompareResult",
    "CompareRow",
    "ComparedSeries",
    "CreatedIngestionKey",
    "EventConflict",
    "Experiment",
    "ExperimentStatus",
    "ExperimentSummary",
    "Folder",
    "Health",
    "IngestResult",
    "IngestionKey",
    "KeyKind",
    "LoginLink",
    "MetadataValueCount",
    "MetricEvent",
    "MetricPoint",
    "MetricSeries",
    "MetricSeriesBucket",
    "MetricSummary",
    "Model",
    "NotGiven",
    "Page",
    "SeriesSelector",
    "public_type",
]


# ---- SDK-only behaviour on generated types (no schema field restated) --------------------------------------
class AuthStatus(_generated.AuthStatus, frozen=True, kw_only=True):
    """The credential that made the request (spec: `AuthStatus`), plus where the SDK found it."""

    credential_source: str | None = None
    """SDK-only: which credential source won (`argument`, `env:TALLY_API_KEY`, `file:<path>`)."""


class CatalogEntry(_generated.MetricCatalogEntry, frozen=True, kw_only=True):
    """One metric name and what is known of it (spec: `MetricCatalogEntry`)."""


class IngestResult(_generated.IngestMetricsResult, frozen=True, kw_only=True):
    """The outcome of one `metrics.ingest` call (spec: `IngestMetricsResult`), summed over its batches.

    A conflict's `index` is the event's position in the list passed to `metrics.ingest`, even when the SDK split
    it."""


class CompareResult(_generated.CompareMetricsResult, frozen=True, kw_only=True):
    """Series aligned by step (spec: `CompareMetricsResult`)."""

    def to_pandas(self, labels: Sequence[str] | None = None) -> pd.DataFrame:
        """A pandas DataFrame: a `step` column, then one column per series, named by `labels` or readably
        (`tally._frames.series_labels`). Needs the `[pandas]` extra."""
        from tally._frames import compare_to_pandas

        return compare_to_pandas(self, labels)

    def to_polars(self, labels: Sequence[str] | None = None) -> pl.DataFrame:
        """`to_pandas`, as a polars DataFrame. Needs the `[polars]` extra."""
        from tally._frames import compare_to_polars

        return compare_to_polars(self, labels)


class MetricSeries(_generated.MetricSeries, frozen=True, kw_only=True):
    """A metric's curve downsampled exactly into step buckets (spec: `MetricSeries`; see
    `client.metrics.series`)."""

    def to_pandas(self) -> pd.DataFrame:
        """A pandas DataFrame, one row per bucket: `first_step`, `last_step`, `count`, `min`, `max`, `mean`,
        `first`, `last`. Needs the `[pandas]` extra."""
        from tally._frames import buckets_to_pandas

        return buckets_to_pandas(self)

    def to_polars(self) -> pl.DataFrame:
        """`to_pandas`, as a polars DataFrame. Needs the `[polars]` extra."""
        from tally._frames import buckets_to_polars

        return buckets_to_polars(self)


class CreatedIngestionKey(_generated.CreatedIngestionKey, frozen=True, kw_only=True):
    """A new ingestion key with its token, shown once (spec: `CreatedIngestionKey`); the repr hides it."""

    def _shown(self) -> list[tuple[str, Any]]:
        hidden = f"tk_ing_…{self.token_hint}"
        return [(name, hidden if name == "token" else getattr(self, name)) for name in self.__struct_fields__]

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self._shown())
        return f"CreatedIngestionKey({fields})"

    def __rich_repr__(self) -> Any:
        yield from self._shown()


class LoginLink(_generated.LoginLink, frozen=True, kw_only=True):
    """A one-time dashboard login link (spec: `LoginLink`; see `client.auth.login_link`). Its token is a
    secret for its minute of life: the repr hides it."""

    def url(self, base_url: str) -> str:
        """The link in full, on the server at `base_url`."""
        return base_url.rstrip("/") + self.path

    def __repr__(self) -> str:
        shown = self.path.split("token=", 1)[0] + "token=…" if "token=" in self.path else self.path
        return f"LoginLink(path={shown!r}, expires_at={self.expires_at!r})"

    def __rich_repr__(self) -> Any:
        yield "path", self.path.split("token=", 1)[0] + "token=…"
        yield "expires_at", self.expires_at


class MetricEvent(_generated.MetricEvent, frozen=True, kw_only=True, omit_defaults=True):
    """One metric observation to ingest (spec: `MetricEvent`); a plain dict with the same keys works too.

    `client_event_id` may be left out when `step` is set: the SDK then uses `tally.event_id(...)`."""

    client_event_id: str | None = None  # type: ignore[assignment]  # loosened on purpose, see the docstring


_SDK_TYPES: dict[type[Any], type[Any]] = {
    base: sdk
    for sdk in (
        AuthStatus,
        CatalogEntry,
        IngestResult,
        CompareResult,
        MetricSeries,
        CreatedIngestionKey,
        LoginLink,
        MetricEvent,
    )
    for base in sdk.__bases__
    if vars(_generated).get(base.__name__) is base
}


def public_type(generated: Any, acting: Mapping[type[Any], type[Any]] | None = None) -> Any:
    """The SDK's type for a generated one (`CompareMetricsResult` -> `CompareResult`, `Page[X]` -> `Page[...]`),
    derived from the subclasses above, so `client.request(...)` returns what the curated methods return; `acting`
    maps the types with methods to the calling client's classes (`Experiment` -> `tally.AsyncExperiment`)."""
    if generated is None:
        return None
    origin = getattr(generated, "__origin__", None)
    if origin is Page:
        (item,) = generated.__args__
        return Page[public_type(item, acting)]  # type: ignore[misc]
    if acting is not None and generated in acting:
        return acting[generated]
    return _SDK_TYPES.get(generated, generated)
