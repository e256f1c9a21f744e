"""Contract testing: schemathesis generates requests for every operation of openapi/tally.yaml (valid and
invalid ones) and checks every answer of the live server against the spec: no 5xx, declared status codes,
conforming bodies and headers. Requests are authenticated, and a good share target real ids so that the
success
paths are exercised, not only 404s."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config._checks import (
    NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES,
    POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES,
    NegativeDataRejectionConfig,
    PositiveDataAcceptanceConfig,
)
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode

from tally_server import RunningServer

from .helpers import make_client

pytestmark = pytest.mark.contract

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "tally.yaml"
EXAMPLES = 100

schema = schemathesis.openapi.from_path(SPEC)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES, deterministic=True
)
# 413 is how the contract refuses a batch of more than 10,000 events or a body over 5 MiB: it rejects data.
schema.config.checks.negative_data_rejection = NegativeDataRejectionConfig(
    expected_statuses=[*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]
)
schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
    expected_statuses=[*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "413"]
)


@dataclass
class Fixtures:
    server: RunningServer
    ingestion_token: str
    ids: dict[str, list[str]]


@pytest.fixture(scope="module")
def fixtures(live_server: RunningServer) -> Iterator[Fixtures]:
    with make_client(live_server, live_server.api_key) as c:
        folder = c.post("/v1/folders", json={"name": "contract"}).json()
        child = c.post("/v1/folders", json={"name": "child", "parent_id": folder["id"]}).json()
        ingest_target = c.post(
            "/v1/experiments", json={"name": "contract-ingest", "folder_id": folder["id"]}
        ).json()
        others = [c.post("/v1/experiments", json={"name": f"contract-{i}"}).json() for i in range(3)]
        token = c.post(f"/v1/experiments/{ingest_target['id']}/ingestion-keys", json={"name": "c"}).json()[
            "token"
        ]
        spare = c.post(f"/v1/experiments/{others[0]['id']}/ingestion-keys", json={}).json()
        with make_client(live_server, token) as ingest:
            events = [
                {
                    "name": "train/loss",
                    "value": i / 10,
                    "step": i,
                    "metadata": {"split": "train"},
                    "client_event_id": f"c{i}",
                }
                for i in range(20)
            ]
            ingest.post(f"/v1/experiments/{ingest_target['id']}/metrics", json={"events": events})
        content = b"contract artifact"
        artifact = c.post(
            f"/v1/experiments/{ingest_target['id']}/artifacts",
            params={"name": "contract.bin", "sha256": hashlib.sha256(content).hexdigest()},
            content=content,
            headers={"Content-Type": "application/octet-stream"},
        ).json()
        yield Fixtures(
            server=live_server,
            ingestion_token=token,
            ids={
                "ingest_experiment": [ingest_target["id"]],
                "experiment_id": [ingest_target["id"], *[o["id"] for o in others]],
                "folder_id": [folder["id"], child["id"]],
                "key_id": [spare["id"]],
                "artifact_id": [artifact["id"]],
            },
        )


_turn = itertools.count()
CALLS: dict[str, int] = {}
# The operations only an ingestion key may call, from their declared security.
_INGESTION_OPERATIONS = {
    op.ok().definition.raw["operationId"]
    for op in schema.get_all_operations()
    if {name for req in op.ok().definition.raw.get("security", []) for name in req} == {"IngestionKey"}
}


# A DELETE of `/v1/<things>/{<thing>_id}` whose collection `/v1/<things>` creates one (deleteExperiment,
# deleteFolder): operation id -> (path parameter, collection). Its cases aim at a resource made for them, never
# at the shared fixtures that the other operations' cases need.
_DELETED_BY = {
    operation["operationId"]: (path.rsplit("{", 1)[1].rstrip("}"), path.rsplit("/", 1)[0])
    for path, item in schema.raw_schema["paths"].items()
    for method, operation in item.items()
    if method == "delete"
    and path.count("{") == 1
    and path.endswith("}")
    and "post" in schema.raw_schema["paths"].get(path.rsplit("/", 1)[0], {})
}


def _throwaway(fixtures: Fixtures, collection: str) -> str:
    with make_client(fixtures.server, fixtures.server.api_key) as c:
        created = c.post(collection, json={"name": f"doomed-{uuid.uuid4().hex}"})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _aim_at_real_ids(case: Any, fixtures: Fixtures) -> None:
    """In positive cases, point path ids at real resources two times out of three (always for ingestion)."""
    component = case.meta.components.get(ParameterLocation.PATH) if case.meta is not None else None
    if component is not None and component.mode != GenerationMode.POSITIVE:
        return
    operation_id = case.operation.definition.raw.get("operationId")
    doomed = _DELETED_BY.get(operation_id)
    for name in list(case.path_parameters or {}):
        if doomed is not None and name == doomed[0] and next(_turn) % 3:
            case.path_parameters[name] = _throwaway(fixtures, doomed[1])
        elif operation_id in _INGESTION_OPERATIONS and name == "experiment_id":
            case.path_parameters[name] = fixtures.ids["ingest_experiment"][0]
        elif name in fixtures.ids and next(_turn) % 3:
            choices = fixtures.ids[name]
            case.path_parameters[name] = choices[next(_turn) % len(choices)]


def _make_semantically_valid(case: Any) -> None:
    """What a schema cannot say, a positive case still has to respect: cursors are opaque tokens the server
    hands out (a made-up one is a 400), an Idempotency-Key is for one request (a reused one is a 422),
    `metadata_value` needs `metadata_key`, and getMetricSeries's `min_step` is at most its `max_step` (the spec
    says so in words). Negative cases are left as generated."""
    query = case.query
    components = case.meta.components if case.meta is not None else {}
    if query is not None and _positive(components, ParameterLocation.QUERY):
        query.pop("cursor", None)
        if "metadata_value" in query and "metadata_key" not in query:
            query.pop("metadata_value")
        low, high = query.get("min_step"), query.get("max_step")  # as generated: int, or its text
        if str(low).isdigit() and str(high).isdigit() and int(str(low)) > int(str(high)):
            query["min_step"], query["max_step"] = high, low
    if (
        case.operation.definition.raw.get("operationId") == "uploadArtifact"
        and query is not None
        and _positive(components, ParameterLocation.QUERY)
    ):  # the sha256 a client sends is that of its body (else 422 checksum_mismatch, by design)
        body = getattr(case.body, "data", case.body)  # schemathesis wraps generated binary bodies (`Binary`)
        query["sha256"] = hashlib.sha256(body if isinstance(body, bytes) else b"").hexdigest()
    headers = case.headers
    if (
        headers is not None
        and "Idempotency-Key" in headers
        and _positive(components, ParameterLocation.HEADER)
    ):
        headers["Idempotency-Key"] = f"contract-{uuid.uuid4().hex}"


def _without_nul(case: Any) -> None:
    """No string of a request may hold U+0000 (the contract says so in words, which schemathesis cannot read), so
    positive cases drop the character from their body and their query and path parameters."""
    components = case.meta.components if case.meta is not None else {}

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("\x00", "0")
        if isinstance(value, dict):
            return {clean(k): clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    # (A binary body, schemathesis' `Binary`, is a str subclass holding bytes: bytes may be anything.)
    binary = hasattr(case.body, "data")
    if (
        _positive(components, ParameterLocation.BODY)
        and isinstance(case.body, dict | list | str)
        and not binary
    ):
        case.body = clean(case.body)
    if _positive(components, ParameterLocation.QUERY) and case.query:
        case.query = clean(case.query)
    if _positive(components, ParameterLocation.PATH) and case.path_parameters:
        case.path_parameters = clean(case.path_parameters)


def _positive(components: Any, location: ParameterLocation) -> bool:
    component = components.get(location)
    return component is None or component.mode == GenerationMode.POSITIVE


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms(case: Any, fixtures: Fixtures) -> None:
    operation_id = case.operation.definition.raw.get("operationId")
    token = fixtures.ingestion_token if operation_id in _INGESTION_OPERATIONS else fixtures.server.api_key
    _aim_at_real_ids(case, fixtures)
    _make_semantically_valid(case)
    _without_nul(case)
    headers = {"Authorization": f"Bearer {token}"}
    components = case.meta.components if case.meta is not None else {}
    if not _positive(components, ParameterLocation.HEADER) and "Authorization" not in (case.headers or {}):
        # A negative case that leaves the credential out (schemathesis treats it as a required header): adding
        # ours back would make it valid, and its acceptance would then be reported as a failure to reject.
        headers = {}
    if operation_id in _STREAMED and next(_turn) % 2:
        headers["Accept"] = "text/csv"  # the other form half the time (schemathesis itself sends no Accept)
    response = case.call_and_validate(base_url=fixtures.server.url, headers=headers)
    if operation_id in _STREAMED and response.status_code == 200:
        _check_streamed_body(operation_id, response.headers["content-type"][0], response.content)
    CALLS[operation_id] = CALLS.get(operation_id, 0) + 1


# Answers streamed as NDJSON or CSV: schemathesis checks their status, Content-Type and headers, not their body
# (neither is JSON), so the body is checked here: each NDJSON line against the schema the contract gives a line,
# a CSV answer's header row against the columns the contract describes.
_STREAMED = {
    op.ok().definition.raw["operationId"]: op.ok().definition.raw["responses"]["200"]["content"]
    for op in schema.get_all_operations()
    if "application/x-ndjson" in op.ok().definition.raw["responses"].get("200", {}).get("content", {})
}


def _check_streamed_body(operation_id: str, content_type: str, body: bytes) -> None:
    media = content_type.split(";")[0]
    declared = _STREAMED[operation_id]
    assert media in declared, f"{operation_id} answered {media}, not one of {sorted(declared)}"
    if media == "application/x-ndjson":
        ref = declared[media]["schema"]["$ref"].rsplit("/", 1)[-1]
        line_schema = schema.raw_schema["components"]["schemas"][ref]
        validator = jsonschema_rs.validator_for(line_schema)
        for line in body.splitlines():
            validator.validate(msgspec.json.decode(line))
    else:
        assert body.splitlines()[0] == b"name,value,step,timestamp,metadata,client_event_id"


def test_the_contract_run_covers_every_operation() -> None:
    operations = {op.ok().definition.raw["operationId"] for op in schema.get_all_operations()}
    declared = {
        operation["operationId"]
        for item in schema.raw_schema["paths"].values()
        for method, operation in item.items()
        if method in ("get", "put", "post", "patch", "delete")
    }
    assert operations == declared  # schemathesis sees every operation the spec declares, however many
    if CALLS:  # after the run above: every operation was called, most of them 100 times or more
        print("schemathesis calls per operation:", dict(sorted(CALLS.items())))
        assert set(CALLS) == operations
        assert all(
            count >= EXAMPLES for op, count in CALLS.items() if op != "getHealth"
        )  # health has no inputs
