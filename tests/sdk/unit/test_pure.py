"""The pure parts, without HTTP: credentials, retry policy, events and batches, page walk, errors."""

from __future__ import annotations

import gc
import hashlib
import itertools
import json
import logging
import math
import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tally
from tally import Tally
from tally._credentials import (
    DEFAULT_BASE_URL,
    CredentialsFile,
    read_credentials_file,
    resolve,
)
from tally._errors import error_from_response
from tally._events import event_id, plan_batches, prepare_events
from tally._logging import RedactingFilter
from tally._pagination import PageWalk
from tally._redact import redact
from tally._retry_policy import (
    BACKOFF_CAP,
    is_retry_safe,
    parse_retry_after,
    retry_delay,
    status_is_retryable,
)
from tally._types import Page
from tally_credentials import write_credentials

ORG = "tk_org_abcdefghijklmnopqrstuvwxyz12"
NO_FILE = CredentialsFile(Path("/nowhere/credentials.json"), "missing")


# ---- credentials -------------------------------------------------------------------------------------------
def test_explicit_argument_wins() -> None:
    env = {"TALLY_API_KEY": "tk_org_fromenv000000000000", "TALLY_BASE_URL": "http://env.test"}
    config = resolve(api_key=ORG, base_url="http://arg.test/", env=env, file=NO_FILE)
    assert (config.api_key, config.base_url, config.credential_source) == (ORG, "http://arg.test", "argument")


def test_environment_then_file_then_default() -> None:
    file = CredentialsFile(
        Path("/c/credentials.json"), "ok", api_key="tk_org_fromfile0000000000", base_url="http://f"
    )
    from_env = resolve(api_key=None, base_url=None, env={"TALLY_API_KEY": "tk_org_env0000000000"}, file=file)
    assert from_env.credential_source == "env:TALLY_API_KEY"
    assert from_env.base_url == "http://f"
    from_file = resolve(api_key=None, base_url=None, env={}, file=file)
    assert from_file.credential_source == "file:/c/credentials.json"
    assert from_file.api_key.endswith("0000")
    default = resolve(api_key=ORG, base_url=None, env={}, file=NO_FILE)
    assert default.base_url == DEFAULT_BASE_URL
    assert default.base_url_source == "default"


def test_local_ignores_environment() -> None:
    file = CredentialsFile(
        Path("/c/credentials.json"), "ok", api_key="tk_org_local0000000000", base_url="http://l"
    )
    env = {"TALLY_API_KEY": "tk_org_env0000000000", "TALLY_BASE_URL": "http://env"}
    config = resolve(api_key="local", base_url=None, env=env, file=file)
    assert (config.api_key, config.base_url) == ("tk_org_local0000000000", "http://l")
    with pytest.raises(tally.ConfigurationError, match="environment ignored"):
        resolve(api_key="local", base_url=None, env=env, file=NO_FILE)


@pytest.mark.parametrize(
    ("file", "says"),
    [
        (NO_FILE, "does not exist"),
        (
            CredentialsFile(Path("/c/credentials.json"), "unreadable", problem="not JSON"),
            "unreadable (not JSON)",
        ),
        (CredentialsFile(Path("/c/credentials.json"), "no_api_key"), "has no api_key"),
    ],
)
def test_configuration_error_lists_every_place(file: CredentialsFile, says: str) -> None:
    with pytest.raises(tally.ConfigurationError) as caught:
        resolve(api_key=None, base_url=None, env={}, file=file)
    message = str(caught.value)
    for part in (
        "argument",
        "env TALLY_API_KEY: not set",
        says,
        "TALLY_API_KEY=",
        "tally auth login",
        "tally serve",
    ):
        assert part in message


