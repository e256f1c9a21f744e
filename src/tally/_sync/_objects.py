# Generated from src/tally/_async/_objects.py by scripts/unasync.py. Do not edit: edit the async file.
"""The objects that act, as `Tally` returns them: `Experiment`, `Folder`, `Annotation`.

Each is the spec's frozen type (`tally_api_types`) with methods bound to the client that fetched it:

    experiment = client.experiments.get(experiment_id)
    experiment = experiment.update(description="lr 3e-4")   # a new object; `experiment` is unchanged
    for point in experiment.metrics.list(name="loss"):
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

from ._pagination import Paginator

if TYPE_CHECKING:
    from ._client import Core
    from ._resources import Annotations, Experiments, Folders, Metrics

__all__ = [
    "Annotation",
    "Experiment",
    "ExperimentAnnotations",
    "ExperimentMetrics",
    "Folder",
    "FolderExperiments",
    "ObjectDecoders",
]


def _core(obj: Acting) -> Core:
    core: Core = bound_core(obj)
    return core


# The resources, on the core `obj` is bound to. Imported here, not at the top: the resources import this module
# (they decode into its classes).
def _experiments(obj: Acting) -> Experiments:
    from ._resources import Experiments

    return Experiments(_core(obj))


def _metrics(obj: Acting) -> Metrics:
    from ._resources import Metrics

    return Metrics(_core(obj))


def _annotations(obj: Acting) -> Annotations:
    from ._resources import Annotations

    return Annotations(_core(obj))


def _folders(obj: Acting) -> Folders:
    from ._resources import Folders

    return Folders(_core(obj))


class Experiment(Acting, _generated.Experiment, frozen=True, kw_only=True, dict=True):
    """An experiment (spec: `Experiment`), deeply immutable, with methods that act through the client that
    fetched it; each returns a new object. Unpickled or built by hand, it is unbound: its methods raise
    `UnboundObjectError`."""

    def _fetch_hint(self) -> str:
        return f"client.experiments.get({self.id!r})"

    @property
    def metrics(self) -> ExperimentMetrics:
        """Its metric points: `experiment.metrics.list(...)`."""
        return ExperimentMetrics(self)

    @property
    def annotations(self) -> ExperimentAnnotations:
        """Its annotations: `experiment.annotations.list()`."""
        return ExperimentAnnotations(self)

    def update(
        self,
        *,
        name: str | NotGiven = NOT_GIVEN,
        description: str | NotGiven | None = NOT_GIVEN,
        metadata: Mapping[str, Any] | NotGiven | None = NOT_GIVEN,
        tags: Sequence[str] | NotGiven | None = NOT_GIVEN,
        **options: Unpack[WriteOptions],
    ) -> Experiment:
        """`client.experiments.update(experiment.id, ...)`: change the name, description, metadata or tags."""
        return _experiments(self).update(
            self.id, name=name, description=description, metadata=metadata, tags=tags, **options
        )

    def archive(self, **options: Unpack[WriteOptions]) -> Experiment:
        """`client.experiments.archive(experiment.id)`."""
        return _experiments(self).archive(self.id, **options)

    def unarchive(self, **options: Unpack[WriteOptions]) -> Experiment:
        """`client.experiments.unarchive(experiment.id)`."""
        return _experiments(self).unarchive(self.id, **options)

    def set_status(
        self, status: ExperimentStatus | str, *, reopen: bool = False, **options: Unpack[WriteOptions]
    ) -> Experiment:
        """`client.experiments.update_status(experiment.id, status, reopen=...)`."""
        return _experiments(self).update_status(self.id, status, reopen=reopen, **options)

    def move(self, folder_id: str | None, **options: Unpack[WriteOptions]) -> Experiment:
        """`client.experiments.move(experiment.id, folder_id)`: into a folder, or out of every folder with None."""
        return _experiments(self).move(self.id, folder_id, **options)

    def summary(self, *, name: str | None = None, **options: Unpack[RequestOptions]) -> ExperimentSummary:
        """`client.experiments.summary(experiment.id, name=...)`."""
        return _experiments(self).summary(self.id, name=name, **options)

    def series(
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
        return _metrics(self).series(
            self.id,
            name,
            max_points=max_points,
            min_step=min_step,
            max_step=max_step,
            metadata_key=metadata_key,
            metadata_value=metadata_value,
            **options,
        )


class ExperimentMetrics:
    """`experiment.metrics`: the experiment's metric points."""

    __slots__ = ("_experiment",)

    def __init__(self, experiment: Experiment) -> None:
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
    ) -> Paginator[MetricPoint]:
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


class ExperimentAnnotations:
    """`experiment.annotations`: the experiment's annotations."""

    __slots__ = ("_experiment",)

    def __init__(self, experiment: Experiment) -> None:
        self._experiment = experiment

    def list(
        self,
        *,
        limit: int | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Paginator[Annotation]:
        """`client.annotations.list(experiment.id, ...)`."""
        experiment = self._experiment
        return _annotations(experiment).list(
            experiment.id, limit=limit, page_size=page_size, cursor=cursor, **options
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._experiment.id}>"


class Folder(Acting, _generated.Folder, frozen=True, kw_only=True, dict=True):
    """A folder (spec: `Folder`), deeply immutable, with methods that act through the client that fetched it;
    each returns a new object. Unpickled or built by hand, it is unbound: its methods raise
    `UnboundObjectError`."""

    def _fetch_hint(self) -> str:
        return f"client.folders.get({self.id!r})"

    @property
    def experiments(self) -> FolderExperiments:
        """The experiments directly in it: `folder.experiments.list(...)`."""
        return FolderExperiments(self)

    def archive(self, **options: Unpack[WriteOptions]) -> Folder:
        """`client.folders.archive(folder.id)`."""
        return _folders(self).archive(self.id, **options)

    def unarchive(self, **options: Unpack[WriteOptions]) -> Folder:
        """`client.folders.unarchive(folder.id)`."""
        return _folders(self).unarchive(self.id, **options)


class FolderExperiments:
    """`folder.experiments`: the experiments directly in the folder."""

    __slots__ = ("_folder",)

    def __init__(self, folder: Folder) -> None:
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
    ) -> Paginator[Experiment]:
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


class Annotation(Acting, _generated.Annotation, frozen=True, kw_only=True, dict=True):
    """An annotation (spec: `Annotation`), deeply immutable, with methods that act through the client that
    fetched it. Unpickled or built by hand, it is unbound: its methods raise `UnboundObjectError`."""

    def _fetch_hint(self) -> str:
        return f"client.annotations.get({self.experiment_id!r}, {self.id!r})"

    def delete(self, **options: Unpack[WriteOptions]) -> None:
        """`client.annotations.delete(annotation.experiment_id, annotation.id)`."""
        _annotations(self).delete(self.experiment_id, self.id, **options)


class ObjectDecoders:
    """One msgspec decoder per object that acts, built on first use (`tally._decoder`); the resources bind what
    they decode."""

    experiment = decoder(Experiment)
    experiment_page = decoder(Page[Experiment])
    folder = decoder(Folder)
    folder_page = decoder(Page[Folder])
    annotation = decoder(Annotation)
    annotation_page = decoder(Page[Annotation])
    acting: Mapping[type[Any], type[Any]] = {
        _generated.Experiment: Experiment,
        _generated.Folder: Folder,
        _generated.Annotation: Annotation,
    }
    """The generated type -> this client's type that acts, for `client.request(...)`'s answers."""
