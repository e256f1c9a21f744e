"""Tally: a typed Python SDK for the Tally Metrics API.

    from tally import Tally

    with Tally() as client:                      # credentials: argument, TALLY_API_KEY, or `tally auth login`
        experiment = client.experiments.create("baseline")
        client.metrics.ingest(experiment.id, [{"name": "loss", "value": 0.5, "step": 0}])
        for point in client.metrics.list(experiment.id):
            print(point.step, point.value)

`AsyncTally` has the same surface for async code. Errors derive from `TallyError`; see `tally._errors`.
"""

from tally._async._client import AsyncTally
from tally._async._pagination import AsyncPaginator
from tally._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    TallyError,
    UnprocessableEntityError,
)
from tally._events import event_id
from tally._options import RequestOptions, WriteOptions
from tally._raw import RawResponse
from tally._request_ids import request_id
from tally._retry_policy import RetryPolicy
from tally._sync._client import Tally
from tally._sync._pagination import Paginator
from tally._types import (
    NOT_GIVEN,
    Annotation,
    AuthStatus,
    CatalogEntry,
    ComparedSeries,
    CompareResult,
    CompareRow,
    CreatedIngestionKey,
    EventConflict,
    Experiment,
    ExperimentStatus,
    Folder,
    Health,
    IngestionKey,
    IngestResult,
    KeyKind,
    MetadataValueCount,
    MetricEvent,
    MetricPoint,
    NotGiven,
    Page,
    SeriesSelector,
)

__version__ = "0.1.0"

__all__ = [
    "NOT_GIVEN",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "Annotation",
    "AsyncPaginator",
    "AsyncTally",
    "AuthStatus",
    "AuthenticationError",
    "BadRequestError",
    "CatalogEntry",
    "CompareResult",
    "CompareRow",
    "ComparedSeries",
    "ConfigurationError",
    "ConflictError",
    "CreatedIngestionKey",
    "EventConflict",
    "Experiment",
    "ExperimentStatus",
    "Folder",
    "Health",
    "IngestResult",
    "IngestionKey",
    "InternalServerError",
    "KeyKind",
    "MetadataValueCount",
    "MetricEvent",
    "MetricPoint",
    "NotFoundError",
    "NotGiven",
    "Page",
    "Paginator",
    "PermissionDeniedError",
    "RateLimitError",
    "RawResponse",
    "RequestOptions",
    "ResponseValidationError",
    "RetryPolicy",
    "SeriesSelector",
    "Tally",
    "TallyError",
    "UnprocessableEntityError",
    "WriteOptions",
    "__version__",
    "event_id",
    "request_id",
]