def test_client_reads_the_file_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_credentials(ORG, "http://file.test", tmp_path / "config" / "credentials.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_credentials_file(path).state == "ok"
    with Tally() as client:
        assert client.base_url == "http://file.test"
        assert client.credential_source == f"file:{path}"
        assert ORG not in repr(client)
        assert "tk_org_…yz12" in repr(client)
    monkeypatch.setenv("TALLY_API_KEY", "tk_org_fromenv0000000000000")
    with Tally() as client:
        assert client.credential_source == "env:TALLY_API_KEY"
    with Tally("local") as client:
        assert client.credential_source.startswith("file:")
    (tmp_path / "config" / "credentials.json").write_text("{not json")
    assert read_credentials_file(path).state == "unreadable"


def test_no_credentials_anywhere() -> None:
    with pytest.raises(tally.ConfigurationError, match="No Tally API key found"):
        Tally()


def test_redact() -> None:
    assert redact(ORG) == "tk_org_…yz12"
    assert redact("tk_ing_0123456789abcdef") == "tk_ing_…cdef"
    assert redact(None) == "<none>"


# ---- retry policy ------------------------------------------------------------------------------------------
def test_which_requests_and_statuses_retry() -> None:
    assert is_retry_safe("GET", {})
    assert not is_retry_safe("POST", {})
    assert is_retry_safe("POST", {"idempotency-key": "k"})
    for status in (408, 429, 500, 502, 503, 504):
        assert status_is_retryable(status, None)
    for status in (400, 401, 403, 404, 422):
        assert not status_is_retryable(status, None)
    assert status_is_retryable(409, "idempotency_in_progress")
    assert not status_is_retryable(409, "conflict")


def test_retry_after_forms() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=10), usegmt=True), now=now) == 10.0
    assert retry_delay(1, "4") == 4.0
    assert retry_delay(1, "31") is None  # beyond the cap: stop instead of waiting less than asked


@given(st.integers(min_value=1, max_value=50), st.floats(min_value=0, max_value=0.999999))
def test_backoff_is_bounded_with_jitter(retry: int, rand: float) -> None:
    delay = retry_delay(retry, None, rand=rand)
    assert delay is not None
    ceiling = min(BACKOFF_CAP, 0.5 * 2 ** (retry - 1))
    assert 0.75 * ceiling < delay <= ceiling  # default jitter: up to a quarter off


# ---- events ------------------------------------------------------------------------------------------------
def test_event_id_recipe_is_stable() -> None:
    expected = hashlib.sha256(
        json.dumps(["exp_1", "loss", 3, {"a": "1", "b": "2"}], separators=(",", ":"), sort_keys=True).encode()
    ).hexdigest()[:32]
    assert event_id("exp_1", "loss", 3, {"b": "2", "a": "1"}) == expected
    assert event_id("exp_1", "loss", 3) != event_id("exp_1", "loss", 4)
    assert len(event_id("e", "n", None)) == 32


def test_prepare_events_copies_nothing_when_nothing_changes() -> None:
    events = [
        {"name": "m", "value": 1.0, "client_event_id": "a"},
        {"name": "m", "value": 2, "client_event_id": "b"},
    ]
    assert prepare_events("exp", events) is events


def test_prepare_events_fills_ids_without_touching_input() -> None:
    events = [{"name": "m", "value": 1.0, "step": 0}, tally.MetricEvent(name="m", value=2.0, step=1)]
    prepared = prepare_events("exp", events)
    assert prepared is not events
    assert "client_event_id" not in events[0]
    first, second = prepared
    assert isinstance(first, dict)
    assert first["client_event_id"] == event_id("exp", "m", 0)
    assert isinstance(second, tally.MetricEvent)
    assert second.client_event_id == event_id("exp", "m", 1)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None, "1.0", True])
