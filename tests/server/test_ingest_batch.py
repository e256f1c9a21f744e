"""The ingest fast path (`tally_server.ingest_batch`) is a sound subset of the contract: whatever it accepts, the
spec's own validator accepts too, with the same values; whatever it cannot prove goes the general route, which
accepts or refuses exactly as before. Checked with generated bodies built to sit on every boundary the contract
draws, and over HTTP for the cases the fast path hands on."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tally_server import RunningServer, ingest_batch
from tally_server._json import decode_body
from tally_server._spec import build_spec, load_spec
from tally_server.errors import ApiError
from tally_server.validation import BodyRules

from .edges import edge_date_times
from .fresh_org import FreshOrg
from .helpers import assert_error

SPEC = load_spec()
INGEST = SPEC.by_id()["ingestMetrics"]
RULES = BodyRules(SPEC)


def _general(data: bytes) -> ingest_batch.IngestBatch | None:
    """What the general route (strict decode, the spec's validator, the cap) makes of a body; None if refused."""
    try:
        body = decode_body(data)
    except ApiError:
        return None
    if INGEST.check_body(body):
        return None
    try:
        return ingest_batch.from_validated(body)
    except ApiError:
        return None


def _digits(width: int, low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: str(n).zfill(width))


_timestamps = st.one_of(
    st.builds(
        lambda y, mo, d, sep, h, mi, s, frac, off: f"{y}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{off}",
        st.sampled_from(
            ["0000", "0001", "0999", "1000", "1900", "2000", "2023", "2024", "8999", "9000", "9999"]
        ),
        _digits(2, 0, 13),
        _digits(2, 0, 32),
        st.sampled_from(["T", "t", " "]),
        _digits(2, 0, 24),
        _digits(2, 0, 60),
        _digits(2, 0, 61),
        st.one_of(st.just(""), st.text("0123456789", min_size=0, max_size=12).map(lambda f: "." + f)),
        st.one_of(
            st.sampled_from(["Z", "z", "", "+00:00", "-00:00"]),
            st.builds(
                lambda s, h, m: f"{s}{h}:{m}", st.sampled_from("+-"), _digits(2, 0, 24), _digits(2, 0, 60)
            ),
        ),
    ),
    st.sampled_from(
        ["2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-12-04T10:00:00Z\n"]
    ),
    edge_date_times(),
    st.text(max_size=30),
)
_rfc3339 = st.builds(
    lambda at, digits, offset: at.strftime("%Y-%m-%dT%H:%M:%S") + digits + offset,
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(8999, 12, 31)),
    st.sampled_from(["", ".5", ".123456", ".123456789"]),
    st.sampled_from(["Z", "+00:00", "-00:00", "+05:30", "-12:00", "+23:59"]),
)
_tricky = st.text(alphabet=st.sampled_from(list("aZ09_./:@-~ \n\t\x7f\x00é😀")), max_size=8)


