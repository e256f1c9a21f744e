"""The objects that act, as `AsyncTally` returns them: `AsyncExperiment`, `AsyncFolder`, `AsyncAnnotation`.

Each is the spec's frozen type (`tally_api_types`) with methods bound to the client that fetched it:

    experiment = await client.experiments.get(experiment_id)
    experiment = await experiment.update(description="lr 3e-4")   # a new object; `experiment` is unchanged
    async for point in experiment.metrics.list(name="loss"):
        ...

Every method delegates to the resource method of the same name (`_resources.py` beside this module) with the same
keyword arguments and per-call options (`**options`): one implementation of each call. The binding, equality,
pickling and the unbound message are `tally._binding`'s. The sync twins (`tally.Experiment`, `tally.Folder`,
`tally.Annotation`) are derived from this file by `scripts/unasync.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Unpack

import tally_api_types as _generated

from tally._binding import Acting, bound_core
from tally._decoder import decoder
from tally._options import RequestOptions, WriteOptions
from tally._types import (
    NOT_GIVEN,
    ExperimentStatus,
    ExperimentSummary,
    MetricPoint,
    MetricSeries,
    NotGiven,
    Page,
)

from ._pagination import AsyncPaginator

if TYPE_CHECKING:
    from ._client import AsyncCore
    from ._resources import AsyncAnnotations, AsyncExperiments, AsyncFolders, AsyncMetrics

__all__ = [
    "AsyncAnnotation",
    "AsyncExperiment",
    "AsyncExperimentAnnotations",
    "AsyncExperimentMetrics",
    "AsyncFolder",
    "AsyncFolderExperiments",
    "AsyncObjectDecoders",
]


def _core(obj: Acting) -> AsyncCore:
    core: AsyncCore = bound_core(obj)
    return core


# The resources, on the core `obj` is bound to. Imported here, not at the top: the resources import this module
# (they decode into its classes).
def _experiments(obj: Acting) -> AsyncExperiments:
    from ._resources import AsyncExperiments

    return AsyncExperiments(_core(obj))


def _metrics(obj: Acting) -> AsyncMetrics:
    from ._resources import AsyncMetrics

    return AsyncMetrics(_core(obj))


def _annotations(obj: Acting) -> AsyncAnnotations:
    from ._resources import AsyncAnnotations

    return AsyncAnnotations(_core(obj))


def _folders(obj: Acting) -> AsyncFolders:
    from ._resources import AsyncFolders

    return AsyncFolders(_core(obj))


class AsyncExperiment(Acting, _generated.Experiment, frozen=True, kw_only=True, dict=True):
    """An experiment (spec: `Experiment`), deeply immutable, with methods that act through the client that
    fetched it; each returns a new object. Unpickled or built by hand, it is unbound: its methods raise
    `UnboundObjectError`."""

    def _fetch_hint(self) -> str:
        return f"client.experiments.get({self.id!r})"

    @property
    def metrics(self) -> AsyncExperimentMetrics:
        """Its metric points: `experiment.metrics.list(...)`."""
        return AsyncExperimentMetrics(self)

    @property
    def annotations(self) -> AsyncExperimentAnnotations:
        """Its annotations: `experiment.annotations.list()`."""
        return AsyncExperimentAnnotations(self)

    async def update(
        self,
        *,
        name: str | NotGiven = NOT_GIVEN,
        description: str | NotGiven | None = NOT_GIVEN,
        metadata: Mapping[str, Any] | NotGiven | None = NOT_GIVEN,
        tags: Sequence[str] | NotGiven | None = NOT_GIVEN,
        **options: Unpack[WriteOptions],
    ) -> AsyncExperiment:
        """`client.experiments.update(experiment.id, ...)`: change the name, description, metadata or tags."""
        return await _experiments(self).update(
            self.id, name=name, description=description, metadata=metadata, tags=tags, **options
        )

    async def archive(self, **options: Unpack[WriteOptions]) -> AsyncExperiment:
        """`client.experiments.archive(experiment.id)`."""
        return await _experiments(self).archive(self.id, **options)

    async def unarchive(self, **options: Unpack[WriteOptions]) -> AsyncExperiment:
        """`client.experiments.unarchive(experiment.id)`."""
        return await _experiments(self).unarchive(self.id, **options)

    async def set_status(
        self, status: ExperimentStatus | str, *, reopen: bool = False, **options: Unpack[WriteOptions]
    ) -> AsyncExperiment:
        """`client.experiments.update_status(experiment.id, status, reopen=...)`."""
        return await _experiments(self).update_status(self.id, status, reopen=reopen, **options)

    async def move(self, folder_id: str | None, **options: Unpack[WriteOptions]) -> AsyncExperiment:
        """`client.experiments.move(experiment.id, folder_id)`: into a folder, or out of every folder with None."""
        return await _experiments(self).move(self.id, folder_id, **options)

    async def summary(
        self, *, name: str | None = None, **options: Unpack[RequestOptions]
    ) -> ExperimentSummary:
        """`client.experiments.summary(experiment.id, name=...)`."""
        return await _experiments(self).summary(self.id, name=name, **options)

    async def series(
        self,
        name: str,
        *,
        max_points: int = 1000,
        min_step: int | None = None,
        max_step: int | None = None,
        metadata_key: str | None = None,
        metadata_value: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> MetricSeries:
        """`client.metrics.series(experiment.id, name, ...)`: one metric's curve in at most `max_points`
        buckets."""
        return await _metrics(self).series(
            self.id,
            name,
            max_points=max_points,
            min_step=min_step,
            max_step=max_step,
            metadata_key=metadata_key,
            metadata_value=metadata_value,
            **options,
        )


class AsyncExperimentMetrics:
    """`experiment.metrics`: the experiment's metric points."""

    __slots__ = ("_experiment",)

    def __init__(self, experiment: AsyncExperiment) -> None:
        self._experiment = experiment

    def list(
        self,
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
    ) -> AsyncPaginator[MetricPoint]:
        """`client.metrics.list(experiment.id, ...)`."""
        experiment = self._experiment
        return _metrics(experiment).list(
            experiment.id,
            name=name,
            min_step=min_step,
            max_step=max_step,
            metadata_key=metadata_key,
            metadata_value=metadata_value,
            limit=limit,
            page_size=page_size,
            cursor=cursor,
            **options,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._experiment.id}>"


