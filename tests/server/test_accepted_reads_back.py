"""Whatever the server accepts, the SDK reads back: for every operation of openapi/tally.yaml that takes a JSON body,
bodies generated from its request schema, with edge values put into them, are sent raw to the live server (both
backends). A 5xx is a failure whatever the body. For every body the server accepts (2xx):
- the answer decodes into the SDK's public type of the operation;
- what it touched reads back through the SDK (`tally.Tally`) with no error: each experiment (get, its metrics, also
  as pandas and polars frames, its annotations, its ingestion keys, its catalog and the metadata values of each
  catalog entry) and each folder (get, its subfolders, its experiments, its catalog); after the operation's
  examples, the organisation's whole catalog, by the SDK and by `tally metrics catalog`;
- what the contract says is kept comes back equal to what was sent: the request properties that the resource
  read back also has (tests/server/writes.py derives them), and each ingested event as a metric point.

The operations, their schemas, the resources they answer and what they keep are derived from the contract; only
how the SDK reads each kind of resource is written here (`SDK_READERS`, checked to cover every resource a write
answers).

Edge values (`Edged`): date-times at and past the rule's limits (leap seconds, years 0, 1 and 9999, offsets of
+-23:59, fractions of up to 40 digits, invalid days), integers around 2**53, 2**63, 2**64 and far beyond, doubles
at their extremes and -0.0, and strings with an astral character, a combining mark, right-to-left text, a byte
order mark, a line separator, NUL and lone surrogates (sent as JSON escapes, the only way JSON carries them). The
server may refuse any of them (4xx); a refusal is never a 5xx, and an acceptance always reads back.

Reproducible and bounded: each operation's test sends the spec's example body, then `EXAMPLES` generated ones;
hypothesis runs derandomized with no example database (the same bodies on every run and machine), and with no
deadline (a live server's latency is no property of a body). Each test runs in an organisation of its backend's
own (`FreshOrg`), so the organisation-wide reads see only what this module stored.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import msgspec
import pytest
import schemathesis
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode
from tally_api_types.operations import OPERATIONS

from tally import Tally
from tally._types import public_type
from tally.cli import cli
from tally_server import RunningServer

from .edges import EDGE_INTEGERS, EDGE_NUMBERS, EDGE_TEXT, edge_date_times
from .fresh_org import FreshOrg
from .writes import SPEC_PATH, Contract, Op, Write

CONTRACT = Contract.load()
SCHEMA = schemathesis.openapi.from_path(SPEC_PATH)
WITH_BODY = sorted(op.operation_id for op in CONTRACT.ops if CONTRACT.body_schema(op) is not None)
WRITES = {write.op.operation_id: write for write in CONTRACT.writes()}
EXAMPLES = 20


def _id_kinds() -> dict[str, str]:
    """Each id property of the contract's request examples and the prefix of the resource it names
    (`folder_id` -> `fld_`), so that a generated id is pointed at a resource of the right kind."""
    kinds: dict[str, str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and re.fullmatch(r"[a-z]+_[0-9A-Z]{26}", value):
                    kinds.setdefault(key, value.split("_", 1)[0] + "_")
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for op in CONTRACT.ops:
        if CONTRACT.body_schema(op) is not None:
            walk(CONTRACT.body_example(op))
    return kinds


ID_KINDS = _id_kinds()


def pool_id(name: str, value: str, pool: list[str], choice: int) -> str:
    """The `choice`-th latest resource in `pool` (cycling) of the kind that id property `name` names (any kind when
    the examples never show it); `value` itself when `choice` is 0 or the pool has none."""
    candidates = [made for made in pool if made.startswith(ID_KINDS.get(name, ""))]
    return candidates[-1 - (choice - 1) % len(candidates)] if choice and candidates else value


class Edged:
    """`Edged(draw, pool).body(schema, value)`: `value` (valid for `schema`) with edge values put into it: each
    date-time, one time in two, becomes an edge date-time (one the schema allows but the value leaves out is added,
    sometimes); up to `budget` other leaves (each one time in `odds`) become an edge value of their kind; most ids
    point at a resource of their kind in `pool` (so that more requests succeed). The budget is drawn per body, from
    none to all of them, so that long bodies (an ingest batch) are also accepted with edge values in them. Every
    choice is drawn from hypothesis, so that an example replays."""

    def __init__(self, draw: st.DrawFn, pool: list[str]) -> None:
        self.draw = draw
        self.pool = pool
        self.budget = draw(st.sampled_from([0, 1, 3, 1000]))
        self.odds = draw(st.sampled_from([2, 4]))
        # Any lone surrogate refuses the whole body (it is no valid JSON text), and the generator puts them in free
        # strings too: half the bodies go without, so that edge values elsewhere in them can be accepted.
        self.surrogates = draw(st.booleans())

    def body(self, schema: Any, value: Any) -> Any:
        edged = self(schema, value)
        return edged if self.surrogates else _without_surrogates(edged)

    def _spend(self) -> bool:
        """Whether this leaf gets an edge value."""
        if self.budget and self.draw(st.integers(0, self.odds - 1)) == 0:
            self.budget -= 1
            return True
        return False

    def __call__(self, schema: Any, value: Any, name: str = "") -> Any:
        draw = self.draw
        schema = CONTRACT.resolve(schema) if isinstance(schema, dict) else {}
        if isinstance(value, dict):
            properties = schema.get("properties", {})
            extra = schema.get("additionalProperties", {})
            out: dict[str, Any] = {}
            for key, item in value.items():
                sub = properties.get(key, extra if isinstance(extra, dict) else {})
                out[_with_edge_text(draw, key) if key not in properties and self._spend() else key] = self(
                    sub, item, key
                )
            for key, sub in properties.items():
                if (
                    key not in out
                    and CONTRACT.resolve(sub).get("format") == "date-time"
                    and draw(st.booleans())
                ):
                    out[key] = draw(edge_date_times())
            return out
        if isinstance(value, list):
            return [self(schema.get("items", {}), item, name) for item in value]
        if isinstance(value, str) and CONTRACT.is_id_reference(schema):
            return pool_id(name, value, self.pool, draw(st.integers(0, 3)))
        if isinstance(value, str) and schema.get("format") == "date-time":  # what this test was written for
            return draw(edge_date_times()) if draw(st.booleans()) else value
        if value is None or isinstance(value, bool) or not self._spend():
            return value
        if isinstance(value, str):
            return _with_edge_text(draw, value)
        if isinstance(value, int):
            return draw(st.sampled_from(EDGE_INTEGERS))
        if isinstance(value, float):
            return draw(st.sampled_from(EDGE_NUMBERS + EDGE_INTEGERS))
        return value


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_surrogates(item) for item in value]
    if isinstance(value, str):
        return "".join(ch for ch in value if not "\ud800" <= ch <= "\udfff")
    return value


def _with_edge_text(draw: st.DrawFn, text: str) -> str:
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.sampled_from(EDGE_TEXT)) + text[at:]


def documented_body(op: Op, pool: list[str]) -> Any:
    """The spec's example body of `op`, its ids pointed at the latest resource of their kind in `pool` and its
    free strings made unique (names are unique within a parent)."""
    schema = CONTRACT.body_schema(op) or {}
    return {
        name: _documented(
            CONTRACT.resolve(schema.get("properties", {}).get(name, {})), value, pool, name, True
        )
        for name, value in CONTRACT.body_example(op).items()
    }


def _documented(schema: dict[str, Any], value: Any, pool: list[str], name: str, top: bool) -> Any:
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        return {
            k: _documented(CONTRACT.resolve(properties.get(k, {})), v, pool, k, False)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_documented(CONTRACT.resolve(schema.get("items", {})), v, pool, name, False) for v in value]
    if not isinstance(value, str):
        return value
    if CONTRACT.is_id_reference(schema):
        return pool_id(name, value, pool, 1)
    if top and not {"format", "enum", "const"} & set(schema):
        suffix = f"-{uuid.uuid4().hex[:8]}"
        return value[: max(0, int(schema.get("maxLength", 10_000)) - len(suffix))] + suffix
    return value


# ---- comparing -----------------------------------------------------------------------------------------------
def decoded(text: str) -> datetime:
    """A date-time as the SDK decodes it."""
    return msgspec.json.decode(json.dumps(text).encode(), type=datetime)


def same(schema: dict[str, Any], sent: Any, got: Any) -> bool:
    """Whether the SDK's `got` is the `sent` JSON value: a date-time is the instant the SDK decodes from what was
    sent; a number is the double the server keeps; a null sent may be stored as the property's empty value."""
    if sent is None:
        return got in (None, {}, ())
    if schema.get("format") == "date-time":
        return bool(decoded(sent) == got)
    if schema.get("type") == "number" and isinstance(sent, int | float):
        return bool(float(sent) == got)
    return bool(json.loads(msgspec.json.encode(got)) == sent)  # as JSON: tuples as lists, Structs as objects