def test_bad_values_are_refused_locally(bad: object) -> None:
    with pytest.raises(ValueError, match=r"events\[1\]\.value"):
        prepare_events(
            "exp", [{"name": "m", "value": 1.0, "step": 0}, {"name": "m", "value": bad, "step": 1}]
        )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "bad name"}, "name"),
        ({"name": "x" * 257}, "name"),
        ({"step": 2**53}, "step"),
        ({"step": -1}, "step"),
        ({"step": True}, "step"),
        ({"step": 1.5}, "step"),
        ({"timestamp": "2016-12-31T23:59:60Z"}, "timestamp"),  # a leap second
        ({"timestamp": "0000-01-01T00:00:00Z"}, "timestamp"),  # year 0
        ({"timestamp": "9999-12-31T23:59:59.9999995Z"}, "timestamp"),  # rounds into year 10000
        ({"timestamp": "2026-01-01T24:00:00Z"}, "timestamp"),
        ({"timestamp": "2026-02-30T00:00:00Z"}, "timestamp"),
        ({"timestamp": "2026-01-01T00:00:00+24:00"}, "timestamp"),
        ({"timestamp": datetime(2026, 1, 1, tzinfo=timezone(timedelta(seconds=30)))}, "timestamp"),
        ({"timestamp": "2026-01-01T00:00:00"}, "timestamp"),  # no offset
        ({"timestamp": "2026-01-01 00:00:00Z"}, "timestamp"),
        ({"timestamp": "2026-01-01T00:00:00Z\n"}, "timestamp"),
        ({"timestamp": datetime(2026, 1, 1)}, "timestamp"),  # naive
        ({"timestamp": 1767225600}, "timestamp"),
        ({"metadata": {"split": "a\x00b"}}, "metadata"),
        ({"metadata": {"1split": "x"}}, "metadata"),
        ({"metadata": {"split": 1}}, "metadata"),
        ({"client_event_id": "has space"}, "client_event_id"),
        ({"client_event_id": "x" * 129}, "client_event_id"),
        ({"client_event_id": "nul\x00"}, "client_event_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_what_the_contract_refuses_is_refused_locally_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    good = {"name": "m", "value": 1.0, "step": 0, "client_event_id": "ok"}
    with pytest.raises(ValueError, match=rf"events\[1\](\.{field}| has the field '{field}')"):
        prepare_events("exp", [good, {**good, **change}])


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-01-01T00:00:00Z",
        "2026-01-01t00:00:00.123456789z",
        "2026-01-01T00:00:00+23:59",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
        "9999-12-31T23:59:59.9999994Z",
        "0001-01-01T00:00:00+05:00",  # (year 0 in UTC: readers keep the offset)
        "9999-12-31T23:00:00-05:00",
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
    ],
)
def test_what_the_contract_takes_passes(stamp: object) -> None:
    event = {
        "name": "a/b:c@d-e.f_g",
        "value": 1,
        "step": 2**53 - 1,
        "timestamp": stamp,
        "client_event_id": "~!",
    }
    prepare_events("exp", [{**event, "metadata": {"_k.e-y": "v" * 256}}, tally.MetricEvent(**event)])


def test_other_numbers_are_converted() -> None:
    from decimal import Decimal

    (event,) = prepare_events("exp", [{"name": "m", "value": Decimal("1.5"), "client_event_id": "x"}])
    assert isinstance(event, dict)
    assert event["value"] == 1.5


def test_not_an_event() -> None:
    with pytest.raises(TypeError, match=r"events\[0\]"):
        prepare_events("exp", [("m", 1.0)])  # type: ignore[list-item]


def test_batches_split_by_count_and_size() -> None:
    events = [
        {"name": "m", "value": 1.0, "client_event_id": f"id-{i}", "metadata": {"k": "v" * 200}}
        for i in range(2500)
    ]
    plan = list(plan_batches(events, max_events=1000, max_bytes=200_000))
    assert plan[0][0] == 0
    assert plan[-1][1] == 2500
    assert all(a[1] == b[0] for a, b in itertools.pairwise(plan))
    for start, end, body in plan:
        assert len(body) <= 200_000
        assert end - start <= 1000
        decoded = json.loads(body)
        assert decoded["events"] == events[start:end]


def test_a_single_huge_event_is_still_sent() -> None:
    events = [{"name": "m", "value": 1.0, "client_event_id": "x" * 100}]
    assert len(list(plan_batches(events, max_bytes=10))) == 1


# ---- pagination --------------------------------------------------------------------------------------------
def walk_all(
    total: int, *, limit: int | None, page_size: int | None
) -> tuple[list[int], list[int | None], PageWalk]:
    walk = PageWalk(limit=limit, page_size=page_size)
    items: list[int] = []
    sizes: list[int | None] = []
    while (request := walk.next_request()) is not None:
        size, cursor = request
        sizes.append(size)
        start = int(cursor or 0)
        end = min(start + (size or 100), total)
        page = walk.accept(Page(data=tuple(range(start, end)), next_cursor=str(end) if end < total else None))
        items.extend(page.data)
    return items, sizes, walk


