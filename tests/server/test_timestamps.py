"""Timestamps: the server accepts only what the SDK can read back, and answers the rows an earlier release stored
out of that range in a form every reader decodes (the same instant where one exists). Both backends.

The rule (openapi/tally.yaml, the `pattern` and description of every date-time a request carries): RFC 3339 with
an offset, year 0001 to 9999, seconds 00 to 59, the instant in UTC in years 0001 to 9999 too, and a Python aware
datetime once fractional seconds are rounded to the microsecond as the SDK's decoder (msgspec) rounds them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jsonschema_rs
import msgspec
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from sqlalchemy import select, update

from tally.cli import cli
from tally_server import RunningServer
from tally_server._spec import load_spec
from tally_server._util import TIMESTAMP_PATTERN, parse_timestamp, readable_timestamp
from tally_server.storage.schema import annotations, experiments, metric_points, metric_series

from .edges import edge_date_times
from .fresh_org import FreshOrg
from .helpers import assert_error

# Accepted by the previous release (and by RFC 3339's grammar), never decodable by the SDK.
UNREADABLE = [
    "2016-12-31T23:59:60Z",  # a leap second
    "2016-12-31T15:59:60-08:00",  # the same leap second, written in another offset
    "0000-01-01T00:00:00Z",  # year 0
    "9999-12-31T23:59:59.9999995Z",  # rounds (as msgspec rounds) into year 10000
    "0001-01-01T00:00:00+00:01",  # year 0 in UTC: decodes, but no datetime holds it in UTC (the SDK's frames)
    "9999-12-31T23:59:59-23:59",  # year 10000 in UTC
]

# At the edges of the rule, and inside it.
READABLE = [
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59.99999949999Z",
    "2016-12-31T23:59:59.123456789012345678901234567890Z",
    "2020-02-29T12:00:00+23:59",
    "2020-02-29T12:00:00-23:59",
    "0001-01-01T00:00:00-23:59",
    "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59+23:59",
    "2020-01-01t00:00:00z",
    "2020-01-01T00:00:00-00:00",
]


def decoded(text: str) -> datetime:
    """`text` as the SDK decodes a date-time."""
    return msgspec.json.decode(json.dumps(text).encode(), type=datetime)


@pytest.fixture
def org(live_server: RunningServer) -> Iterator[FreshOrg]:
    made = FreshOrg(live_server)
    try:
        yield made
    finally:
        made.close()


def _event(cid: str, timestamp: str | None, step: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "loss", "value": 0.5, "step": step, "client_event_id": cid}
    if timestamp is not None:
        body["timestamp"] = timestamp
    return body


@pytest.mark.parametrize("timestamp", UNREADABLE)
def test_a_timestamp_the_sdk_cannot_read_is_refused_naming_the_field(org: FreshOrg, timestamp: str) -> None:
    experiment_id, ingest = org.experiment()
    events = [_event("ok-0", "2026-01-01T00:00:00Z"), _event("bad-1", timestamp, step=1)]
    error = assert_error(
        ingest.post(f"/v1/experiments/{experiment_id}/metrics", json={"events": events}),
        400,
        "invalid_request",
    )
    assert [e["path"] for e in error["details"]["errors"]] == ["events[1].timestamp"]
    assert error["message"].startswith("events[1].timestamp: ")
    for fix in ("RFC 3339", "0001", "9999", "00 to 59"):
        assert fix in error["message"], error["message"]
    assert list(org.sdk.metrics.list(experiment_id)) == []  # a batch is atomic: nothing of it is stored

    error = assert_error(
        ingest.post(
            f"/v1/experiments/{experiment_id}/annotations",
            json={"text": "note", "timestamp": timestamp, "client_event_id": "a-1"},
        ),
        400,
        "invalid_request",
    )
    assert [e["path"] for e in error["details"]["errors"]] == ["timestamp"]

    for parameter in ("created_after", "created_before"):
        error = assert_error(
            org.http.get("/v1/experiments", params={parameter: timestamp}), 400, "invalid_request"
        )
        assert [e["path"] for e in error["details"]["errors"]] == [parameter]
        assert "RFC 3339" in error["message"]


def test_timestamps_at_the_edges_of_the_rule_are_kept_and_read_back(org: FreshOrg) -> None:
    experiment_id, ingest = org.experiment()
    events = [_event(f"edge-{i}", text, step=i) for i, text in enumerate(READABLE)]
    response = ingest.post(f"/v1/experiments/{experiment_id}/metrics", json={"events": events})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(READABLE)
    points = {p.client_event_id: p for p in org.sdk.metrics.list(experiment_id)}
    for event in events:
        assert points[event["client_event_id"]].timestamp == decoded(event["timestamp"]), event

    (entry,) = org.sdk.metric_catalog.list(experiment_id=experiment_id)
    instants = sorted(READABLE, key=parse_timestamp)
    assert entry.first_seen == decoded(instants[0])
    assert entry.last_seen == decoded(instants[-1])

    for i, text in enumerate(READABLE):
        created = ingest.post(
            f"/v1/experiments/{experiment_id}/annotations",
            json={"text": "edge", "timestamp": text, "client_event_id": f"note-{i}"},
        )
        assert created.status_code == 201, created.text
    notes = {a.client_event_id: a.timestamp for a in org.sdk.annotations.list(experiment_id)}
    assert notes == {f"note-{i}": decoded(text) for i, text in enumerate(READABLE)}

    for parameter in ("created_after", "created_before"):
        for text in READABLE:
            response = org.http.get("/v1/experiments", params={parameter: text})
            assert response.status_code == 200, (parameter, text, response.text)


def _store_as_the_previous_release_did(
    server: RunningServer, experiment_id: str, stamps: dict[str, str], annotation_stamp: str
) -> None:
    """Rewrite rows stored with ordinary timestamps into what the previous release stored when it was sent
    `stamps` (client_event_id -> timestamp text): the text as sent in `metric_points.ts`, the earliest and latest
    of them (text, and the instant its `parse_timestamp` computed) in `metric_series`, and the annotation's
    text in `annotations.ts`. Written straight into the database (SQLite or PostgreSQL) under the server."""
    by_instant = sorted(stamps.values(), key=parse_timestamp)
    first, last = by_instant[0], by_instant[-1]
    with server.repository.db.write() as conn:
        experiment_pk = conn.execute(
            select(experiments.c.pk).where(experiments.c.id == experiment_id)
        ).scalar_one()
        for cid, stamp in stamps.items():
            conn.execute(
                update(metric_points)
                .values(ts=stamp, ts_auto=False)
                .where(metric_points.c.experiment == experiment_pk, metric_points.c.client_event_id == cid)
            )
        conn.execute(
            update(metric_series)
            .values(
                first_ts=first, first_us=parse_timestamp(first), last_ts=last, last_us=parse_timestamp(last)
            )
            .where(metric_series.c.experiment == experiment_pk)
        )
        conn.execute(
            update(annotations)
            .values(ts=annotation_stamp, ts_auto=False)
            .where(annotations.c.experiment == experiment_pk)
        )


# What each stored text reads back as: the same instant when a datetime can hold it (a leap second is the
# instant of the next second, as the previous release already ordered it); year 0 clamps to the first instant of
# year 1; a fraction that rounds into year 10000 reads as the last microsecond of 9999 (its instant, truncated).
LEGACY = {
    "2016-12-31T23:59:60Z": datetime(2017, 1, 1, tzinfo=UTC),
    "2016-12-31T15:59:60-08:00": datetime(2017, 1, 1, tzinfo=UTC),
    "2016-12-31T23:59:60.25Z": datetime(2017, 1, 1, 0, 0, 0, 250000, tzinfo=UTC),
    "0000-01-01T00:00:00Z": datetime(1, 1, 1, tzinfo=UTC),
    "0000-06-15T12:00:00+05:00": datetime(1, 1, 1, tzinfo=UTC),
    "9999-12-31T23:59:59.9999995Z": datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    "9999-12-31T23:59:60Z": datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    "0001-01-01T00:00:00+23:59": datetime(1, 1, 1, tzinfo=UTC),  # year 0 in UTC
    "0001-01-01T12:00:00+01:00": datetime(1, 1, 1, 11, tzinfo=UTC),
    "2026-03-01T10:00:00+01:00": datetime(2026, 3, 1, 10, tzinfo=timezone(timedelta(hours=1))),  # unchanged
}


def test_rows_the_previous_release_stored_read_back_through_the_sdk_and_the_cli(
    org: FreshOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment_id, ingest = org.experiment()
    cids = {text: f"legacy-{i}" for i, text in enumerate(LEGACY)}
    events = [_event(cid, "2026-01-01T00:00:00Z", step=i) for i, cid in enumerate(cids.values())]
    assert ingest.post(f"/v1/experiments/{experiment_id}/metrics", json={"events": events}).status_code == 200
    created = ingest.post(
        f"/v1/experiments/{experiment_id}/annotations", json={"text": "n", "client_event_id": "n"}
    )
    assert created.status_code == 201, created.text
    _store_as_the_previous_release_did(
        org.server, experiment_id, {cid: text for text, cid in cids.items()}, "2016-12-31T23:59:60Z"
    )

    points = {p.client_event_id: p.timestamp for p in org.sdk.metrics.list(experiment_id)}
    assert points == {cids[text]: instant for text, instant in LEGACY.items()}
    for scope in ({}, {"experiment_id": experiment_id}):
        (entry,) = org.sdk.metric_catalog.list(**scope)
        assert (entry.first_seen, entry.last_seen) == (
            datetime(1, 1, 1, tzinfo=UTC),
            LEGACY["9999-12-31T23:59:60Z"],
        )
    (note,) = org.sdk.annotations.list(experiment_id)
    assert note.timestamp == datetime(2017, 1, 1, tzinfo=UTC)
    # Its creation re-sent at the instant it reads back as: the stored annotation, answered readable.
    again = ingest.post(
        f"/v1/experiments/{experiment_id}/annotations",
        json={"text": "n", "timestamp": "2017-01-01T00:00:00Z", "client_event_id": "n"},
    )
    assert again.status_code == 200, again.text
    assert decoded(again.json()["timestamp"]) == note.timestamp

    monkeypatch.setenv("TALLY_API_KEY", org.key)
    monkeypatch.setenv("TALLY_BASE_URL", org.server.url)
    for args in (
        ["metrics", "catalog", "--json"],
        ["metrics", "catalog"],
        ["metrics", "list", experiment_id, "--json"],
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, (args, result.output, result.exception)
        assert "loss" in result.output

    # Nothing was lost: the database still holds what was sent, and a re-send of an event at the instant it
    # reads back as is a duplicate of it, not a conflict.
    with org.server.repository.db.write() as conn:
        stored = {
            row[0]
            for row in conn.execute(
                select(metric_points.c.ts).where(metric_points.c.client_event_id.like("legacy-%"))
            )
        }
    assert stored == set(LEGACY)
    resent = _event(cids["2016-12-31T23:59:60Z"], "2017-01-01T00:00:00Z", step=0)
    answer = ingest.post(f"/v1/experiments/{experiment_id}/metrics", json={"events": [resent]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 0, "duplicates": 1, "conflicts": []}


# ---- the rule, without a server ------------------------------------------------------------------------------
def _request_date_times() -> dict[str, dict[str, Any]]:
    """Every date-time a request of the contract carries (body properties at any depth, parameters), by where."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("format") == "date-time":
                found[where] = node
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}[{index}]")

    for op in load_spec().operations:
        walk(op.body_schema, f"{op.operation_id} body")
        for parameter in op.parameters:
            walk(dict(parameter.schema), f"{op.operation_id} {parameter.name}")
    return found