# ---- the SDK's reads -----------------------------------------------------------------------------------------
def _in_list(items: Iterator[Any], wanted: str, what: str) -> Any:
    found = [item for item in items if item.id == wanted]
    assert found, f"the SDK does not list {what} {wanted}"
    return found[0]


SDK_READERS: dict[str, Callable[[Tally, dict[str, Any]], Any]] = {
    "Folder": lambda sdk, answered: sdk.folders.get(answered["id"]),
    "Experiment": lambda sdk, answered: sdk.experiments.get(answered["id"]),
    "Annotation": lambda sdk, answered: _in_list(
        sdk.annotations.list(answered["experiment_id"], page_size=1000), answered["id"], "annotation"
    ),
    "IngestionKey": lambda sdk, answered: _in_list(
        sdk.ingestion_keys.list(answered["experiment_id"], page_size=1000), answered["id"], "ingestion key"
    ),
}


def read_experiment(sdk: Tally, experiment_id: str) -> list[Any]:
    """Everything of an experiment, through the SDK; its metric points."""
    sdk.experiments.get(experiment_id)
    points = list(sdk.metrics.list(experiment_id, page_size=1000))
    if points:  # and as frames, which convert timestamps to UTC
        sdk.metrics.list(experiment_id, page_size=1000).to_pandas()
        sdk.metrics.list(experiment_id, page_size=1000).to_polars()
    list(sdk.annotations.list(experiment_id, page_size=1000))
    list(sdk.ingestion_keys.list(experiment_id, page_size=1000))
    for entry in sdk.metric_catalog.list(experiment_id=experiment_id, page_size=1000):
        for key in entry.metadata_keys:
            list(
                sdk.metric_catalog.inspect_values(
                    entry.name, key, experiment_id=experiment_id, page_size=1000
                )
            )
    return points


