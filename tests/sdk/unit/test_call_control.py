"""The pure parts of call control, without HTTP: retry policy and server hints, deadline arithmetic, option
merging, rate pacing (against a simulated token bucket), request ids, platform headers, pickling errors."""

from __future__ import annotations

import gc
import json
import pickle
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tally
from tally._errors import error_from_response
from tally._headers import header
from tally._options import POLICY_EXTENSION, Settings, check_idempotency_key
from tally._pacing import PROBING, RatePacer, read_rate_headers
from tally._platform import VERSION, platform_headers
from tally._request_ids import remember, request_id
from tally._retry_policy import (
    DEFAULT_MAX_ELAPSED,
    DEFAULT_MAX_RETRIES,
    RETRY_AFTER_CAP,
    RetryPolicy,
    next_delay,
    parse_retry_after_ms,
)
from tally._types import Experiment

POLICY = RetryPolicy()


def delay(policy: RetryPolicy = POLICY, **kwargs: object) -> float | None:
    arguments: dict[str, object] = {
        "retries_done": 0,
        "safe": True,
        "now": 100.0,
        "deadline": None,
        "rand": 0.0,
    }
    arguments.update(kwargs)
    return next_delay(policy, **arguments)  # type: ignore[arg-type]


# ---- retry policy ----------------------------------------------------------------------------------------------
def test_policy_rejects_bad_values_naming_each_field() -> None:
    with pytest.raises(ValueError, match="max_retries") as caught:
        RetryPolicy(max_retries=-1, jitter=2.0, max_elapsed=0)
    assert "jitter" in str(caught.value)
    assert "max_elapsed" in str(caught.value)
    with pytest.raises(ValueError, match="max_interval"):
        RetryPolicy(initial_interval=5.0, max_interval=1.0)


def test_backoff_grows_by_the_exponent_up_to_the_cap() -> None:
    policy = RetryPolicy(initial_interval=1.0, max_interval=10.0, exponent=3.0, jitter=0.0)
    assert [policy.backoff(n, rand=0.5) for n in (1, 2, 3, 4)] == [1.0, 3.0, 9.0, 10.0]
    jittered = RetryPolicy(initial_interval=1.0, jitter=0.5)
    assert jittered.backoff(1, rand=0.0) == 1.0
    assert jittered.backoff(1, rand=0.999) == pytest.approx(0.5005)


def test_defaults_ride_out_a_restart_and_bound_a_hung_server() -> None:
    """The documented defaults: the waits of all retries together outlast a restart of about ten seconds, and the
    deadline caps a call whose every attempt hangs."""
    waits_least = sum(POLICY.backoff(n, rand=0.999999) for n in range(1, DEFAULT_MAX_RETRIES + 1))
    waits_most = sum(POLICY.backoff(n, rand=0.0) for n in range(1, DEFAULT_MAX_RETRIES + 1))
    assert 11.0 < waits_least <= waits_most <= 15.5
    assert DEFAULT_MAX_ELAPSED == 30.0
    assert waits_most < DEFAULT_MAX_ELAPSED


def test_statuses_and_errors_retried() -> None:
    assert delay(status=503) == 0.5
    assert delay(status=429) == 0.5
    assert delay(status=408) == 0.5
    assert delay(status=409, error_code="idempotency_in_progress") == 0.5
    assert delay(status=409, error_code="conflict") is None
    assert delay(status=404) is None
    assert delay(status=None) == 0.5  # a connection failure or timeout
    assert delay(RetryPolicy(retry_connection_errors=False), status=None) is None
    assert delay(RetryPolicy(retry_statuses=frozenset({503})), status=500) is None
    assert delay(status=503, retries_done=DEFAULT_MAX_RETRIES) is None


def test_unsafe_requests_retry_only_when_nothing_was_sent() -> None:
    assert delay(safe=False, status=503) is None
    assert delay(safe=False, status=None) is None  # a timeout: the server may have acted
    assert delay(safe=False, status=None, connect_failed=True) == 0.5


