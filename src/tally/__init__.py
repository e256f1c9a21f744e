"""Tally: a typed Python SDK for the Tally Metrics API.

    from tally import Tally

    with Tally() as client:                      # credentials: argument, TALLY_API_KEY, or `tally auth login`
        experiment = client.experiments.create("baseline")
        client.metrics.ingest(experiment.id, [{"name": "loss", "value": 0.5, "step": 0}])
        for point in client.metrics.list(experiment.id):
            print(point.step, point.value)

`AsyncTally` has the same surface for async code. Errors derive from `TallyError`; see `tally._errors`.
For scripts, `tally.configure(api_key=..., base_url=...)` sets up a default client and `tally.experiments`,
`tally.folders`, ... are its resources (`tally._default`).
"""

# No `from __future__ import annotations` here: it would bind the name `annotations` in this module, hiding
# `tally.annotations` (the default client's resource) from `__getattr__`.
import _thread
import importlib

_IMPORT_LOCK = _thread.RLock()
"""One lazy import at a time (`tally._lazy` explains why); here, so that `import tally` loads no other module."""

# Before any module of Tally imports httpx: its command line (click, rich, pygments) is imported only if called.
from tally._httpx_cli import defer_httpx_cli as _defer_httpx_cli  # noqa: E402

_defer_httpx_cli()

# Not `from typing import TYPE_CHECKING`: `import tally` itself then loads nothing (type checkers know the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from tally._async._client import AsyncTally
    from tally._async._objects import AsyncAnnotation, AsyncExperiment, AsyncFolder
    from tally._async._pagination import AsyncPaginator
    from tally._cache import ResponseCache
    from tally._cache_stats import CacheStats
    from tally._config import ClientConfig
    from tally._default import (
        annotations,
        auth,
        configure,
        experiments,
        folders,
        health,
        ingestion_keys,
        metric_catalog,
        metrics,
    )
    from tally._errors import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        ChecksumMismatchError,
        ConfigurationError,
        ConflictError,
        InsufficientStorageError,
        InternalServerError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        ResponseValidationError,
        TallyError,
        UnboundObjectError,
        UnprocessableEntityError,
    )
    from tally._events import event_id
    from tally._hooks import Hooks
    from tally._options import RequestOptions, WriteOptions
    from tally._raw import RawResponse
    from tally._request_ids import request_id
    from tally._retry_policy import RetryPolicy
    from tally._sync._objects import Annotation, Experiment, Folder
    from tally._sync._pagination import Paginator
    from tally._sync_client import Tally
    from tally._types import (
        NOT_GIVEN,
        Artifact,
        AuthStatus,
        CatalogEntry,
        ComparedSeries,
        CompareResult,
        CompareRow,
        CreatedIngestionKey,
        EventConflict,
        ExperimentStatus,
        ExperimentSummary,
        Health,
        IngestionKey,
        IngestResult,
        KeyKind,
        LoginLink,
        MetadataValueCount,
        MetricEvent,
        MetricPoint,
        MetricSeries,
        MetricSeriesBucket,
        MetricSummary,
        NotGiven,
        Page,
        SeriesSelector,
    )
    from tally.run._capture import Capture