def read_folder(sdk: Tally, folder_id: str) -> None:
    """Everything of a folder, through the SDK."""
    sdk.folders.get(folder_id)
    list(sdk.folders.list(parent_id=folder_id, page_size=1000))
    list(sdk.experiments.list(folder_id=folder_id, include_archived=True, page_size=1000))
    list(sdk.metric_catalog.list(folder_id=folder_id, page_size=1000))


def read_organisation(org: FreshOrg, monkeypatch: pytest.MonkeyPatch) -> None:
    """The organisation's whole catalog (every metric of every experiment), by the SDK and by the CLI."""
    entries = list(org.sdk.metric_catalog.list(page_size=1000))
    monkeypatch.setenv("TALLY_API_KEY", org.key)
    monkeypatch.setenv("TALLY_BASE_URL", org.server.url)
    result = CliRunner().invoke(cli, ["metrics", "catalog", "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert len([line for line in result.output.splitlines() if line.strip()]) == len(entries)


def check_kept(sdk: Tally, write: Write, body: dict[str, Any], answered: dict[str, Any]) -> None:
    """The write's kept properties, read back through the SDK, equal what was sent."""
    stored = SDK_READERS[write.resource](sdk, answered)
    for name in write.kept:
        if name in body:
            schema = CONTRACT.property_schema(write.resource, name)
            assert same(schema, body[name], getattr(stored, name)), (
                f"{write.op.label} accepted `{name}` = {body[name]!r}; the SDK reads {getattr(stored, name)!r}"
            )


def check_events(points: list[Any], body: dict[str, Any], answered: dict[str, Any]) -> None:
    """Each event stored by an accepted ingest reads back as a metric point equal to it (the properties the
    contract's MetricEvent and MetricPoint share)."""
    conflicts = {conflict["index"] for conflict in answered["conflicts"]}
    stored = {point.client_event_id: point for point in points}
    event = CONTRACT.resolve(CONTRACT.spec_schema("MetricEvent"))["properties"]
    shared = set(event) & set(CONTRACT.resolve(CONTRACT.spec_schema("MetricPoint"))["properties"])
    seen: set[str] = set()
    for index, sent in enumerate(body["events"]):
        cid = sent["client_event_id"]
        if index in conflicts or cid in seen:  # a conflict is not stored; a repeat is the first one again
            continue
        seen.add(cid)
        assert cid in stored, f"ingestMetrics accepted events[{index}] ({cid!r}); the SDK does not list it"
        for name in shared & set(sent):
            got = getattr(stored[cid], name)
            assert same(CONTRACT.resolve(event[name]), sent[name], got), (
                f"ingestMetrics accepted events[{index}].{name} = {sent[name]!r}; the SDK reads {got!r}"
            )


# ---- sending -------------------------------------------------------------------------------------------------
class Session:
    """One operation's requests: each example gets new resources for its path (made by the contract's creators);
    the pool of what was made is what ids in bodies point at."""

    def __init__(self, org: FreshOrg, pool: list[str]) -> None:
        self.org = org
        self.pool = list(pool)

    def send(
        self, op: Op, path: dict[str, str], body: Any, query: Any = None, token: str | None = None
    ) -> Any:
        headers = {"Content-Type": "application/json"}
        if op.method in ("post", "patch"):
            headers["Idempotency-Key"] = f"reads-back-{uuid.uuid4().hex}"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        # ensure_ascii: a lone surrogate travels as its JSON escape (it has no UTF-8 form)
        content = json.dumps(body, ensure_ascii=True, allow_nan=False).encode()
        url = op.path.format(**path)
        return self.org.http.request(op.method, url, content=content, params=query, headers=headers)

    def new_path(self, params: list[str]) -> dict[str, str]:
        """New resources for a path's parameters, in order, each made under those before it (the annotation of
        `/experiments/{experiment_id}/annotations/{annotation_id}` in that experiment)."""
        path: dict[str, str] = {}
        for param in params:
            path[param] = self.new_resource(param, path)
        return path

    def new_resource(self, param: str, known: dict[str, str] | None = None) -> str:
        creator = CONTRACT.creator_of(param)
        path = {p: (known or {}).get(p) or self.new_resource(p) for p in creator.path_params}
        required = (CONTRACT.body_schema(creator) or {}).get("required", [])
        body = {
            name: f"{value}-{uuid.uuid4().hex[:12]}" if isinstance(value, str) else value
            for name, value in CONTRACT.body_example(creator).items()
            if name in required
        }
        response = self.send(
            creator, path, body, token=self.token_for(creator, path)
        )  # createAnnotation's key
        assert response.status_code == 201, response.text
        made = str(response.json()["id"])
        self.pool.append(made)
        return made

    def token_for(self, op: Op, path: dict[str, str]) -> str | None:
        if not op.schemes or "OrgApiKey" in op.schemes:
            return None
        minter = CONTRACT.token_minter(op)
        response = self.send(minter, {p: path[p] for p in minter.path_params}, {})
        assert response.status_code == 201, response.text
        return str(response.json()["token"])


def touched(path: dict[str, str], body: Any, answered: Any) -> tuple[set[str], set[str]]:
    """The experiments and folders a request named or answered (its path, the top-level ids of its body and of
    its answer)."""
    ids = set(path.values())
    for part in (body, answered):
        if isinstance(part, dict):
            ids |= {v for k, v in part.items() if isinstance(v, str) and (k == "id" or k.endswith("_id"))}
    return {i for i in ids if i.startswith("exp_")}, {i for i in ids if i.startswith("fld_")}


@pytest.fixture(scope="module")
def org(live_server: RunningServer) -> Iterator[FreshOrg]:
    made = FreshOrg(live_server)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(scope="module")
def seeded(org: FreshOrg) -> list[str]:
    """What the generated ids point at first: a folder, and an experiment holding labelled points."""
    folder = org.http.post("/v1/folders", json={"name": "seed"})
    assert folder.status_code == 201, folder.text
    experiment_id, ingest = org.experiment()
    events = [
        {
            "name": name,
            "value": step / 2,
            "step": step,
            "metadata": {"split": "val"},
            "client_event_id": f"{name}{step}",
        }
        for name in ("train/loss", "loss")
        for step in range(3)
    ]
    assert ingest.post(f"/v1/experiments/{experiment_id}/metrics", json={"events": events}).status_code == 200
    return [str(folder.json()["id"]), experiment_id]


@pytest.mark.parametrize("operation_id", WITH_BODY)
def test_what_the_server_accepts_the_sdk_reads_back(
    operation_id: str, org: FreshOrg, seeded: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    op = CONTRACT.by_id(operation_id)
    operation = SCHEMA.find_operation_by_id(operation_id)
    schema = CONTRACT.body_schema(op)
    answer_type = public_type(OPERATIONS[operation_id].response)
    session = Session(org, seeded)
    outcomes: list[int] = []

    def send_and_read_back(path: dict[str, str], body: Any, query: Any) -> None:
        response = session.send(op, path, body, query=query, token=session.token_for(op, path))
        outcomes.append(response.status_code)
        assert response.status_code < 500, (
            f"{op.label} answered {response.status_code} to {body!r}: {response.text}"
        )
        if not response.is_success:
            return
        answered = response.json()
        if answer_type is not None:
            msgspec.json.decode(response.content, type=answer_type)  # the answer itself reads
        experiments, folders = touched(path, body, answered)
        points = {
            experiment_id: read_experiment(org.sdk, experiment_id) for experiment_id in sorted(experiments)
        }
        for folder_id in sorted(folders):
            read_folder(org.sdk, folder_id)
        if operation_id in WRITES:
            check_kept(org.sdk, WRITES[operation_id], body, answered)
        if operation_id == "ingestMetrics":
            check_events(points[path["experiment_id"]], body, answered)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        path = session.new_path(op.path_params)
        case = data.draw(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=path))
        pool = [made for made in session.pool if made not in path.values()]  # no folder moves into itself
        send_and_read_back(path, Edged(data.draw, pool).body(schema, case.body), case.query)

    path = session.new_path(op.path_params)
    documented = documented_body(op, [made for made in session.pool if made not in path.values()])
    send_and_read_back(path, documented, None)
    run()
    read_organisation(org, monkeypatch)
    assert outcomes[0] < 300, f"{op.label} refused the spec's example body {documented!r}: {outcomes}"


def test_every_resource_a_write_answers_has_an_sdk_reader() -> None:
    """A new kind of resource in the contract needs its SDK read here (SDK_READERS)."""
    assert {write.resource for write in WRITES.values()} <= set(SDK_READERS)
    assert {"ingestMetrics", "createAnnotation", "createFolder", "compareMetrics"} <= set(WITH_BODY)
