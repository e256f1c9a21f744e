# Generated from src/tally/_async/_resources.py by scripts/unasync.py. Do not edit: edit the async file.
"""The resources of `Tally`: one class per tag of the spec. Requests are built by the generated client's
operation functions (`tally_api.api.<tag>.<operation>._get_kwargs`), answers decoded by
`tally._decoders.Decoders`.

Generated modules are imported inside the methods, so that `import tally` stays light.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar, Unpack, overload

import msgspec

from tally._base import new_idempotency_key, unset
from tally._binding import bind, bind_page
from tally._chunked import JSON, ChunkedBody
from tally._decoders import Decoders
from tally._events import EventInput, annotation_event_id, plan_batches, prepare_events
from tally._groups import COMPARE_MAX_SERIES, group_series
from tally._limits import check_annotation, check_metadata
from tally._options import RequestOptions, WriteOptions, check_idempotency_key
from tally._request_ids import remember, request_id
from tally._types import (
    NOT_GIVEN,
    Artifact,
    AuthStatus,
    CatalogEntry,
    CompareResult,
    CreatedIngestionKey,
    EventConflict,
    ExperimentStatus,
    ExperimentSummary,
    IngestionKey,
    IngestResult,
    LoginLink,
    MetadataValueCount,
    MetricPoint,
    MetricSeries,
    NotGiven,
    Page,
    SeriesSelector,
)

from ._objects import Annotation, Experiment, Folder, ObjectDecoders
from ._pagination import Paginator

if TYPE_CHECKING:
    import httpx

    from ._artifact_io import ArtifactReader
    from ._client import Core

__all__ = [
    "Annotations",
    "Artifacts",
    "Auth",
    "Experiments",
    "Folders",
    "IngestionKeys",
    "MetricCatalog",
    "Metrics",
]

T = TypeVar("T")


def _metadata(value: Mapping[str, Any] | None) -> Any:
    from tally_api.models.metadata import Metadata

    check_metadata(value)
    return unset(None if value is None else Metadata.from_dict(dict(value)))


def _given(value: Any, convert: Callable[[Any], Any] | None = None) -> Any:
    """A property of a partial update (PATCH): left out of the body (the generated client's UNSET) when the
    caller did not give it; None sent as None (it clears the field); anything else sent as is, or as `convert`
    makes it."""
    if isinstance(value, NotGiven):
        from tally_api.types import UNSET

        return UNSET
    return value if value is None or convert is None else convert(value)


def _patched_metadata(value: Mapping[str, Any] | NotGiven | None, model: Any) -> Any:
    """A partial update's `metadata`: left out, None (clears it), or the mapping checked against the contract's
    caps and wrapped in the operation's generated `model`."""
    if isinstance(value, NotGiven) or value is None:
        return _given(value)
    check_metadata(value)
    return model.from_dict(dict(value))


class _Resource:
    __slots__ = ("_core",)

    def __init__(self, core: Core) -> None:
        self._core = core

    def _object(
        self, operation: dict[str, Any], decoder: msgspec.json.Decoder[T], options: Mapping[str, Any]
    ) -> T:
        """One object that acts (`tally._async._objects`), decoded and bound to this client."""
        return bind(self._core.request(operation, decoder, options), self._core)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class Auth(_Resource):
    """What the client's credential is."""

    def status(self, **options: Unpack[RequestOptions]) -> AuthStatus:
        """The organisation, key kind and scopes of the client's API key, and where the SDK found the key."""
        from tally_api.api.auth import get_auth_status

        status = self._core.request(get_auth_status._get_kwargs(), Decoders.auth_status, options)
        sourced = msgspec.structs.replace(status, credential_source=self._core.state.config.credential_source)
        remember(sourced, request_id(status))
        return sourced

    def login_link(self, **options: Unpack[WriteOptions]) -> LoginLink:
        """A one-time link that opens the server's dashboard logged in (what `tally ui` opens): it works once,
        within a minute, and holds a random token, never the API key. `link.url(base_url)` is the whole link.
        Needs an organisation key."""
        from tally_api.api.auth import create_login_link

        return self._core.request(create_login_link._get_kwargs(), Decoders.login_link, options)


class Folders(_Resource):
    """A tree of folders that organises experiments."""

    def list(
        self,
        *,
        parent_id: str | None = None,
        include_archived: bool = False,
        limit: int | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Paginator[Folder]:
        """The folders directly under `parent_id` (the top level when None), oldest first; archived ones only
        with `include_archived=True`."""
        from tally_api.api.folders import list_folders

        def fetch(size: int | None, after: str | None) -> Page[Folder]:
            operation = list_folders._get_kwargs(
                parent_id=unset(parent_id),
                include_archived=unset(include_archived or None),
                page_size=unset(size),
                cursor=unset(after),
            )
            return bind_page(
                self._core.request(operation, ObjectDecoders.folder_page, options),
                self._core,
            )

        return Paginator(fetch, limit=limit, page_size=page_size, cursor=cursor)

    def create(
        self,
        name: str,
        *,
        parent_id: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **options: Unpack[WriteOptions],
    ) -> Folder:
        """Create a folder; names are unique within a parent."""
        from tally_api.api.folders import create_folder
        from tally_api.models.create_folder_request import CreateFolderRequest

        body = CreateFolderRequest(
            name=name,
            parent_id=unset(parent_id),
            description=unset(description),
            metadata=_metadata(metadata),
        )
        operation = create_folder._get_kwargs(body=body)
        return self._object(operation, ObjectDecoders.folder, options)

    def get(self, folder_id: str, **options: Unpack[RequestOptions]) -> Folder:
        """One folder."""
        from tally_api.api.folders import get_folder

        return self._object(get_folder._get_kwargs(folder_id), ObjectDecoders.folder, options)

    def patch(
        self,
        folder_id: str,
        *,
        description: str | NotGiven | None = NOT_GIVEN,
        metadata: Mapping[str, Any] | NotGiven | None = NOT_GIVEN,
        **options: Unpack[WriteOptions],
    ) -> Folder:
        """Change the description or metadata (replaced whole); None clears, absent leaves as is."""
        from tally_api.api.folders import patch_folder
        from tally_api.models.patch_folder_request import PatchFolderRequest
        from tally_api.models.patch_folder_request_metadata_type_0 import PatchFolderRequestMetadataType0

        if isinstance(description, NotGiven) and isinstance(metadata, NotGiven):
            raise ValueError("folders.patch needs description= or metadata= (None clears a field)")
        body = PatchFolderRequest(
            description=_given(description),
            metadata=_patched_metadata(metadata, PatchFolderRequestMetadataType0),
        )
        return self._object(patch_folder._get_kwargs(folder_id, body=body), ObjectDecoders.folder, options)

    def rename(self, folder_id: str, name: str, **options: Unpack[WriteOptions]) -> Folder:
        """Rename a folder; the new name must be unique within its parent."""
        from tally_api.api.folders import rename_folder
        from tally_api.models.rename_folder_request import RenameFolderRequest

        operation = rename_folder._get_kwargs(folder_id, body=RenameFolderRequest(name=name))
        return self._object(operation, ObjectDecoders.folder, options)

    def move(self, folder_id: str, parent_id: str | None, **options: Unpack[WriteOptions]) -> Folder:
        """Move a folder under `parent_id`, or to the top level with None."""
        from tally_api.api.folders import move_folder
        from tally_api.models.move_folder_request import MoveFolderRequest

        operation = move_folder._get_kwargs(folder_id, body=MoveFolderRequest(parent_id=parent_id))
        return self._object(operation, ObjectDecoders.folder, options)

    def archive(self, folder_id: str, **options: Unpack[WriteOptions]) -> Folder:
        """Archive a folder: `list()` leaves it out unless `include_archived=True`. What it holds keeps its own
        state (archive experiments one by one to stop their ingestion). Archiving twice changes nothing."""
        from tally_api.api.folders import archive_folder

        return self._object(archive_folder._get_kwargs(folder_id), ObjectDecoders.folder, options)

    def unarchive(self, folder_id: str, **options: Unpack[WriteOptions]) -> Folder:
        """Unarchive a folder (a folder that is not archived is answered as it is)."""
        from tally_api.api.folders import unarchive_folder

        return self._object(unarchive_folder._get_kwargs(folder_id), ObjectDecoders.folder, options)

    def delete(self, folder_id: str, **options: Unpack[WriteOptions]) -> None:
        """Delete an empty folder. A folder that holds experiments or folders (archived ones included) is refused
        with ConflictError code `folder_not_empty`, whose `details` count them: move or delete those first."""
        from tally_api.api.folders import delete_folder

        self._core.request(delete_folder._get_kwargs(folder_id), None, options)


class Experiments(_Resource):
    """Experiments and their lifecycle."""

    def list(
        self,
        *,
        folder_id: str | None = None,
        status: ExperimentStatus | str | None = None,
        name_prefix: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        tag: str | None = None,
        include_archived: bool = False,
        metadata_key: str | None = None,
        metadata_value: Any = NOT_GIVEN,
        order_by: str | None = None,
        group: str | None = None,
        limit: int | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Paginator[Experiment]:
        """Experiments matching every filter given (`tag`: those that carry it); archived ones only with
        `include_archived=True`. Oldest first unless `order_by` says otherwise: `"-created_at"` (newest first),
        `"name"`, `"-name"`, or a metric's summary, `"metric:val/loss:min"` (`last`, `min` or `max`; `-` in front
        for descending), experiments without that metric coming last either way. `metadata_key` (nested keys
        with dots: `"optim.lr"`) keeps those whose metadata has the key; with `metadata_value`, at exactly that
        value and type: `0.0003` the number (1 == 1.0), `"adam"` the string, `True`, `False`, `None`. `group`
        keeps one group's experiments (the ranks of a job: `client.run(..., group=...)`)."""
        from tally_api.api.experiments import list_experiments

        status_param = unset(None if status is None else _request_status(status))
        value_param = unset(None if isinstance(metadata_value, NotGiven) else _json_literal(metadata_value))

        def fetch(size: int | None, after: str | None) -> Page[Experiment]:
            operation = list_experiments._get_kwargs(
                folder_id=unset(folder_id),
                status=status_param,
                name_prefix=unset(name_prefix),
                created_after=unset(created_after),
                created_before=unset(created_before),
                tag=unset(tag),
                include_archived=unset(include_archived or None),
                metadata_key=unset(metadata_key),
                metadata_value=value_param,
                order_by=unset(order_by),
                group=unset(group),
                page_size=unset(size),
                cursor=unset(after),
            )
            return bind_page(
                self._core.request(operation, ObjectDecoders.experiment_page, options),
                self._core,
            )

        return Paginator(fetch, limit=limit, page_size=page_size, cursor=cursor)

    def create(
        self,
        name: str,
        *,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        folder_id: str | None = None,
        tags: Sequence[str] | None = None,
        group: str | None = None,
        **options: Unpack[WriteOptions],
    ) -> Experiment:
        """Create an experiment, in status `running`, with up to 32 distinct `tags`, in `group` (e.g. the job
        whose ranks each log to an experiment of their own; `list(group=...)` finds them)."""
        from tally_api.api.experiments import create_experiment
        from tally_api.models.create_experiment_request import CreateExperimentRequest

        body = CreateExperimentRequest(
            name=name,
            description=unset(description),
            metadata=_metadata(metadata),
            folder_id=unset(folder_id),
            tags=unset(_tags(tags)),
            group=unset(group),
        )
        operation = create_experiment._get_kwargs(body=body)
        return self._object(operation, ObjectDecoders.experiment, options)

    def get(self, experiment_id: str, **options: Unpack[RequestOptions]) -> Experiment:
        """One experiment."""
        from tally_api.api.experiments import get_experiment

        return self._object(get_experiment._get_kwargs(experiment_id), ObjectDecoders.experiment, options)

    def summary(
        self, experiment_id: str, *, name: str | None = None, **options: Unpack[RequestOptions]
    ) -> ExperimentSummary:
        """Each metric of the experiment (name and metadata set) with its count, first/last step, last value,
        min, max and last timestamp; the server keeps them at ingest, so this costs one small read. `name`: only
        that metric's."""
        from tally_api.api.experiments import get_experiment_summary

        operation = get_experiment_summary._get_kwargs(experiment_id, name=unset(name))
        return self._core.request(operation, Decoders.experiment_summary, options)

    def update(
        self,
        experiment_id: str,
        *,
        name: str | NotGiven = NOT_GIVEN,
        description: str | NotGiven | None = NOT_GIVEN,
        metadata: Mapping[str, Any] | NotGiven | None = NOT_GIVEN,
        tags: Sequence[str] | NotGiven | None = NOT_GIVEN,
        **options: Unpack[WriteOptions],
    ) -> Experiment:
        """Change the name, description, metadata (replaced whole) or tags (replaced whole); None clears, absent
        leaves as is."""
        from tally_api.api.experiments import update_experiment
        from tally_api.models.update_experiment_request import UpdateExperimentRequest
        from tally_api.models.update_experiment_request_metadata_type_0 import (
            UpdateExperimentRequestMetadataType0,
        )

        given = [not isinstance(value, NotGiven) for value in (name, description, metadata, tags)]
        if not any(given):
            raise ValueError(
                "experiments.update needs name=, description=, metadata= or tags= (None clears a field)"
            )
        body = UpdateExperimentRequest(
            name=_given(name),
            description=_given(description),
            metadata=_patched_metadata(metadata, UpdateExperimentRequestMetadataType0),
            tags=_given(tags, _tags),
        )
        return self._object(
            update_experiment._get_kwargs(experiment_id, body=body),
            ObjectDecoders.experiment,
            options,
        )

    def archive(self, experiment_id: str, **options: Unpack[WriteOptions]) -> Experiment:
        """Archive an experiment: `list()` leaves it out unless `include_archived=True`, and ingestion and
        annotations are refused (409 `experiment_archived`) until it is unarchived. Archiving twice changes
        nothing."""
        from tally_api.api.experiments import archive_experiment

        return self._object(archive_experiment._get_kwargs(experiment_id), ObjectDecoders.experiment, options)

    def unarchive(self, experiment_id: str, **options: Unpack[WriteOptions]) -> Experiment:
        """Unarchive an experiment: listed again, and accepting data again if it is running."""
        from tally_api.api.experiments import unarchive_experiment

        return self._object(
            unarchive_experiment._get_kwargs(experiment_id), ObjectDecoders.experiment, options
        )

    def update_status(
        self,
        experiment_id: str,
        status: ExperimentStatus | str,
        *,
        reopen: bool = False,
        **options: Unpack[WriteOptions],
    ) -> Experiment:
        """Move a running experiment to `completed`, `failed` or `cancelled`; terminal states are final, except
        that `update_status(id, "running", reopen=True)` reopens a completed, failed or cancelled experiment (a
        resumed job; `client.run(..., resume=...)` does it for you), and the server records the reopening as an
        annotation. Only an organisation key may."""
        from tally_api.api.experiments import update_experiment_status
        from tally_api.models.update_experiment_status_request import UpdateExperimentStatusRequest

        body = UpdateExperimentStatusRequest(
            status=_request_status(status), reopen=unset(True if reopen else None)
        )
        operation = update_experiment_status._get_kwargs(experiment_id, body=body)
        return self._object(operation, ObjectDecoders.experiment, options)

    def move(self, experiment_id: str, folder_id: str | None, **options: Unpack[WriteOptions]) -> Experiment:
        """Move an experiment into a folder, or out of every folder with None."""
        from tally_api.api.experiments import move_experiment
        from tally_api.models.move_experiment_request import MoveExperimentRequest

        operation = move_experiment._get_kwargs(
            experiment_id, body=MoveExperimentRequest(folder_id=folder_id)
        )
        return self._object(operation, ObjectDecoders.experiment, options)

    def delete(self, experiment_id: str, *, confirm: bool = False, **options: Unpack[WriteOptions]) -> None:
        """Delete an experiment with everything in it: its points, summaries, annotations and ingestion keys.
        It cannot be undone, so it needs `confirm=True` (a ValueError otherwise, before anything is sent).
        NotFoundError when the experiment does not exist (or no longer does)."""
        from tally_api.api.experiments import delete_experiment

        _confirmed(confirm, f"experiments.delete({experiment_id!r})")
        self._core.request(delete_experiment._get_kwargs(experiment_id), None, options)
        self._core.forget_ingestion_token(experiment_id)  # its keys were deleted with it


class Metrics(_Resource):
    """Metric ingestion, listing and comparison."""

    def ingest(
        self,
        experiment_id: str,
        events: Sequence[EventInput],
        *,
        sync: bool = True,
        **options: Unpack[WriteOptions],
    ) -> IngestResult:
        """Store metric events (dicts or `tally.MetricEvent`), with the experiment's ingestion key.

        Events without `client_event_id` get `tally.event_id(...)` when they have a step. Any number of
        events: batches over 10,000 events or 5 MiB are split, each sent with its own Idempotency-Key; the
        result sums the parts, with conflict indexes into `events`. `sync=True` answers once the points are
        readable. An `idempotency_key` given is used by the first batch; batch `i > 0` sends `<key>.<i>`."""
        prepared = prepare_events(experiment_id, events)
        accepted = duplicates = 0
        conflicts: builtins.list[EventConflict] = []
        result: IngestResult | None = None
        for index, (start, _end, body) in enumerate(plan_batches(prepared)):
            result = self._send_batch(
                experiment_id,
                body,
                sync=sync,
                idempotency_key=new_idempotency_key(),
                options=_batch_options(options, index),
            )
            accepted += result.accepted
            duplicates += result.duplicates
            if result.conflicts:
                conflicts.extend(
                    msgspec.structs.replace(conflict, index=conflict.index + start) if start else conflict
                    for conflict in result.conflicts
                )
        total = IngestResult(accepted=accepted, duplicates=duplicates, conflicts=tuple(conflicts))
        remember(total, None if result is None else request_id(result))  # the last request's id
        return total

    def _send_batch(
        self,
        experiment_id: str,
        body: bytes | ChunkedBody,
        *,
        sync: bool,
        idempotency_key: str,
        options: Mapping[str, Any],
    ) -> IngestResult:
        """One encoded batch, with the experiment's ingestion key (replaced once if the server revoked it). A
        `ChunkedBody` (a run's sender's, which passes no options) is streamed in its parts."""
        from tally_api.api.metrics import ingest_metrics

        from ._artifact_io import UploadBody

        core = self._core
        content, parts = (None, UploadBody(body, JSON)) if isinstance(body, ChunkedBody) else (body, None)

        def send(token: str) -> IngestResult:
            operation = ingest_metrics._get_kwargs(experiment_id, body=_empty_batch(), sync=sync)
            if parts is not None:
                operation.pop("json", None)  # the body is `parts`, streamed (upload= below)
            return core.request(
                operation,
                Decoders.ingest_result,
                options,
                token=token,
                content=content,
                ingest=True,
                idempotency_key=idempotency_key,
                upload=parts,
            )

        return core.with_ingestion_token(experiment_id, send)

    def list(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
        metadata_key: str | None = None,
        metadata_value: str | None = None,
        limit: int | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Paginator[MetricPoint]:
        """An experiment's metric points, by name, then step, then ingestion order."""
        from tally_api.api.metrics import list_metrics

        def fetch(size: int | None, after: str | None) -> Page[MetricPoint]:
            operation = list_metrics._get_kwargs(
                experiment_id,
                name=unset(name),
                min_step=unset(min_step),
                max_step=unset(max_step),
                metadata_key=unset(metadata_key),
                metadata_value=unset(metadata_value),
                page_size=unset(size),
                cursor=unset(after),
            )
            return self._core.request(operation, Decoders.metric_point_page, options)

        return Paginator(fetch, limit=limit, page_size=page_size, cursor=cursor)

    def series(
        self,
        experiment_id: str,
        name: str,
        *,
        max_points: int = 1000,
        min_step: int | None = None,
        max_step: int | None = None,
        metadata_key: str | None = None,
        metadata_value: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> MetricSeries:
        """One metric's curve downsampled exactly into at most `max_points` step buckets (count, min, max, mean,
        first, last each), in one request whatever the number of points: a one-step spike stays in its bucket's
        `max`, and a range of at most `max_points` steps comes back one step per bucket (zoom by narrowing
        `min_step` / `max_step`). Points logged without a step are counted in `unstepped_points`."""
        from tally_api.api.metrics import get_metric_series

        operation = get_metric_series._get_kwargs(
            experiment_id,
            name=name,
            max_points=max_points,
            min_step=unset(min_step),
            max_step=unset(max_step),
            metadata_key=unset(metadata_key),
            metadata_value=unset(metadata_value),
        )
        return self._core.request(operation, Decoders.metric_series, options)

    def compare(
        self,
        series: Sequence[SeriesSelector | Mapping[str, Any]],
        *,
        min_step: int | None = None,
        max_step: int | None = None,
        limit: int | None = None,
        **options: Unpack[WriteOptions],
    ) -> CompareResult:
        """Align up to 20 series (dicts or `tally.SeriesSelector`) by step into rows. For the experiments of one
        group (a job's ranks), `compare_group`."""
        from tally_api.api.metrics import compare_metrics
        from tally_api.models.compare_metrics_request import CompareMetricsRequest
        from tally_api.models.series_selector import SeriesSelector as RequestSeries

        selectors = [
            RequestSeries.from_dict(item.to_dict() if isinstance(item, SeriesSelector) else dict(item))
            for item in series
        ]
        body = CompareMetricsRequest(
            series=selectors, min_step=unset(min_step), max_step=unset(max_step), limit=unset(limit)
        )
        return self._core.request(compare_metrics._get_kwargs(body=body), Decoders.compare_result, options)

    def compare_group(
        self,
        group: str,
        name: str,
        *,
        metadata: Mapping[str, str] | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
        limit: int | None = None,
        **options: Unpack[RequestOptions],
    ) -> CompareResult:
        """`compare()` of metric `name` (with its `metadata` labels) in every experiment of `group` (the ranks of
        a job: `client.run(..., group=...)`), one column each, in the order of their names with numbers compared
        as numbers (`-rank2` before `-rank10`). A ValueError for an empty group or one of more than 20. Two
        requests (the group's list, then the compare), each with the `options`: both are reads."""
        listed = Experiments(self._core).list(group=group, limit=COMPARE_MAX_SERIES + 1, **options)
        series = group_series(group, [experiment for experiment in listed], name, metadata)
        return self.compare(series, min_step=min_step, max_step=max_step, limit=limit, **options)

    @overload
    def export(
        self,
        experiment_id: str,
        *,
        format: Literal["ndjson"] = "ndjson",
        name: str | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
        metadata_key: str | None = None,
        metadata_value: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Iterator[MetricPoint]: ...

    @overload
    def export(
        self,
        experiment_id: str,
        *,
        format: Literal["csv"],
        name: str | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
        metadata_key: str | None = None,
        metadata_value: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Iterator[dict[str, str]]: ...

    def export(
        self,
        experiment_id: str,
        *,
        format: Literal["ndjson", "csv"] = "ndjson",
        name: str | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
        metadata_key: str | None = None,
        metadata_value: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Iterator[MetricPoint] | Iterator[dict[str, str]]:
        """Every point of an experiment (or those the filters keep), in `list()`'s order, streamed in one request:
        `for point in client.metrics.export(experiment_id)`. Memory stays constant however many points
        there are (the body is decoded a chunk at a time), and it is several times faster than paging `list()`
        (`make bench`, export). `format="ndjson"` (default) yields `tally.MetricPoint`s; `format="csv"` yields
        one dict per row keyed by the CSV header's columns, every value a string (`step` empty for a point
        without one, `metadata` its JSON text). Points ingested during the export may or may not appear; none
        twice. A loop left early closes the connection once the iterator is closed (or collected).
        `timeout` bounds each read, not the whole export; an answer cut short raises `APIConnectionError`."""
        from tally._export import PointDecoder, RowDecoder, media_type

        accept = media_type(format)  # a bad format fails here, not at the first iteration
        decoder = PointDecoder() if format == "ndjson" else RowDecoder()
        opened = self._open_export(
            experiment_id, accept, name, min_step, max_step, metadata_key, metadata_value, options
        )
        return self._decoded(opened, decoder)

    def export_to(
        self,
        experiment_id: str,
        path: str | os.PathLike[str],
        *,
        format: Literal["ndjson", "csv"] = "ndjson",
        name: str | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
        metadata_key: str | None = None,
        metadata_value: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> int:
        """Write `export(...)`'s answer to the file `path` as the server sends it (NDJSON or CSV, nothing
        decoded, constant memory) and return how many points it holds. The bytes go to `<path>.partial`, renamed
        to `path` only once the whole export has arrived, so a cut export never leaves a file that looks whole."""
        from tally._export import media_type

        target = Path(path)
        partial = target.with_name(target.name + ".partial")
        opened = self._open_export(
            experiment_id, media_type(format), name, min_step, max_step, metadata_key, metadata_value, options
        )
        try:
            with opened as response:
                lines = self._written(response, partial)
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return lines - 1 if format == "csv" and lines else lines

    def _open_export(
        self,
        experiment_id: str,
        accept: str,
        name: str | None,
        min_step: int | None,
        max_step: int | None,
        metadata_key: str | None,
        metadata_value: str | None,
        options: Mapping[str, Any],
    ) -> contextlib.AbstractContextManager[httpx.Response]:
        from tally_api.api.metrics import export_metrics

        operation = export_metrics._get_kwargs(
            experiment_id,
            name=unset(name),
            min_step=unset(min_step),
            max_step=unset(max_step),
            metadata_key=unset(metadata_key),
            metadata_value=unset(metadata_value),
        )
        return self._core.stream(operation, options, accept=accept)

    @staticmethod
    def _written(response: httpx.Response, partial: Path) -> int:
        """The answer's bytes written to `partial` as they arrive; the number of lines written."""
        lines = 0
        with partial.open("wb") as out:
            for chunk in response.iter_bytes():
                out.write(chunk)
                lines += chunk.count(b"\n")
        return lines

    @staticmethod
    def _decoded(opened: contextlib.AbstractContextManager[httpx.Response], decoder: Any) -> Iterator[Any]:
        from tally._errors import validation_error

        with opened as response:
            try:
                for chunk in response.iter_bytes():
                    for item in decoder.feed(chunk):
                        yield item
                for item in decoder.finish():
                    yield item
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                raise validation_error(response, exc) from exc


class MetricCatalog(_Resource):
    """The metric names seen, with counts and metadata keys."""

    def list(
        self,
        *,
        experiment_id: str | None = None,
        folder_id: str | None = None,
        name_prefix: str | None = None,
        limit: int | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Paginator[CatalogEntry]:
        """Metric names in the organisation, an experiment, or a folder and its descendants, by name."""
        from tally_api.api.metric_catalog import list_metric_catalog

        def fetch(size: int | None, after: str | None) -> Page[CatalogEntry]:
            operation = list_metric_catalog._get_kwargs(
                experiment_id=unset(experiment_id),
                folder_id=unset(folder_id),
                name_prefix=unset(name_prefix),
                page_size=unset(size),
                cursor=unset(after),
            )
            return self._core.request(operation, Decoders.catalog_page, options)

        return Paginator(fetch, limit=limit, page_size=page_size, cursor=cursor)

    def inspect_values(
        self,
        metric_name: str,
        metadata_key: str,
        *,
        experiment_id: str | None = None,
        folder_id: str | None = None,
        limit: int | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Paginator[MetadataValueCount]:
        """The distinct values of one metadata key for one metric, with point counts, by value."""
        from tally_api.api.metric_catalog import inspect_metric_catalog_values

        def fetch(size: int | None, after: str | None) -> Page[MetadataValueCount]:
            operation = inspect_metric_catalog_values._get_kwargs(
                metric_name=metric_name,
                metadata_key=metadata_key,
                experiment_id=unset(experiment_id),
                folder_id=unset(folder_id),
                page_size=unset(size),
                cursor=unset(after),
            )
            return self._core.request(operation, Decoders.metadata_value_page, options)

        return Paginator(fetch, limit=limit, page_size=page_size, cursor=cursor)


class IngestionKeys(_Resource):
    """Per-experiment keys that may ingest metrics and create annotations."""

    def list(
        self,
        experiment_id: str,
        *,
        limit: int | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Paginator[IngestionKey]:
        """An experiment's ingestion keys, revoked ones included, oldest first. Tokens are never listed."""
        from tally_api.api.ingestion_keys import list_ingestion_keys

        def fetch(size: int | None, after: str | None) -> Page[IngestionKey]:
            operation = list_ingestion_keys._get_kwargs(
                experiment_id, page_size=unset(size), cursor=unset(after)
            )
            return self._core.request(operation, Decoders.ingestion_key_page, options)

        return Paginator(fetch, limit=limit, page_size=page_size, cursor=cursor)

    def create(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        expires_in_seconds: int | None = None,
        **options: Unpack[WriteOptions],
    ) -> CreatedIngestionKey:
        """A new ingestion key; its `token` is in this answer only. With `expires_in_seconds` (60 s to 366 days)
        the key stops working that long after creation; without it, it works until revoked."""
        from tally_api.api.ingestion_keys import create_ingestion_key
        from tally_api.models.create_ingestion_key_request import CreateIngestionKeyRequest

        body = CreateIngestionKeyRequest(name=unset(name), expires_in_seconds=unset(expires_in_seconds))
        operation = create_ingestion_key._get_kwargs(experiment_id, body=body)
        return self._core.request(operation, Decoders.created_ingestion_key, options)

    def get(self, key_id: str, **options: Unpack[RequestOptions]) -> IngestionKey:
        """One ingestion key (revoked or expired ones too), never its token: that is shown once, at creation."""
        from tally_api.api.ingestion_keys import get_ingestion_key

        return self._core.request(get_ingestion_key._get_kwargs(key_id), Decoders.ingestion_key, options)

    def revoke(self, key_id: str, **options: Unpack[WriteOptions]) -> IngestionKey:
        """Revoke a key (revoking a revoked key changes nothing)."""
        from tally_api.api.ingestion_keys import revoke_ingestion_key

        return self._core.request(revoke_ingestion_key._get_kwargs(key_id), Decoders.ingestion_key, options)

    def forget(self, experiment_id: str) -> None:
        """Drop the ingestion key this client cached for the experiment; the next ingest mints a new one."""
        self._core.forget_ingestion_token(experiment_id)


class Annotations(_Resource):
    """Free-text notes attached to an experiment, optionally at a step."""

    def list(
        self,
        experiment_id: str,
        *,
        limit: int | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Paginator[Annotation]:
        """An experiment's annotations, oldest first."""
        from tally_api.api.annotations import list_annotations

        def fetch(size: int | None, after: str | None) -> Page[Annotation]:
            operation = list_annotations._get_kwargs(
                experiment_id, page_size=unset(size), cursor=unset(after)
            )
            return bind_page(
                self._core.request(operation, ObjectDecoders.annotation_page, options),
                self._core,
            )

        return Paginator(fetch, limit=limit, page_size=page_size, cursor=cursor)

    def create(
        self,
        experiment_id: str,
        text: str,
        *,
        step: int | None = None,
        timestamp: datetime | None = None,
        metadata: Mapping[str, Any] | None = None,
        client_event_id: str | None = None,
        **options: Unpack[WriteOptions],
    ) -> Annotation:
        """Annotate an experiment, with its ingestion key. Idempotent by `client_event_id`, which defaults to
        deterministic id of the experiment, text, step, timestamp and metadata."""
        from tally_api.api.annotations import create_annotation
        from tally_api.models.create_annotation_request import CreateAnnotationRequest

        check_annotation(
            text, step=step, timestamp=timestamp, metadata=metadata, client_event_id=client_event_id
        )
        event_id = client_event_id or annotation_event_id(experiment_id, text, step, timestamp, metadata)
        body = CreateAnnotationRequest(
            text=text,
            client_event_id=event_id,
            step=step,
            timestamp=unset(timestamp),
            metadata=_metadata(metadata),
        )
        key = new_idempotency_key()  # one per call, kept if the ingestion key is replaced (the caller's wins)
        core = self._core

        def send(token: str) -> Annotation:
            operation = create_annotation._get_kwargs(experiment_id, body=body)
            return core.request(
                operation,
                ObjectDecoders.annotation,
                options,
                token=token,
                ingest=True,
                idempotency_key=key,
            )

        return bind(core.with_ingestion_token(experiment_id, send), core)

    def get(self, experiment_id: str, annotation_id: str, **options: Unpack[RequestOptions]) -> Annotation:
        """One annotation of an experiment (with the org key); NotFoundError when it is not in that experiment."""
        from tally_api.api.annotations import get_annotation

        operation = get_annotation._get_kwargs(experiment_id, annotation_id)
        return self._object(operation, ObjectDecoders.annotation, options)

    def update(
        self,
        experiment_id: str,
        annotation_id: str,
        *,
        text: str | NotGiven = NOT_GIVEN,
        metadata: Mapping[str, Any] | NotGiven | None = NOT_GIVEN,
        **options: Unpack[WriteOptions],
    ) -> Annotation:
        """Change an annotation's text or metadata (replaced whole; None clears it); absent leaves as is. Its step,
        timestamp and client_event_id stay, so creating it again with the old payload is then a conflict."""
        from tally_api.api.annotations import update_annotation
        from tally_api.models.update_annotation_request import UpdateAnnotationRequest
        from tally_api.models.update_annotation_request_metadata_type_0 import (
            UpdateAnnotationRequestMetadataType0,
        )

        if isinstance(text, NotGiven) and isinstance(metadata, NotGiven):
            raise ValueError("annotations.update needs text= or metadata= (metadata=None clears it)")
        if not isinstance(text, NotGiven):
            check_annotation(text)
        body = UpdateAnnotationRequest(
            text=_given(text), metadata=_patched_metadata(metadata, UpdateAnnotationRequestMetadataType0)
        )
        operation = update_annotation._get_kwargs(experiment_id, annotation_id, body=body)
        return self._object(operation, ObjectDecoders.annotation, options)

    def delete(self, experiment_id: str, annotation_id: str, **options: Unpack[WriteOptions]) -> None:
        """Delete an annotation (with the org key); NotFoundError when it does not exist. Its
        `client_event_id` is free again: creating an annotation with it makes a new one."""
        from tally_api.api.annotations import delete_annotation

        operation = delete_annotation._get_kwargs(experiment_id, annotation_id)
        self._core.request(operation, None, options)


class Artifacts(_Resource):
    """Files attached to an experiment: checkpoints, configs, plots. Uploads and downloads stream (the client
    holds a chunk, never the file) and are checked by sha256 on both sides."""

    def upload(
        self,
        experiment_id: str,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        name: str | None = None,
        sha256: str | None = None,
        **options: Unpack[WriteOptions],
    ) -> Artifact:
        """Attach a file (a path, or a seekable binary file object) to an experiment, as `name` (default: the
        file's name). Its sha256 is computed first (one read of the file), then the file is streamed; the server
        stores it only if the bytes that arrived have that sha256 (else `UnprocessableEntityError`,
        `checksum_mismatch`: the file changed meanwhile). Every attempt re-reads the file from its start and
        carries one Idempotency-Key, so an upload retried after a lost answer stores one artifact. Larger than
        the server's cap (5 GiB unless configured): `APIStatusError` 413, refused before the file is sent. Each
        network wait is bounded by the client's `timeout`, the upload as a whole is not. `sha256`: the file's
        digest when the caller has it already (`run.log_artifact` computes it while copying), which saves the
        read that computes it (about 1 s a GiB); the server still checks it."""
        from tally_api.api.artifacts import upload_artifact
        from tally_api.types import File

        from tally._artifacts import file_source, transfer_timeout

        from ._artifact_io import UploadBody

        source = file_source(file, name, sha256)
        operation = upload_artifact._get_kwargs(
            experiment_id, body=File(payload=io.BytesIO()), name=source.name, sha256=source.sha256
        )
        operation.pop("content", None)  # the body is the file, streamed (upload= below)
        options = {**options}
        options.setdefault("timeout", transfer_timeout(self._core.settings.timeout))
        return self._core.request(operation, Decoders.artifact, options, upload=UploadBody(source))

    def list(
        self,
        experiment_id: str,
        *,
        limit: int | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Paginator[Artifact]:
        """An experiment's artifacts (their metadata), oldest first."""
        from tally_api.api.artifacts import list_artifacts

        def fetch(size: int | None, after: str | None) -> Page[Artifact]:
            operation = list_artifacts._get_kwargs(experiment_id, page_size=unset(size), cursor=unset(after))
            return self._core.request(operation, Decoders.artifact_page, options)

        return Paginator(fetch, limit=limit, page_size=page_size, cursor=cursor)

    def get(self, experiment_id: str, artifact_id: str, **options: Unpack[RequestOptions]) -> Artifact:
        """One artifact's metadata (name, size, sha256); NotFoundError when it is not in that experiment."""
        from tally_api.api.artifacts import get_artifact

        operation = get_artifact._get_kwargs(experiment_id, artifact_id)
        return self._core.request(operation, Decoders.artifact, options)

    def download(
        self,
        experiment_id: str,
        artifact_id: str,
        *,
        to: str | os.PathLike[str],
        **options: Unpack[RequestOptions],
    ) -> Path:
        """Write an artifact's content to the file `to` and return its path. The bytes go to `<to>.partial`,
        hashed as they arrive, and are renamed to `to` only when their sha256 is the artifact's (else
        `ChecksumMismatchError`, and nothing is left behind), so a cut download never leaves a file that looks
        whole. Memory stays at one chunk whatever the size."""
        from tally_api.api.artifacts import download_artifact

        from tally._artifacts import OCTET_STREAM, Partial, parse_etag, transfer_timeout

        options = {**options}
        options.setdefault("timeout", transfer_timeout(self._core.settings.timeout))
        operation = download_artifact._get_kwargs(experiment_id, artifact_id)
        partial = Partial(to)
        try:
            with self._core.stream(operation, options, accept=OCTET_STREAM) as response:
                expected = parse_etag(response.headers.get("etag"))
                for chunk in response.iter_bytes():
                    partial.write(chunk)
        except BaseException:
            partial.abandon()
            raise
        return partial.commit(expected)

    def open(self, experiment_id: str, artifact_id: str, **options: Unpack[RequestOptions]) -> ArtifactReader:
        """A read-only, seekable file over an artifact's content that fetches only the byte ranges read:
        `with client.artifacts.open(experiment_id, artifact_id) as f: header = f.read(1024)`
        (`f.seek(offset)`, `f.tell()`, `f.size`). Each `read` is one ranged request: read in large pieces."""
        from tally_api.api.artifacts import download_artifact, get_artifact

        from ._artifact_io import ArtifactReader

        # The reader sends these two operations (named here, so the spec checks see which this method wraps).
        _ = (get_artifact._get_kwargs, download_artifact._get_kwargs)
        return ArtifactReader(self._core, experiment_id, artifact_id, options)

    def delete(self, experiment_id: str, artifact_id: str, **options: Unpack[WriteOptions]) -> None:
        """Delete an artifact (with the org key); NotFoundError when it does not exist. Its content goes from the
        server once no other artifact shares it."""
        from tally_api.api.artifacts import delete_artifact

        operation = delete_artifact._get_kwargs(experiment_id, artifact_id)
        self._core.request(operation, None, options)


def _confirmed(confirm: object, what: str) -> None:
    """A deletion that cannot be undone goes ahead only with `confirm=True` (the bool itself, not a truthy value:
    `confirm="no"` must not delete)."""
    if confirm is not True:
        raise ValueError(f"{what} cannot be undone: pass confirm=True to delete for good")


def _json_literal(value: Any) -> str:
    """A metadata value as the JSON literal listExperiments matches (`0.0003`, `"adam"`, `true`, `null`)."""
    if value is not None and not isinstance(value, str | int | float | bool):
        raise TypeError(
            f"metadata_value must be a str, int, float, bool or None (arrays and objects are not matched), "
            f"not {type(value).__name__}"
        )
    return msgspec.json.encode(value).decode()


def _tags(tags: Sequence[str] | None) -> builtins.list[str] | None:
    """Tags as the request carries them; a lone string is refused (it would be sent as one tag per character)."""
    if tags is None:
        return None
    if isinstance(tags, str):
        raise TypeError(f"tags must be a list of strings, not one string: use tags=[{tags!r}]")
    return builtins.list(tags)


def _request_status(status: ExperimentStatus | str) -> Any:
    from tally_api.models.experiment_status import ExperimentStatus as RequestStatus

    try:
        return RequestStatus(str(status))
    except ValueError:
        known = ", ".join(item.value for item in RequestStatus)
        raise ValueError(f"status must be one of {known}, not {status!r}") from None


def _batch_options(options: Mapping[str, Any], index: int) -> Mapping[str, Any]:
    """A split ingest's options for batch `index`: the caller's idempotency key, suffixed after the first."""
    key = options.get("idempotency_key")
    if key is None or index == 0:
        return options
    return {**options, "idempotency_key": check_idempotency_key(f"{check_idempotency_key(key)}.{index}")}


def _empty_batch() -> Any:
    """The generated request model, empty: the operation's route and query come from it, the body is ours."""
    from tally_api.models.ingest_metrics_request import IngestMetricsRequest

    return IngestMetricsRequest(events=[])