class AsyncExperimentAnnotations:
    """`experiment.annotations`: the experiment's annotations."""

    __slots__ = ("_experiment",)

    def __init__(self, experiment: AsyncExperiment) -> None:
        self._experiment = experiment

    def list(
        self,
        *,
        limit: int | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> AsyncPaginator[AsyncAnnotation]:
        """`client.annotations.list(experiment.id, ...)`."""
        experiment = self._experiment
        return _annotations(experiment).list(
            experiment.id, limit=limit, page_size=page_size, cursor=cursor, **options
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._experiment.id}>"


class AsyncFolder(Acting, _generated.Folder, frozen=True, kw_only=True, dict=True):
    """A folder (spec: `Folder`), deeply immutable, with methods that act through the client that fetched it;
    each returns a new object. Unpickled or built by hand, it is unbound: its methods raise
    `UnboundObjectError`."""

    def _fetch_hint(self) -> str:
        return f"client.folders.get({self.id!r})"

    @property
    def experiments(self) -> AsyncFolderExperiments:
        """The experiments directly in it: `folder.experiments.list(...)`."""
        return AsyncFolderExperiments(self)

    async def archive(self, **options: Unpack[WriteOptions]) -> AsyncFolder:
        """`client.folders.archive(folder.id)`."""
        return await _folders(self).archive(self.id, **options)

    async def unarchive(self, **options: Unpack[WriteOptions]) -> AsyncFolder:
        """`client.folders.unarchive(folder.id)`."""
        return await _folders(self).unarchive(self.id, **options)


class AsyncFolderExperiments:
    """`folder.experiments`: the experiments directly in the folder."""

    __slots__ = ("_folder",)

    def __init__(self, folder: AsyncFolder) -> None:
        self._folder = folder

    def list(
        self,
        *,
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
    ) -> AsyncPaginator[AsyncExperiment]:
        """`client.experiments.list(folder_id=folder.id, ...)`."""
        folder = self._folder
        return _experiments(folder).list(
            folder_id=folder.id,
            status=status,
            name_prefix=name_prefix,
            created_after=created_after,
            created_before=created_before,
            tag=tag,
            include_archived=include_archived,
            metadata_key=metadata_key,
            metadata_value=metadata_value,
            order_by=order_by,
            group=group,
            limit=limit,
            page_size=page_size,
            cursor=cursor,
            **options,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._folder.id}>"


class AsyncAnnotation(Acting, _generated.Annotation, frozen=True, kw_only=True, dict=True):
    """An annotation (spec: `Annotation`), deeply immutable, with methods that act through the client that
    fetched it. Unpickled or built by hand, it is unbound: its methods raise `UnboundObjectError`."""

    def _fetch_hint(self) -> str:
        return f"client.annotations.get({self.experiment_id!r}, {self.id!r})"

    async def delete(self, **options: Unpack[WriteOptions]) -> None:
        """`client.annotations.delete(annotation.experiment_id, annotation.id)`."""
        await _annotations(self).delete(self.experiment_id, self.id, **options)


class AsyncObjectDecoders:
    """One msgspec decoder per object that acts, built on first use (`tally._decoder`); the resources bind what
    they decode."""

    experiment = decoder(AsyncExperiment)
    experiment_page = decoder(Page[AsyncExperiment])
    folder = decoder(AsyncFolder)
    folder_page = decoder(Page[AsyncFolder])
    annotation = decoder(AsyncAnnotation)
    annotation_page = decoder(Page[AsyncAnnotation])
    acting: Mapping[type[Any], type[Any]] = {
        _generated.Experiment: AsyncExperiment,
        _generated.Folder: AsyncFolder,
        _generated.Annotation: AsyncAnnotation,
    }
    """The generated type -> this client's type that acts, for `client.request(...)`'s answers."""
