"""Every operation of openapi/tally.yaml has a curated method on both clients whose parameters match the operation's
inputs, or stands in RAW_ONLY_OPERATIONS with the reason. Derived from the spec and the code (see curated.py): adding
an operation to the spec, or a property to a request body, fails here until the SDK follows, with what to do.

The sync client is derived from the async one by scripts/unasync.py (and `make check-sync` compares them); both are
checked anyway, since a user meets both.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import pytest

import tally

from .curated import (
    CuratedMethod,
    SpecOperation,
    curated_methods,
    load_spec,
    spec_operations,
    unused_parameters,
)

SPEC = load_spec()
OPERATIONS = spec_operations(SPEC)

# Operations that users reach through `client.request(...)` only, each with the reason. Empty today: every
# operation has a curated method.
RAW_ONLY_OPERATIONS: dict[str, str] = {}

# Parameters that differ from the spec's inputs on purpose, by (operationId, name), each with the reason.
PARAMETER_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("createAnnotation", "client_event_id"): (
        "required by the contract so that a retry is a duplicate; the SDK derives a deterministic one from the "
        "experiment, text, step, timestamp and metadata when the caller gives none"
    ),
    ("uploadArtifact", "name"): "defaults to the uploaded file's name; required of file objects without one",
    ("uploadArtifact", "sha256"): "required by the contract; the SDK computes it unless the caller has it",
}

# Parameters a curated method adds on purpose that are no input of its operation, with the reason.
SDK_ONLY_PARAMETERS: dict[tuple[str, str], str] = {
    ("exportMetrics", "format"): (
        "the media type the answer comes in, sent as the Accept header (ndjson or csv), which the contract "
        "negotiates rather than declaring as a parameter"
    ),
    ("exportMetrics", "path"): "export_to's file to write the answer to; nothing is sent",
    ("uploadArtifact", "file"): "the path or binary file object whose bytes are the body, streamed",
    ("downloadArtifact", "to"): "download's file to write the content to; nothing is sent",
}

# SDK-only parameters, by rule (not by method):
# - `**options` (timeout, retries, idempotency_key, extra_headers...): the per-call options every method takes;
# - `limit` on a method of a paginated operation (one answering `next_cursor`): the total cap across pages,
#   which the paginator enforces and never sends.
PAGINATOR_ONLY = "limit"
# - `confirm` on a method of a DELETE operation: a deletion that cannot be undone goes ahead only with
#   confirm=True (a ValueError before anything is sent otherwise); it is never sent.
DELETE_ONLY = "confirm"

CLIENT_FILES = "src/tally/_async/_resources.py (or _client.py for a method of the client itself)"


@pytest.fixture(scope="module", params=["AsyncTally", "Tally"])
def methods(request: pytest.FixtureRequest) -> Iterator[list[CuratedMethod]]:
    client: Any = getattr(tally, request.param)(offline=True)
    try:
        yield curated_methods(client, SPEC)
    finally:
        closed = client.close()
        if inspect.isawaitable(closed):
            asyncio.run(closed)


def covered(methods: list[CuratedMethod]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for method in methods:
        for operation_id in method.operation_ids:
            found.setdefault(operation_id, []).append(method.label)
    return found


def test_every_operation_has_a_curated_method_or_is_listed_raw_only(methods: list[CuratedMethod]) -> None:
    client = methods[0].label.split(".")[0]
    wrapped = covered(methods)
    problems = [
        f"operation {op.label} has no curated method on {client}: add one in {CLIENT_FILES} (then run "
        "`uv run --locked python scripts/unasync.py`), or list it in RAW_ONLY_OPERATIONS of "
        f"{__name__.replace('.', '/')}.py with the reason"
        for operation_id, op in sorted(OPERATIONS.items())
        if operation_id not in wrapped and operation_id not in RAW_ONLY_OPERATIONS
    ]
    assert not problems, "\n".join(problems)


def test_the_raw_only_list_names_only_operations_without_a_curated_method(
    methods: list[CuratedMethod],
) -> None:
    wrapped = covered(methods)
    stale = [
        f"RAW_ONLY_OPERATIONS lists {operation_id}, which "
        + (
            f"{' and '.join(wrapped[operation_id])} now wrap"
            if operation_id in wrapped
            else "is not in the spec"
        )
        + ": remove it from the list"
        for operation_id in RAW_ONLY_OPERATIONS
        if operation_id in wrapped or operation_id not in OPERATIONS
    ]
    assert not stale, "\n".join(stale)


def parameter_problems(method: CuratedMethod, op: SpecOperation) -> Iterator[str]:
    """How the method's signature differs from the operation's path, query and body inputs."""
    signature = inspect.signature(method.function)
    params = {
        name: p
        for name, p in signature.parameters.items()
        if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }
    where = f"{method.label} (wrapping {op.label})"
    for name, (location, required) in op.inputs.items():
        if (op.operation_id, name) in PARAMETER_EXCEPTIONS:
            continue
        kind = "required" if required else "optional"
        if name not in params:
            yield (
                f"{where} has no parameter `{name}` for the {kind} {location} input `{name}`: add it "
                + ("without a default" if required else "with a default (None)")
                + f" in {CLIENT_FILES}, pass it to _get_kwargs, then run scripts/unasync.py"
            )
        elif required and params[name].default is not inspect.Parameter.empty:
            yield f"{where}: `{name}` is required in the spec ({location}) but has a default: remove the default"
        elif not required and params[name].default is inspect.Parameter.empty:
            yield f"{where}: `{name}` is optional in the spec ({location}) but has no default: give it one"
    for name in params:
        if name in op.inputs or (op.operation_id, name) in SDK_ONLY_PARAMETERS:
            continue
        if op.pages and name == PAGINATOR_ONLY:
            continue
        if op.method == "delete" and name == DELETE_ONLY:
            continue
        yield (
            f"{where} takes `{name}`, which is no path, query or body input of the operation: rename it to the "
            "spec's name, remove it, or (if the SDK adds it on purpose) list it in SDK_ONLY_PARAMETERS of "
            f"{__name__.replace('.', '/')}.py with the reason"
        )


def test_every_curated_method_takes_its_operations_inputs(methods: list[CuratedMethod]) -> None:
    problems = [
        problem
        for method in methods
        for operation_id in sorted(method.operation_ids)
        for problem in parameter_problems(method, OPERATIONS[operation_id])
    ]
    assert not problems, "\n".join(problems)


def test_every_curated_method_sends_what_it_takes(methods: list[CuratedMethod]) -> None:
    unused = [
        f"{method.label} takes `{name}` but never reads it: pass it to the operation's _get_kwargs (or its body "
        f"model) in {CLIENT_FILES}, then run scripts/unasync.py"
        for method in methods
        for name in unused_parameters(method.function)
    ]
    assert not unused, "\n".join(unused)


def test_an_unused_parameter_is_reported() -> None:
    async def create(self: object, name: str, *, color: str | None = None, **options: object) -> object:
        return get_kwargs(name=name, **options)

    def get_kwargs(**kwargs: object) -> object:
        return kwargs

    assert unused_parameters(create) == ["color"]


def test_every_parameter_exception_is_still_needed() -> None:
    stale = [
        f"PARAMETER_EXCEPTIONS lists {operation_id}.{name}, but the operation has no such input: remove it"
        for operation_id, name in PARAMETER_EXCEPTIONS
        if name not in OPERATIONS.get(operation_id, SpecOperation("", "", "", {}, False)).inputs
    ]
    assert not stale, "\n".join(stale)


def test_every_sdk_only_parameter_is_still_taken(methods: list[CuratedMethod]) -> None:
    taken = {
        (operation_id, name)
        for method in methods
        for operation_id in method.operation_ids
        for name in inspect.signature(method.function).parameters
    }
    stale = [
        f"SDK_ONLY_PARAMETERS lists {operation_id}.{name}, which no curated method of it takes: remove it"
        for operation_id, name in SDK_ONLY_PARAMETERS
        if (operation_id, name) not in taken
    ]
    assert not stale, "\n".join(stale)


def test_the_derivation_sees_methods_through_private_helpers_and_paginators() -> None:
    """The checks above can fail: a method that sends through a private helper (metrics.ingest) and one that
    builds its request in a nested function (a paginator's fetch) are both found, with their operation."""
    with tally.Tally(offline=True) as client:
        by_label = {m.label: m.operation_ids for m in curated_methods(client, SPEC)}
    assert by_label["Tally.metrics.ingest"] == {"ingestMetrics"}
    assert by_label["Tally.folders.list"] == {"listFolders"}
    assert by_label["Tally.health"] == {"getHealth"}
    assert "Tally.ingestion_keys.forget" not in by_label  # no operation: an SDK-only method


def test_a_missing_parameter_is_reported_with_what_to_do() -> None:
    with tally.Tally(offline=True) as client:
        create = next(m for m in curated_methods(client, SPEC) if m.label == "Tally.folders.create")
    op = OPERATIONS["createFolder"]
    widened = SpecOperation(
        op.operation_id, op.method, op.path, {**op.inputs, "color": ("body", False)}, op.pages
    )
    (problem,) = parameter_problems(create, widened)
    assert "Tally.folders.create" in problem
    assert "`color`" in problem
    assert "with a default" in problem
