"""The public surface: exported names, and sync/async parity of every public name and signature."""

from __future__ import annotations

import asyncio
import inspect
import re
import subprocess
import sys
from typing import Any

import pytest

import tally
from tally import AsyncTally, Tally
from tally._async import _objects as async_objects
from tally._async import _resources as async_resources
from tally._sync import _objects as sync_objects
from tally._sync import _resources as sync_resources

EXPORTED = [
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


def test_exported_names_are_exactly_these() -> None:
    assert tally.__all__ == EXPORTED
    for name in EXPORTED:
        assert hasattr(tally, name), name


def test_error_hierarchy() -> None:
    assert issubclass(tally.ConfigurationError, tally.TallyError)
    assert issubclass(tally.UnboundObjectError, tally.TallyError)
    assert issubclass(tally.APITimeoutError, tally.APIConnectionError)
    assert issubclass(tally.APIConnectionError, tally.TallyError)
    assert issubclass(tally.ResponseValidationError, tally.TallyError)
    for cls in (
        tally.BadRequestError,
        tally.AuthenticationError,
        tally.PermissionDeniedError,
        tally.NotFoundError,
        tally.ConflictError,
        tally.UnprocessableEntityError,
        tally.RateLimitError,
        tally.InternalServerError,
        tally.InsufficientStorageError,
    ):
        assert issubclass(cls, tally.APIStatusError)
        assert issubclass(cls, tally.TallyError)


def public(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in dir(obj) if not name.startswith("_")}


def normalise(signature: inspect.Signature) -> str:
    """The signature with the async spellings the sync twin drops (`AsyncX` -> `X`, `Awaitable[T]` -> `T`)."""
    text = re.sub(r"\bAsync(?=[A-Z])", "", str(signature))
    return re.sub(r"\bAwaitable\[([^\[\]]*(?:\[[^\[\]]*\])?)\]", r"\1", text)


SYNC_ONLY = {"async_"}
"""What only the sync client has: its async surface (`tally._sync_client`); an `AsyncTally` is async already."""


def assert_same_surface(sync_obj: Any, async_obj: Any, label: str) -> None:
    sync_names, async_names = public(sync_obj), public(async_obj)
    if label == "client":
        sync_names = {name: value for name, value in sync_names.items() if name not in SYNC_ONLY}
    assert sorted(sync_names) == sorted(async_names), label
    for name, sync_member in sync_names.items():
        async_member = async_names[name]
        if callable(sync_member) and not inspect.isclass(sync_member):
            assert normalise(inspect.signature(sync_member)) == normalise(inspect.signature(async_member)), (
                f"{label}.{name}"
            )
            assert not inspect.iscoroutinefunction(sync_member), f"{label}.{name}"
            if name in (
                "list",
                "export",
                "inspect_values",
                "forget",
                "with_options",
                "with_raw_response",
                "pages",
                "run",
                "open",
            ):
                assert not inspect.iscoroutinefunction(async_member), f"{label}.{name}"
            else:
                assert inspect.iscoroutinefunction(async_member), f"{label}.{name} should be async"


def test_clients_have_the_same_surface() -> None:
    assert normalise(inspect.signature(Tally)) == normalise(inspect.signature(AsyncTally))
    sync_client = Tally(api_key="tk_org_parity00000000000000000000", base_url="http://x.test")
    async_client = AsyncTally(api_key="tk_org_parity00000000000000000000", base_url="http://x.test")
    try:
        assert_same_surface(sync_client, async_client, "client")
        for name in (
            "folders",
            "experiments",
            "metrics",
            "metric_catalog",
            "ingestion_keys",
            "annotations",
            "artifacts",
            "auth",
        ):
            assert_same_surface(getattr(sync_client, name), getattr(async_client, name), name)
    finally:
        sync_client.close()
        asyncio.run(async_client.close())


def test_only_the_sync_client_has_an_async_surface_and_it_is_an_async_client() -> None:
    assert isinstance(inspect.getattr_static(Tally, "async_"), property)
    assert not hasattr(AsyncTally, "async_")
    assert inspect.signature(Tally.async_.fget).return_annotation in ("AsyncTally", AsyncTally)
    with Tally(api_key="tk_org_parity00000000000000000000", base_url="http://x.test") as client:
        view = client.async_
        assert isinstance(view, AsyncTally)
        assert_same_surface(client, view, "client")  # the same methods as any AsyncTally's


@pytest.mark.parametrize("name", async_resources.__all__)
def test_resource_classes_pair_up(name: str) -> None:
    sync_cls = getattr(sync_resources, name.removeprefix("Async"))
    assert_same_surface(sync_cls, getattr(async_resources, name), name)


ACTING = [name for name in async_objects.__all__ if name != "AsyncObjectDecoders"]


def own_methods(cls: type[Any]) -> dict[str, Any]:
    """The public methods and properties a class of `_objects` defines itself (not its fields, not `to_dict`)."""
    return {name: value for name, value in vars(cls).items() if not name.startswith("_")}


@pytest.mark.parametrize("name", ACTING)
def test_objects_that_act_pair_up(name: str) -> None:
    async_cls = getattr(async_objects, name)
    sync_cls = getattr(sync_objects, name.removeprefix("Async"))
    assert getattr(tally, sync_cls.__name__, sync_cls) is sync_cls
    async_own, sync_own = own_methods(async_cls), own_methods(sync_cls)
    assert sorted(async_own) == sorted(sync_own), name
    for method, async_member in async_own.items():
        sync_member = sync_own[method]
        if isinstance(async_member, property):
            async_returns = inspect.signature(async_member.fget).return_annotation  # type: ignore[arg-type]
            sync_returns = inspect.signature(sync_member.fget).return_annotation
            assert re.sub(r"\bAsync(?=[A-Z])", "", async_returns) == sync_returns, f"{name}.{method}"
            continue
        assert normalise(inspect.signature(sync_member)) == normalise(inspect.signature(async_member))
        assert not inspect.iscoroutinefunction(sync_member), f"{name}.{method}"
        assert inspect.iscoroutinefunction(async_member) is (method != "list"), f"{name}.{method}"


# Each object method and the resource method it calls: (object class, method, resource class, method, the
# resource's parameters the object fills in itself). Same keyword arguments and options, so one implementation.
DELEGATES = [
    ("AsyncExperiment", "update", "AsyncExperiments", "update", {"experiment_id"}),
    ("AsyncExperiment", "archive", "AsyncExperiments", "archive", {"experiment_id"}),
    ("AsyncExperiment", "unarchive", "AsyncExperiments", "unarchive", {"experiment_id"}),
    ("AsyncExperiment", "set_status", "AsyncExperiments", "update_status", {"experiment_id"}),
    ("AsyncExperiment", "move", "AsyncExperiments", "move", {"experiment_id"}),
    ("AsyncExperiment", "summary", "AsyncExperiments", "summary", {"experiment_id"}),
    ("AsyncExperiment", "series", "AsyncMetrics", "series", {"experiment_id"}),
    ("AsyncExperimentMetrics", "list", "AsyncMetrics", "list", {"experiment_id"}),
    ("AsyncExperimentAnnotations", "list", "AsyncAnnotations", "list", {"experiment_id"}),
    ("AsyncFolder", "archive", "AsyncFolders", "archive", {"folder_id"}),
    ("AsyncFolder", "unarchive", "AsyncFolders", "unarchive", {"folder_id"}),
    ("AsyncFolderExperiments", "list", "AsyncExperiments", "list", {"folder_id"}),
    ("AsyncAnnotation", "delete", "AsyncAnnotations", "delete", {"experiment_id", "annotation_id"}),
]


def test_every_object_method_delegates_with_the_resource_signature() -> None:
    covered = {(cls, method) for cls, method, *_ in DELEGATES}
    assert covered == {
        (cls, method)
        for cls in ACTING
        for method, value in own_methods(getattr(async_objects, cls)).items()
        if not isinstance(value, property)
    }
    for cls, method, resource, resource_method, filled in DELEGATES:
        theirs = inspect.signature(getattr(getattr(async_resources, resource), resource_method))
        ours = inspect.signature(getattr(getattr(async_objects, cls), method))
        expected = [p for name, p in theirs.parameters.items() if name not in filled]
        assert list(ours.parameters.values()) == expected, f"{cls}.{method}"
        assert ours.return_annotation == theirs.return_annotation, f"{cls}.{method}"


def test_paginators_pair_up() -> None:
    assert_same_surface(tally.Paginator, tally.AsyncPaginator, "Paginator")
    assert hasattr(tally.Paginator, "__iter__")
    assert hasattr(tally.AsyncPaginator, "__aiter__")


def test_import_does_not_load_the_server_or_generated_operations() -> None:
    code = (
        "import sys, tally; "
        "print(sorted(m for m in sys.modules if m.startswith(('tally_server', 'tally_api.api'))))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_sync_files_are_generated_and_up_to_date() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    for path in (root / "src" / "tally" / "_sync").glob("*.py"):
        assert path.read_text().startswith("# Generated from src/tally/_async/"), path
    result = subprocess.run(
        [sys.executable, str(root / "scripts" / "unasync.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert result.returncode == 0, result.stderr