@given(
    st.integers(0, 350), st.one_of(st.none(), st.integers(0, 400)), st.one_of(st.none(), st.integers(1, 120))
)
def test_page_walk(total: int, limit: int | None, page_size: int | None) -> None:
    items, _sizes, walk = walk_all(total, limit=limit, page_size=page_size)
    wanted = total if limit is None else min(total, limit)
    assert items == list(range(wanted))
    if walk.cursor is not None:  # resuming gives exactly the rest
        assert int(walk.cursor) == len(items)


def test_page_walk_validates() -> None:
    with pytest.raises(ValueError, match="page_size"):
        PageWalk(page_size=1001)
    with pytest.raises(ValueError, match="limit"):
        PageWalk(limit=-1)


# ---- errors ------------------------------------------------------------------------------------------------
def test_error_line_is_readable() -> None:
    request = httpx.Request("POST", "http://h/v1/experiments/exp_1/metrics")
    body = {
        "error": {
            "code": "forbidden",
            "message": "Ingestion needs an ingestion key.",
            "request_id": "req_1",
            "details": {"x": 1},
        }
    }
    error = error_from_response(httpx.Response(403, json=body, request=request))
    assert isinstance(error, tally.PermissionDeniedError)
    assert error.details == {"x": 1}
    assert error.request_id == "req_1"
    assert str(error) == (
        "POST http://h/v1/experiments/exp_1/metrics -> 403 | forbidden: Ingestion needs an ingestion key. | "
        "hint: this key may not do this; ingestion needs an ingestion key, everything else an org key | "
        "request_id=req_1"
    )


def test_empty_and_binary_error_bodies() -> None:
    request = httpx.Request("GET", "http://h/v1/health")
    empty = error_from_response(httpx.Response(500, request=request))
    assert isinstance(empty, tally.InternalServerError)
    assert empty.message
    binary = error_from_response(httpx.Response(503, content=b"\xff\xfe\x00", request=request))
    assert binary.status_code == 503


# ---- redaction, logging, with_options ----------------------------------------------------------------------
def test_logs_never_show_tokens(caplog: pytest.LogCaptureFixture) -> None:
    record = logging.LogRecord("tally", logging.INFO, __file__, 1, "token %s", (ORG,), None)
    RedactingFilter().filter(record)
    assert ORG not in record.getMessage()
    assert "tk_org_…yz12" in record.getMessage()

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={"status": "ok", "version": "1", "time": "2026-01-01T00:00:00Z"},
            headers={"X-Request-Id": "req_log"},
        )

    with (
        caplog.at_level(logging.DEBUG, logger="tally"),
        Tally(api_key=ORG, base_url="http://h", transport=httpx.MockTransport(answer)) as client,
    ):
        client.health()
    line = caplog.records[-1].getMessage()
    assert "GET http://h/v1/health -> 200" in line
    assert "request_id=req_log" in line
    assert "attempt=1" in line
    assert ORG not in caplog.text


def test_tally_log_env_switches_on_a_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    from tally import _logging

    monkeypatch.setenv("TALLY_LOG", "debug")
    monkeypatch.setattr(_logging, "_configured", [])
    logger = logging.getLogger("tally")
    before = list(logger.handlers)
    try:
        Tally(api_key=ORG, base_url="http://h").close()
        assert logger.level == logging.DEBUG
        assert len(logger.handlers) == len(before) + 1
    finally:
        for handler in logger.handlers[len(before) :]:
            logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


def test_with_options_shares_the_pool_and_does_not_grow() -> None:
    with Tally(api_key=ORG, base_url="http://h") as client:
        copy = client.with_options(timeout=1.0)
        assert copy._core.state is client._core.state
        assert copy.timeout == 1.0
        assert client.timeout == 10.0
        for _ in range(2000):
            client.with_options(max_retries=1)
        gc.collect()
        before = len(gc.get_objects())
        for _ in range(5000):
            client.with_options(timeout=5.0, max_retries=1)
        after = len(gc.get_objects())
        assert after - before < 200


def test_struct_to_dict_and_immutability() -> None:
    point = msgspec.json.decode(
        b'{"name":"m","value":1,"step":null,"timestamp":"2026-01-01T00:00:00Z","metadata":{},"client_event_id":"x"}',
        type=tally.MetricPoint,
    )
    assert point.to_dict()["timestamp"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert point.value == 1.0
    assert isinstance(point.value, float)
    with pytest.raises(AttributeError):
        point.value = 2.0  # type: ignore[misc]