REQUEST_DATE_TIMES = _request_date_times()


def test_every_date_time_a_request_carries_follows_the_one_rule() -> None:
    """A date-time added to a request without the rule's pattern would let the SDK-unreadable in again."""
    assert len(REQUEST_DATE_TIMES) >= 4, REQUEST_DATE_TIMES  # events, annotations, created_after/before
    patterns = {where: schema.get("pattern") for where, schema in REQUEST_DATE_TIMES.items()}
    assert set(patterns.values()) == {TIMESTAMP_PATTERN}, patterns  # the server's read path checks the same


_RULE = jsonschema_rs.Draft202012Validator(next(iter(REQUEST_DATE_TIMES.values())), validate_formats=True)
_RFC3339 = jsonschema_rs.Draft202012Validator(
    {"type": "string", "format": "date-time"}, validate_formats=True
)


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(edge_date_times())
def test_what_the_rule_accepts_the_sdk_decodes_and_what_it_refuses_reads_back_readable(text: str) -> None:
    """The contract's rule (format and pattern, as the server validates) admits only date-times that the SDK's
    decoder turns into an aware datetime; and `readable_timestamp`, which answers stored rows, keeps exactly those
    and turns every other RFC 3339 text (what an earlier release stored) into one the rule admits."""
    if _RULE.is_valid(text):
        assert decoded(text).astimezone(UTC).tzinfo is not None  # decodes, and converts to UTC (as frames do)
        assert readable_timestamp(text) == text
    elif _RFC3339.is_valid(text):
        answered = readable_timestamp(text)
        assert answered != text
        assert _RULE.is_valid(answered), (text, answered)
        assert decoded(answered).astimezone(UTC).tzinfo is not None


def test_the_edge_date_times_cross_every_limit_of_the_rule() -> None:
    """The generator reaches each limit: a leap second, years 0 and 9999, +-23:59, long fractions."""
    seen: list[str] = []

    @settings(max_examples=100, derandomize=True, database=None)
    @given(edge_date_times())
    def collect(text: str) -> None:
        seen.append(text)

    collect()
    assert any(t[17:19] == "60" for t in seen)
    assert any(t.startswith("0000") for t in seen)
    assert any(t.startswith("9999-12-31") for t in seen)
    assert any(t.endswith(("+23:59", "-23:59")) for t in seen)
    assert any(len(t) > 40 for t in seen)
    assert sum(_RULE.is_valid(t) for t in seen) > len(seen) // 4  # and plenty the rule admits
