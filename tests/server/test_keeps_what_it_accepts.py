"""The server keeps what it accepts: for every create and update operation of openapi/tally.yaml, every request
property that the answered resource also has comes back as sent, in the answer and in a later get (or list).

Which operations, which properties and how to read them back are derived from the spec (tests/server/writes.py);
the bodies are generated from the request schemas by schemathesis (positive data), so a property added to a request
and a response schema is checked with no edit here. A server that accepts the new property (its validation follows
the spec) but does not store it fails with the property's name. Runs against the live server on both backends.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode

from tally_server import RunningServer

from .helpers import make_client
from .writes import SPEC_PATH, Contract, Op, Write

CONTRACT = Contract.load()
WRITES = {write.op.operation_id: write for write in CONTRACT.writes()}
SCHEMA = schemathesis.openapi.from_path(SPEC_PATH)
EXAMPLES = 12


class Session:
    """Requests to the live server with the right credential for each operation."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.org = make_client(server, server.api_key)
        self.pool: list[str] = []  # ids of resources made so far, for request properties that name one

    def send(
        self, op: Op, path: dict[str, str], body: Any, query: Any = None, token: str | None = None
    ) -> Any:
        url = op.path.format(**path)
        headers = {"Idempotency-Key": f"keeps-{uuid.uuid4().hex}"} if op.method in ("post", "patch") else {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.org.request(op.method, url, json=body, params=query, headers=headers)

    def new_path(self, params: list[str]) -> dict[str, str]:
        """New resources for a path's parameters, in order, each made under those before it (the annotation of
        `/experiments/{experiment_id}/annotations/{annotation_id}` in that experiment)."""
        path: dict[str, str] = {}
        for param in params:
            path[param] = self.new_resource(param, path)
        return path

    def new_resource(self, param: str, known: dict[str, str] | None = None) -> str:
        """The id of a new resource for path parameter `param`, made by its creator with the spec's example body
        cut to its required properties, their strings made unique (names are unique within a parent). Not drawn
        by hypothesis: what it draws must not depend on the server's answers."""
        creator = CONTRACT.creator_of(param)
        path = {p: (known or {}).get(p) or self.new_resource(p) for p in creator.path_params}
        if "application/octet-stream" in creator.raw.get("requestBody", {}).get("content", {}):
            return self.new_upload(creator, path)
        schema = CONTRACT.body_schema(creator) or {}
        example = CONTRACT.body_example(creator)
        body = {
            name: f"{value}-{uuid.uuid4().hex[:12]}" if isinstance(value, str) else value
            for name, value in example.items()
            if name in schema.get("required", [])
        }
        response = self.send(
            creator, path, body, token=self.token_for(creator, path)
        )  # createAnnotation's key
        assert response.is_success, f"{creator.label} refused {body}: {response.text}"
        made = str(response.json()["id"])
        self.pool.append(made)
        return made

    def new_upload(self, creator: Op, path: dict[str, str]) -> str:
        """A resource made by a POST whose body is bytes (an artifact): a few bytes, with each required query
        parameter at its schema's example, and the one shaped like a sha256 (64 hex digits) their digest."""
        content = f"made-{uuid.uuid4().hex}".encode()
        query: dict[str, str] = {}
        for param in creator.raw.get("parameters", []):
            param = CONTRACT.resolve(param)
            if param["in"] != "query" or not param.get("required"):
                continue
            schema = CONTRACT.resolve(param["schema"])
            digest = schema.get("pattern") == "^[0-9a-f]{64}$"
            query[param["name"]] = hashlib.sha256(content).hexdigest() if digest else schema["examples"][0]
        response = self.org.post(
            creator.path.format(**path),
            params=query,
            content=content,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert response.is_success, f"{creator.label} refused an upload: {response.text}"
        made = str(response.json()["id"])
        self.pool.append(made)
        return made

    def resource_like(self, example_id: str, avoid: set[str]) -> str | None:
        """A resource whose id has the prefix of `example_id` (`fld_...`): the last one made, else a new one
        from the creator of the first path parameter that makes that kind; None when no operation does. Never one
        of `avoid` (the resource being written: a folder is not moved into itself)."""
        kind = example_id.split("_", 1)[0] + "_"
        for params_tried in (False, True):
            same_kind = [made for made in self.pool if made.startswith(kind) and made not in avoid]
            if same_kind or params_tried:
                return same_kind[-1] if same_kind else None
            for param in sorted({p for op in CONTRACT.ops for p in op.path_params}):
                try:
                    if self.new_resource(param).startswith(kind):
                        break
                except LookupError:
                    continue
        return None

    def token_for(self, op: Op, path: dict[str, str]) -> str | None:
        """An ingestion key for an operation that only ingestion keys may call; None for the org key."""
        if not op.schemes or "OrgApiKey" in op.schemes:
            return None
        minter = CONTRACT.token_minter(op)
        response = self.send(minter, {p: path[p] for p in minter.path_params}, {})
        assert response.is_success, response.text
        return str(response.json()["token"])

    def read_back(self, write: Write, path: dict[str, str], answered: dict[str, Any]) -> dict[str, Any]:
        """The stored resource, through the spec's get (or by walking its list until the answer's `id`)."""
        op = write.read_back
        params = {p: str(path.get(p) or answered.get(p) or answered["id"]) for p in op.path_params}
        if not write.read_back_is_list:
            response = self.send(op, params, None)
            assert response.status_code == 200, response.text
            return dict(response.json())
        query: dict[str, Any] = {"page_size": 1000}
        while True:
            page = self.send(op, params, None, query=query)
            assert page.status_code == 200, page.text
            found = [item for item in page.json()["data"] if item["id"] == answered["id"]]
            if found:
                return dict(found[0])
            assert page.json()["next_cursor"], (
                f"{op.label} does not list {answered['id']} that {write.op.label} made"
            )
            query["cursor"] = page.json()["next_cursor"]


def same(resource: str, name: str, sent: Any, got: Any) -> bool:
    """Whether `got` is `sent` as stored: instants compare as instants (the server may write them in UTC)."""
    if CONTRACT.property_schema(resource, name).get("format") == "date-time" and isinstance(sent, str):
        try:
            return bool(datetime.fromisoformat(sent) == datetime.fromisoformat(str(got)))
        except ValueError:
            return False
    return bool(sent == got)


def clears(resource: str, name: str, sent: Any) -> bool:
    """A null sent for a property the resource never holds as null means "clear it" (the server answers its
    empty value): nothing to compare."""
    schema_type = CONTRACT.property_schema(resource, name).get("type")
    nullable = schema_type == "null" or (isinstance(schema_type, list) and "null" in schema_type)
    return sent is None and not nullable


def with_unique_strings(write: Write, body: dict[str, Any]) -> dict[str, Any]:
    """`body` with each free string (not an id, no `format`, `enum` or `const`) given a unique suffix within its
    `maxLength`: names are unique within a parent, so a generated or documented name may already be taken on a
    server that other tests share."""
    properties = {
        name: CONTRACT.resolve(schema)
        for name, schema in (CONTRACT.body_schema(write.op) or {}).get("properties", {}).items()
    }
    unique = dict(body)
    for name, value in body.items():
        schema = properties.get(name, {})
        if (
            isinstance(value, str)
            and not CONTRACT.is_id_reference(schema)
            and not {"format", "enum", "const"} & set(schema)
        ):
            suffix = f"-{uuid.uuid4().hex[:8]}"
            unique[name] = value[: max(0, int(schema.get("maxLength", 10_000)) - len(suffix))] + suffix
    return unique


def accept_and_compare(
    session: Session,
    write: Write,
    path: dict[str, str],
    body: dict[str, Any],
    query: Any,
    compared: Counter[str],
) -> None:
    """Send one body; when the server accepts it, every kept property sent must come back as sent, in the
    answer and in the read-back. Counts what was compared."""
    token = session.token_for(write.op, path)
    response = session.send(write.op, path, body, query=query, token=token)
    if response.status_code == 409 and response.json()["error"]["code"] == "conflict":  # a name taken
        body = with_unique_strings(write, body)
        response = session.send(write.op, path, body, query=query, token=token)
    if not response.is_success:
        return  # refused (a made-up id, a name taken, a state that forbids it): nothing was accepted
    answered = response.json()
    stored = session.read_back(write, path, answered)
    for name in write.kept:
        if name not in body or clears(write.resource, name, body[name]):
            continue
        for where, got in (
            (f"its {response.status_code} answer", answered),
            (write.read_back.label, stored),
        ):
            assert same(write.resource, name, body[name], got.get(name)), (
                f"{write.op.label} accepted `{name}` = {body[name]!r} but {where} has {got.get(name)!r}: "
                "the server must store and return it (its handler in src/tally_server/handlers/ and the "
                "repository in src/tally_server/storage/, with a migration for both backends)"
            )
        compared[name] += 1


def documented_body(
    session: Session, write: Write, path: dict[str, str], id_like: set[str]
) -> dict[str, Any]:
    """The spec's example body of `write`, its free strings made unique (names are unique within a parent) and its
    ids pointed at a resource of the same kind (made now when there is none yet). Sent before the
    generated bodies, so that every property the example documents (or that has a simplest value, see
    `simplest_value`) is compared in every run, however few of the generated bodies the server accepts."""
    body: dict[str, Any] = {}
    for name, value in CONTRACT.body_example(write.op).items():
        if name in id_like:
            if value is None:
                body[name] = None
                continue
            made = session.resource_like(str(value), avoid=set(path.values()))
            if made is not None:
                body[name] = made
        else:
            body[name] = value
    properties = (CONTRACT.body_schema(write.op) or {}).get("properties", {})
    for name in write.kept:
        if name not in body and name in properties and name not in id_like:
            sample = simplest_value(CONTRACT.resolve(properties[name]))
            if sample is not None:
                body[name] = sample
    return with_unique_strings(write, body)


def simplest_value(schema: dict[str, Any]) -> Any:
    """A value of `schema` for a property the example leaves out: its own example or default, else the
    simplest value of its type (None when there is no simple one: the generated bodies cover it)."""
    for key in ("example", "default"):
        if schema.get(key) is not None:
            return schema[key]
    if schema.get("examples"):
        return schema["examples"][0]
    kinds = schema.get("type")
    kind = next((k for k in kinds if k != "null"), None) if isinstance(kinds, list) else kinds
    if kind == "string" and not {"format", "enum", "const", "pattern"} & set(schema):
        return "x" * max(1, int(schema.get("minLength", 1)))
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return True
    return None


@pytest.fixture(scope="module")
def session(live_server: RunningServer) -> Iterator[Session]:
    made = Session(live_server)
    try:
        yield made
    finally:
        made.org.close()


@pytest.mark.parametrize("operation_id", sorted(WRITES))
def test_the_server_keeps_what_it_accepts(operation_id: str, session: Session) -> None:
    write = WRITES[operation_id]
    operation = SCHEMA.find_operation_by_id(operation_id)
    id_like = {
        name
        for name, schema in (CONTRACT.body_schema(write.op) or {}).get("properties", {}).items()
        if CONTRACT.is_id_reference(CONTRACT.resolve(schema))
    }
    compared: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        path = session.new_path(write.op.path_params)
        case = data.draw(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=path))
        body = dict(case.body)
        for name in id_like & set(
            body
        ):  # point ids at real resources most of the time, so that they are kept
            choice = data.draw(st.integers(0, 2))  # independent of the pool's size, so draws replay
            if body[name] is not None and choice and session.pool:
                body[name] = session.pool[-choice]
        accept_and_compare(session, write, path, body, case.query, compared)

    path = session.new_path(write.op.path_params)
    accept_and_compare(session, write, path, documented_body(session, write, path, id_like), None, compared)
    run()
    never = [name for name in write.kept if not compared[name]]
    assert not never, (
        f"{write.op.label}: no accepted request in {EXAMPLES} carried {never}, so whether the server keeps them "
        "is unknown: make the generated requests succeed more often (tests/server/test_keeps_what_it_accepts.py)"
    )


def test_the_writes_are_derived_from_the_spec() -> None:
    """The derivation finds creates and updates, answered whole or through an allOf extension, and leaves out
    the POSTs that answer no resource (a read that travels as POST, an ingestion count)."""
    assert {"createFolder", "patchFolder", "createIngestionKey", "createAnnotation"} <= set(WRITES)
    assert not {"compareMetrics", "ingestMetrics"} & set(WRITES)
    assert (
        WRITES["createIngestionKey"].read_back.operation_id == "getIngestionKey"
    )  # CreatedIngestionKey extends it
    assert WRITES["createFolder"].read_back.path == "/v1/folders/{folder_id}"


def test_the_comparison_tells_a_dropped_property_from_a_rewritten_instant() -> None:
    assert not same("Folder", "description", "kept?", None)
    assert same("Annotation", "timestamp", "2026-01-01T01:00:00+01:00", "2026-01-01T00:00:00Z")
    assert not same("Annotation", "timestamp", "2026-01-01T01:00:00+01:00", "2026-01-01T01:00:00Z")
    assert clears("Folder", "metadata", None)  # Folder.metadata is never null: a null sent clears it
    assert not clears("Folder", "description", None)  # a null description is stored as null