def test_x_should_retry_overrides_the_status_rule() -> None:
    assert delay(status=503, headers=httpx.Headers({"x-should-retry": "false"})) is None
    assert delay(status=400, headers=httpx.Headers({"x-should-retry": "true"})) == 0.5
    assert delay(status=400, headers=httpx.Headers({"x-should-retry": "true"}), safe=False) is None
    assert delay(status=400, headers=httpx.Headers({"x-should-retry": "true"}), retries_done=5) is None


def test_server_waits_retry_after_ms_then_seconds_then_date() -> None:
    assert delay(status=429, headers=httpx.Headers({"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    assert delay(status=429, headers=httpx.Headers({"retry-after": "2"})) == 2.0
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    waited = delay(status=503, headers=httpx.Headers({"retry-after": soon}))
    assert waited is not None
    assert 3.0 < waited <= 5.0
    assert delay(status=429, headers=httpx.Headers({"retry-after": str(RETRY_AFTER_CAP + 1)})) is None
    assert delay(status=429, headers=httpx.Headers({"retry-after-ms": "nonsense"})) == 0.5
    assert parse_retry_after_ms("1500") == 1.5
    assert parse_retry_after_ms("-4") == 0.0
    assert parse_retry_after_ms(None) is None


def test_a_wait_that_would_end_after_the_deadline_stops() -> None:
    assert delay(status=503, now=100.0, deadline=100.6) == 0.5
    assert delay(status=503, now=100.0, deadline=100.4) is None
    assert delay(status=429, headers=httpx.Headers({"retry-after": "3"}), now=0.0, deadline=2.0) is None


# ---- options ---------------------------------------------------------------------------------------------------
def settings_() -> Settings:
    return Settings.build(timeout=10.0, ingest_timeout=20.0, max_retries=None, retry=None)


def test_a_call_without_options_reuses_precomputed_extras() -> None:
    base = settings_()
    assert base.call({}) is base.call({})
    assert base.call({}).extensions["timeout"]["read"] == 10.0
    assert base.call({}, ingest=True).extensions["timeout"]["read"] == 20.0
    assert base.call({}).extensions[POLICY_EXTENSION] is base.retry


def test_per_call_beats_with_options_beats_constructor() -> None:
    client_level = settings_().replace(
        {
            "timeout": 5.0,
            "max_retries": 1,
            "extra_headers": {"A": "client", "B": "client"},
            "extra_query": {"q": 1},
        }
    )
    assert client_level.max_retries == 1
    extras = client_level.call({"timeout": 2.0, "extra_headers": {"B": "call"}, "max_retries": 0})
    assert extras.extensions["timeout"]["read"] == 2.0
    assert extras.extensions[POLICY_EXTENSION].max_retries == 0
    assert extras.extra_headers == {"A": "client", "B": "call"}
    assert extras.extra_query == {"q": 1}
    custom = RetryPolicy(max_elapsed=3.0, max_retries=7)
    shortened = client_level.call({"retry": custom, "max_retries": 2}).extensions[POLICY_EXTENSION]
    assert (shortened.max_elapsed, shortened.max_retries) == (3.0, 2)


def test_unknown_and_bad_options_are_named() -> None:
    with pytest.raises(TypeError, match="timout") as caught:
        settings_().call({"timout": 1.0})
    assert "timeout" in str(caught.value)  # the list of valid options
    with pytest.raises(TypeError, match="with_options"):
        settings_().replace({"idempotency_key": "k"})
    with pytest.raises(ValueError, match="max_retries"):
        settings_().call({"max_retries": -1})
    with pytest.raises(TypeError, match="RetryPolicy"):
        settings_().call({"retry": 3})
    with pytest.raises(ValueError, match="idempotency_key"):
        settings_().call({"idempotency_key": "has space"})
    with pytest.raises(ValueError, match="idempotency_key"):
        check_idempotency_key("x" * 256)
    assert check_idempotency_key("run-1:step-2") == "run-1:step-2"


# ---- rate pacing -----------------------------------------------------------------------------------------------
class SimulatedServer:
    """The reference server's token bucket (`tally_server.ratelimit`), on a simulated clock."""

    def __init__(self, rate: float) -> None:
        from tally_server.ratelimit import RateLimiter

        self.limiter = RateLimiter(rate)
        self.refused = 0

    def answer(self, now: float, monkeypatch: pytest.MonkeyPatch) -> httpx.Headers:
        import tally_server.ratelimit as module
        from tally_server.errors import ApiError

        monkeypatch.setattr(module.time, "monotonic", lambda: now)
        try:
            return httpx.Headers(self.limiter.acquire("key"))
        except ApiError as refused:
            self.refused += 1
            return httpx.Headers(refused.headers)


@settings(max_examples=25, deadline=None)
@given(
    rate=st.sampled_from([1.0, 2.0, 5.0, 10.0, 50.0]),
    calls=st.integers(min_value=1, max_value=60),
    latency=st.floats(min_value=0.0, max_value=0.2),
    in_flight=st.integers(min_value=1, max_value=6),
)
def test_pacing_never_meets_a_429_and_keeps_the_rate(
    rate: float, calls: int, latency: float, in_flight: int
) -> None:
    """`in_flight` callers share one pacer (threads or tasks): each reserves, waits, sends; answers arrive after
    `latency`. However they interleave, the simulated server refuses nothing, and the run takes about
    (calls - burst) / rate."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        server = SimulatedServer(rate)
        pacer = RatePacer()
        clock = 0.0
        pending: list[tuple[float, httpx.Headers]] = []  # (arrival, headers)
        sent = 0
        while sent < calls or pending:
            pending.sort(key=lambda item: item[0])
            if sent < calls and len(pending) < in_flight:
                wait = pacer.reserve("key", clock)
                if wait == PROBING:  # wait for the probe's answer
                    arrival, headers = pending.pop(0)
                    clock = max(clock, arrival)
                    pacer.observe("key", read_rate_headers(headers), clock)
                    continue
                clock += wait
                pending.append((clock + latency, server.answer(clock, monkeypatch)))
                sent += 1
            else:
                arrival, headers = pending.pop(0)
                clock = max(clock, arrival)
                pacer.observe("key", read_rate_headers(headers), clock)
        assert server.refused == 0
        burst = max(1.0, rate)
        assert clock >= (calls - burst) / rate - 1e-9
        assert clock <= (calls - burst) / rate * 1.02 + calls * (latency + 0.002) + 1.0


def test_a_server_without_rate_headers_turns_pacing_off() -> None:
    pacer = RatePacer()
    assert pacer.reserve("k", 0.0) == 0.0  # the probe
    assert pacer.reserve("k", 0.0) == PROBING
    pacer.observe("k", None, 0.1)
    assert pacer.unlimited("k")
    assert pacer.reserve("k", 0.2) == 0.0


def test_a_probe_without_answer_lets_the_next_request_probe() -> None:
    pacer = RatePacer()
    assert pacer.reserve("k", 0.0) == 0.0
    pacer.forget_probe("k")
    assert pacer.reserve("k", 0.0) == 0.0


def test_rate_headers_parse_including_an_epoch_reset() -> None:
    state = read_rate_headers(
        httpx.Headers({"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "2"})
    )
    assert state is not None
    assert (state.limit, state.remaining, state.reset) == (10.0, 3.0, 2.0)
    epoch = httpx.Headers(
        {"x-ratelimit-limit": "10", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "2000000005"}
    )
    parsed = read_rate_headers(epoch, wall_now=2_000_000_000.0)
    assert parsed is not None
    assert parsed.reset == 5.0
    assert read_rate_headers(httpx.Headers({"x-ratelimit-limit": "many"})) is None
    assert read_rate_headers(httpx.Headers({})) is None


def test_header_reader_agrees_with_httpx() -> None:
    headers = httpx.Headers([("X-Request-Id", "req_1"), ("x-request-id", "second"), ("Content-Type", "a/b")])
    assert header(headers, b"x-request-id") == "req_1"
    assert header(headers, b"content-type") == headers.get("content-type")
    assert header(headers, b"absent") is None


# ---- request ids -----------------------------------------------------------------------------------------------
def experiment(name: str = "e") -> Experiment:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Experiment(
        id="exp_1",
        name=name,
        folder_id=None,
        description=None,
        metadata={},
        status="running",
        created_at=now,
        updated_at=now,
        ended_at=None,
    )


def test_request_ids_belong_to_objects_not_to_values() -> None:
    first, second = experiment(), experiment()
    assert first == second
    remember(first, "req_1")
    remember(second, "req_2")
    assert (tally.request_id(first), first._request_id) == ("req_1", "req_1")
    assert request_id(second) == "req_2"
    assert request_id(experiment()) is None
    assert request_id(object()) is None
    remember((1, 2), "ignored")  # not weak-referenceable: silently nothing
    assert request_id((1, 2)) is None


def test_request_id_entries_die_with_their_objects() -> None:
    from tally_api_types.request_ids import _REQUEST_IDS as _TABLE

    gc.collect()  # objects of earlier tests that only a cycle kept alive go first, so `before` is what stays
    before = len(_TABLE)
    for index in range(100):
        remember(experiment(str(index)), f"req_{index}")
    gc.collect()
    assert len(_TABLE) == before


# ---- platform headers ------------------------------------------------------------------------------------------
def test_platform_header_says_what_runs_and_nothing_secret() -> None:
    sync_facts = json.loads(platform_headers(None)["X-Tally-Client-User-Agent"])
    async_facts = json.loads(platform_headers("asyncio")["X-Tally-Client-User-Agent"])
    assert set(sync_facts) == {
        "lang",
        "package_version",
        "os",
        "arch",
        "runtime",
        "runtime_version",
        "async_library",
    }
    assert sync_facts["package_version"] == VERSION == tally.__version__
    assert sync_facts["lang"] == "python"
    assert sync_facts["runtime"] in ("CPython", "PyPy")
    assert (sync_facts["async_library"], async_facts["async_library"]) == ("false", "asyncio")
    assert "tk_" not in json.dumps(sync_facts)


# ---- pickling errors -------------------------------------------------------------------------------------------
def status_error(status: int, code: str) -> tally.APIStatusError:
    request = httpx.Request("POST", "http://tally.test/v1/experiments", headers={"X-Tally-Retry-Count": "2"})
    body = {"error": {"code": code, "message": "m", "request_id": "req_9", "details": {"field": "name"}}}
    response = httpx.Response(
        status, json=body, headers={"Retry-After": "2", "X-Request-Id": "req_9"}, request=request
    )
    return error_from_response(response)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 429, 500, 503, 418])
def test_status_errors_pickle_with_their_fields(status: int) -> None:
    error = status_error(status, "some_code")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(copy) is type(error)
    for field in ("status_code", "code", "message", "request_id", "method", "url", "details", "attempts"):
        assert getattr(copy, field) == getattr(error, field), field
    assert copy.attempts == 3
    assert str(copy) == str(error)
    assert copy.retry_after == 2.0
    assert copy.response is not None
    assert copy.response.status_code == status


def test_other_errors_pickle_with_their_fields() -> None:
    errors: list[tally.TallyError] = [
        tally.ConfigurationError("no key"),
        tally.APIConnectionError("refused", method="GET", url="http://x/v1/health", attempts=6),
        tally.APITimeoutError("slow", method="GET", url="http://x/v1/health"),
        tally.ResponseValidationError("bad", status_code=200, request_id="r", method="GET", url="http://x"),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
        assert type(copy) is type(error)
        assert copy.__dict__ == error.__dict__
        assert str(copy) == str(error)