# Names are imported on first use (PEP 562), so `import tally` costs almost nothing and `from tally import Tally`
# loads the sync client alone: not asyncio, not the async client, not the generated package. Type checkers read
# the imports above instead. The first use may come from several threads at once: they import one at a time,
# under the lock that `tally._lazy.load` holds too.
_LAZY: dict[str, str] = {
    "configure": "tally._default",
    "folders": "tally._default",
    "experiments": "tally._default",
    "metrics": "tally._default",
    "metric_catalog": "tally._default",
    "ingestion_keys": "tally._default",
    "annotations": "tally._default",
    "auth": "tally._default",
    "health": "tally._default",
    "RequestOptions": "tally._options",
    "WriteOptions": "tally._options",
    "request_id": "tally._request_ids",
    "RetryPolicy": "tally._retry_policy",
    "ResponseCache": "tally._cache",
    "APIConnectionError": "tally._errors",
    "APIStatusError": "tally._errors",
    "APITimeoutError": "tally._errors",
    "Annotation": "tally._sync._objects",
    "AsyncAnnotation": "tally._async._objects",
    "AsyncExperiment": "tally._async._objects",
    "AsyncFolder": "tally._async._objects",
    "Artifact": "tally._types",
    "AsyncPaginator": "tally._async._pagination",
    "AsyncTally": "tally._async._client",
    "AuthStatus": "tally._types",
    "AuthenticationError": "tally._errors",
    "BadRequestError": "tally._errors",
    "CacheStats": "tally._cache_stats",
    "Capture": "tally.run._capture",
    "CatalogEntry": "tally._types",
    "ChecksumMismatchError": "tally._errors",
    "ClientConfig": "tally._config",
    "CompareResult": "tally._types",
    "CompareRow": "tally._types",
    "ComparedSeries": "tally._types",
    "ConfigurationError": "tally._errors",
    "ConflictError": "tally._errors",
    "CreatedIngestionKey": "tally._types",
    "EventConflict": "tally._types",
    "Experiment": "tally._sync._objects",
    "ExperimentSummary": "tally._types",
    "ExperimentStatus": "tally._types",
    "Folder": "tally._sync._objects",
    "Health": "tally._types",
    "Hooks": "tally._hooks",
    "IngestResult": "tally._types",
    "IngestionKey": "tally._types",
    "InsufficientStorageError": "tally._errors",
    "InternalServerError": "tally._errors",
    "KeyKind": "tally._types",
    "LoginLink": "tally._types",
    "MetadataValueCount": "tally._types",
    "MetricEvent": "tally._types",
    "MetricPoint": "tally._types",
    "MetricSummary": "tally._types",
    "MetricSeries": "tally._types",
    "MetricSeriesBucket": "tally._types",
    "NOT_GIVEN": "tally._types",
    "NotFoundError": "tally._errors",
    "NotGiven": "tally._types",
    "Page": "tally._types",
    "Paginator": "tally._sync._pagination",
    "PermissionDeniedError": "tally._errors",
    "RateLimitError": "tally._errors",
    "RawResponse": "tally._raw",
    "ResponseValidationError": "tally._errors",
    "SeriesSelector": "tally._types",
    "Tally": "tally._sync_client",
    "TallyError": "tally._errors",
    "UnboundObjectError": "tally._errors",
    "UnprocessableEntityError": "tally._errors",
    "event_id": "tally._events",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tally' has no attribute {name!r}")
    with _IMPORT_LOCK:
        value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__version__ = "0.1.0"

__all__ = [
    "NOT_GIVEN",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "Annotation",
    "Artifact",
    "AsyncAnnotation",
    "AsyncExperiment",
    "AsyncFolder",
    "AsyncPaginator",
    "AsyncTally",
    "AuthStatus",
    "AuthenticationError",
    "BadRequestError",
    "CacheStats",
    "Capture",
    "CatalogEntry",
    "ChecksumMismatchError",
    "ClientConfig",
    "CompareResult",
    "CompareRow",
    "ComparedSeries",
    "ConfigurationError",
    "ConflictError",
    "CreatedIngestionKey",
    "EventConflict",
    "Experiment",
    "ExperimentStatus",
    "ExperimentSummary",
    "Folder",
    "Health",
    "Hooks",
    "IngestResult",
    "IngestionKey",
    "InsufficientStorageError",
    "InternalServerError",
    "KeyKind",
    "LoginLink",
    "MetadataValueCount",
    "MetricEvent",
    "MetricPoint",
    "MetricSeries",
    "MetricSeriesBucket",
    "MetricSummary",
    "NotFoundError",
    "NotGiven",
    "Page",
    "Paginator",
    "PermissionDeniedError",
    "RateLimitError",
    "RawResponse",
    "RequestOptions",
    "ResponseCache",
    "ResponseValidationError",
    "RetryPolicy",
    "SeriesSelector",
    "Tally",
    "TallyError",
    "UnboundObjectError",
    "UnprocessableEntityError",
    "WriteOptions",
    "__version__",
    "annotations",
    "auth",
    "configure",
    "event_id",
    "experiments",
    "folders",
    "health",
    "ingestion_keys",
    "metric_catalog",
    "metrics",
    "request_id",
]
