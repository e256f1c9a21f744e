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
from tally._async import _resources as async_resources
from tally._sync import _resources as sync_resources

EXPORTED = [
    "NOT_GIVEN",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "Annotation",
    "Artifact",
    "AsyncPaginator",
    "AsyncTally",
    "AuthStatus",
    "AuthenticationError",
    "BadRequestError",
    "CacheStats",
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


def assert_same_surface(sync_obj: Any, async_obj: Any, label: str) -> None:
    sync_names, async_names = public(sync_obj), public(async_obj)
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


@pytest.mark.parametrize("name", async_resources.__all__)
def test_resource_classes_pair_up(name: str) -> None:
    sync_cls = getattr(sync_resources, name.removeprefix("Async"))
    assert_same_surface(sync_cls, getattr(async_resources, name), name)


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