def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid values nine times in ten: most generated bodies are then ones the fast path must prove, and the
    rest probe one boundary at a time."""
    return st.sampled_from(range(12)).flatmap(lambda n: bad if n == 11 else good)


_names = _mostly(
    st.from_regex(r"\A[A-Za-z0-9_./:@-]{1,20}\Z"),
    st.sampled_from(["x" * 256, "x" * 257, "loss\n", ""]) | _tricky,
)
_event_ids = _mostly(
    st.from_regex(r"\A[\x21-\x7E]{1,20}\Z"), st.sampled_from(["c" * 128, "c" * 129, "id\n", "a b"]) | _tricky
)
_keys = _mostly(
    st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_.-]{0,10}\Z"),
    st.sampled_from(["k" * 64, "k" * 65, "1x", "a\n"]) | _tricky,
)
_labels = _mostly(
    st.dictionaries(
        _keys,
        _mostly(
            st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=5),
            st.just("v" * 257) | st.integers() | st.just("a\x00b"),
        ),
        max_size=4,
    ),
    st.dictionaries(st.from_regex(r"\A[a-z]{1,3}\Z"), st.just("v" * 256), min_size=31, max_size=33),
)
_values = _mostly(
    st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**63), 2**63),
    st.just(10**400) | st.booleans() | st.just("1"),
)
_steps = _mostly(st.none() | st.integers(0, 2**53 - 1), st.sampled_from([-1, 2**53, 3.0, 2.5, "1", True]))


@st.composite
def _events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {
        "name": draw(_names),
        "value": draw(_values),
        "client_event_id": draw(_event_ids),
    }
    if draw(st.booleans()):
        event["step"] = draw(_steps)
    if draw(st.booleans()):
        event["timestamp"] = draw(_mostly(_rfc3339, _timestamps | st.none()))
    if draw(st.booleans()):
        event["metadata"] = draw(_mostly(_labels, st.none()))
    if draw(st.sampled_from(range(40))) == 39:
        event["extra"] = 1
    for field in ("name", "value", "client_event_id"):
        if draw(st.sampled_from(range(40))) == 39:
            del event[field]
    return event


def _encode(events: list[dict[str, Any]]) -> bytes:
    return json.dumps({"events": events}, ensure_ascii=False).encode()


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_events(), min_size=0, max_size=4))
def test_what_the_fast_path_accepts_the_contract_accepts_with_the_same_values(
    events: list[dict[str, Any]],
) -> None:
    data = _encode(events)
    fast = ingest_batch.decode(data)
    if fast is not None:
        assert _general(data) == fast, data


@settings(max_examples=200, deadline=None)
@given(st.lists(_events(), min_size=1, max_size=3))
def test_the_server_answers_each_body_as_the_general_route_does(events: list[dict[str, Any]]) -> None:
    data = _encode(events)
    general = _general(data)
    try:
        checked = RULES.check(INGEST, data)
    except ApiError:
        checked = None
    assert checked == general, data


_DAYS = ["2026-01-31", "2026-02-28", "2026-03-30", "2026-04-30", "2026-12-31", "1999-12-01", "2026-06-15"]


def test_the_bodies_sdks_send_take_the_fast_path() -> None:
    """Otherwise the path above would be sound by never running: batches as `run.log()` and the benchmarks send
    them, with and without timestamps and labels, are proven here."""
    events = [
        {
            "name": ("train/loss", "val/acc")[i % 2],
            "value": i * 0.5 if i % 3 else i,
            "step": i,
            "timestamp": f"{_DAYS[i % len(_DAYS)]}T10:{i % 60:02d}:{i % 60:02d}.{i:06d}{'Z' if i % 2 else '+05:30'}",
            "metadata": {"host": f"node-{i % 4}", "split": "train"},
            "client_event_id": f"run-{i}",
        }
        for i in range(1, 400)
    ]
    bare = [
        {"name": "loss", "value": 1.0, "client_event_id": "a"},
        {"name": "loss", "value": 2, "step": None, "client_event_id": "b"},
    ]
    for batch in (events, bare):
        fast = ingest_batch.decode(_encode(batch))
        assert fast is not None
        assert fast == _general(_encode(batch))


@pytest.mark.parametrize(
    "timestamp",
    [
        "2023-02-29T00:00:00Z",  # not a leap year
        "1900-02-29T00:00:00Z",  # nor is 1900
        "2026-02-30T00:00:00Z",
        *(f"2026-{month:02d}-31T00:00:00Z" for month in (2, 4, 6, 9, 11)),
        "2026-13-01T00:00:00Z",
        "2026-00-10T00:00:00Z",
        "2026-01-00T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T23:60:00Z",
        "2026-01-01T23:59:60Z",
        "2026-01-01T10:00:00+24:00",
        "2026-01-01T10:00:00+23:60",
        "2026-01-01T10:00:00+05:60",
        "2026-01-01T10:00:00+0500",
        "2026-01-01T10:00:00",
        "2026-01-01T10:00Z",
        "2026-01-01T10:00:00.Z",
        "2026-01-01 10:00:00Z",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:30:00+01:00",  # year 0 in UTC
        "9999-12-31T23:30:00-01:00",  # year 10000 in UTC
        "9999-12-31T23:59:59.9999995Z",
        "2026-01-01T10:00:00Z\n",
    ],
)
def test_a_timestamp_the_contract_refuses_is_never_proven(timestamp: str) -> None:
    data = _encode([{"name": "loss", "value": 1.0, "timestamp": timestamp, "client_event_id": "a"}])
    assert ingest_batch.decode(data) is None
    assert _general(data) is None


@pytest.mark.parametrize(
    "event",
    [
        {"name": "loss", "value": 1.0, "step": 3.0, "client_event_id": "a"},  # an integer, written as a float
        {"name": "loss", "value": 1.0, "timestamp": "2026-12-04t12:00:00z", "client_event_id": "a"},
        {"name": "loss", "value": 1.0, "timestamp": "0500-06-01T00:00:00+01:00", "client_event_id": "a"},
        {
            "name": "loss",
            "value": 1.0,
            "timestamp": "9000-12-04T12:00:00.1234567891Z",
            "client_event_id": "a",
        },
    ],
)
def test_what_the_fast_path_hands_on_is_still_accepted(event: dict[str, Any]) -> None:
    data = _encode([event])
    assert ingest_batch.decode(data) is None
    assert RULES.check(INGEST, data) == _general(data) is not None


@pytest.fixture
def org(live_server: RunningServer) -> Iterator[FreshOrg]:
    made = FreshOrg(live_server)
    try:
        yield made
    finally:
        made.close()


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"name": "loss\n", "value": 1.0, "client_event_id": "a"}, "events[0].name"),
        ({"name": "loss", "value": 1.0, "client_event_id": "a\n"}, "events[0].client_event_id"),
        (
            {"name": "loss", "value": 1.0, "metadata": {"k\n": "v"}, "client_event_id": "a"},
            "events[0].metadata",
        ),
        (
            {"name": "loss", "value": 1.0, "timestamp": "2023-02-29T00:00:00Z", "client_event_id": "a"},
            "events[0].timestamp",
        ),
        ({"name": "loss", "value": 1.0, "timestamp": None, "client_event_id": "a"}, "events[0].timestamp"),
        ({"name": "loss", "value": 10**400, "client_event_id": "a"}, "events[0].value"),
        (
            {"name": "loss", "value": 1.0, "metadata": {"k": "a\x00b"}, "client_event_id": "a"},
            "events[0].metadata",
        ),
    ],
)
def test_a_refused_event_is_named_over_http(org: FreshOrg, event: dict[str, Any], field: str) -> None:
    experiment_id, ingest = org.experiment()
    response = ingest.post(
        f"/v1/experiments/{experiment_id}/metrics",
        content=_encode([event]),
        headers={"Content-Type": "application/json"},
    )
    error = assert_error(response, 400, "invalid_request")
    paths = [e["path"] for e in error["details"]["errors"]]
    assert any(path.startswith(field) for path in paths), paths
    assert list(org.sdk.metrics.list(experiment_id)) == []


def test_accepted_values_read_back_as_sent_over_http(org: FreshOrg) -> None:
    experiment_id, ingest = org.experiment()
    events = [
        {"name": "loss", "value": 7, "step": 3.0, "client_event_id": "three"},
        {
            "name": "loss",
            "value": 0.25,
            "step": 4,
            "timestamp": "2024-02-29T12:00:00.5Z",
            "client_event_id": "leap",
        },
        {
            "name": "loss",
            "value": 0.5,
            "step": 5,
            "metadata": {"split": "val"},
            "client_event_id": "labelled",
        },
    ]
    for event in events:  # one at a time: each goes its own route (general, fast, fast)
        response = ingest.post(
            f"/v1/experiments/{experiment_id}/metrics",
            content=_encode([event]),
            headers={"Content-Type": "application/json"},
        )
        assert response.json() == {"accepted": 1, "duplicates": 0, "conflicts": []}
        again = ingest.post(
            f"/v1/experiments/{experiment_id}/metrics",
            content=_encode([event]),
            headers={"Content-Type": "application/json"},
        )
        assert again.json() == {
            "accepted": 0,
            "duplicates": 1,
            "conflicts": [],
        }  # the same payload, both routes
    stored = list(org.sdk.metrics.list(experiment_id, name="loss"))
    assert [(p.step, p.value, dict(p.metadata)) for p in stored] == [
        (3, 7.0, {}),
        (4, 0.25, {}),
        (5, 0.5, {"split": "val"}),
    ]
    assert stored[1].timestamp.isoformat().startswith("2024-02-29T12:00:00.5")


def test_the_server_refuses_to_start_on_a_contract_this_path_was_not_written_for() -> None:
    document = copy.deepcopy(SPEC.document)
    document["components"]["schemas"]["MetricEvent"]["properties"]["step"]["type"] = [
        "integer",
        "string",
        "null",
    ]
    with pytest.raises(RuntimeError, match="the contract's step changed"):
        ingest_batch.check_spec(build_spec(document))
    ingest_batch.check_spec(SPEC)  # the real one passes
