"""exportMetrics against a live server, on both backends: every point exactly once in listMetrics' order (across
the server's 5,000-row chunks), the CSV form round-trips, `Accept` chooses the form (406 otherwise), the errors of
any read (404, 401, 400), and the answer really streams (chunked, gzip included).

Memory is left to `make bench` (`export`): it measures the server's and the client's peak RSS growth while a
1,000,000-point experiment is exported, where a test would have to guess at a bound."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tally_server import RunningServer

from .helpers import assert_error, event

NewExperiment = Callable[..., dict[str, Any]]
IngestClient = Callable[[str], httpx.Client]

NDJSON = "application/x-ndjson"
# More points than one server chunk (5,000: two chunks), some without a step, with metadata, over three names.
POINTS = 7_000
_made: dict[str, str] = {}


def _events() -> list[dict[str, Any]]:
    events = []
    for i in range(POINTS):
        name = ("train/loss", "val/acc", "lr")[i % 3]
        step = None if i % 997 == 0 else (i // 3) % 4500
        meta = {"split": "train" if i % 2 else "val", "note": 'comma, "quote"' if i % 5 == 0 else "x"}
        events.append(event(f"e{i}", name=name, value=i / 7, step=step, metadata=meta))
    return events


@pytest.fixture
def experiment(live_server: RunningServer, new_experiment: NewExperiment, ingest_client: IngestClient) -> str:
    """One experiment of `POINTS` points per live server (ingested once: the tests here only read it)."""
    if live_server.url not in _made:
        experiment_id = new_experiment()["id"]
        ingest = ingest_client(experiment_id)
        events = _events()
        for start in range(0, len(events), 10_000):
            response = ingest.post(
                f"/v1/experiments/{experiment_id}/metrics", json={"events": events[start : start + 10_000]}
            )
            assert response.status_code == 200, response.text
        _made[live_server.url] = experiment_id
    return _made[live_server.url]


def _listed(client: httpx.Client, experiment_id: str, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "page_size": 1000, **({"cursor": cursor} if cursor else {})}
        response = client.get(f"/v1/experiments/{experiment_id}/metrics", params=query)
        assert response.status_code == 200, response.text
        found += response.json()["data"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return found


def _export(
    client: httpx.Client, experiment_id: str, accept: str | None = None, **params: Any
) -> httpx.Response:
    headers = {} if accept is None else {"Accept": accept}
    return client.get(f"/v1/experiments/{experiment_id}/metrics/export", params=params, headers=headers)


def test_ndjson_has_every_point_once_in_list_order(client: httpx.Client, experiment: str) -> None:
    response = _export(client, experiment)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(NDJSON)
    exported = [json.loads(line) for line in response.content.splitlines()]
    assert len(exported) == POINTS
    assert exported == _listed(client, experiment)


def test_filters_match_list_metrics(client: httpx.Client, experiment: str) -> None:
    params = {
        "name": "val/acc",
        "min_step": 10,
        "max_step": 2000,
        "metadata_key": "split",
        "metadata_value": "val",
    }
    exported = [json.loads(line) for line in _export(client, experiment, **params).content.splitlines()]
    listed = _listed(client, experiment, **params)
    assert exported == listed
    assert 0 < len(listed) < POINTS


def test_csv_round_trips(client: httpx.Client, experiment: str) -> None:
    response = _export(client, experiment, "text/csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text, newline="")))
    assert rows[0] == ["name", "value", "step", "timestamp", "metadata", "client_event_id"]
    parsed = [
        {
            "name": name,
            "value": float(value),
            "step": int(step) if step else None,
            "timestamp": timestamp,
            "metadata": json.loads(metadata),
            "client_event_id": cid,
        }
        for name, value, step, timestamp, metadata, cid in rows[1:]
    ]
    assert parsed == _listed(client, experiment)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, NDJSON),
        ("*/*", NDJSON),
        ("application/*", NDJSON),
        ("text/*", "text/csv"),
        ("text/csv", "text/csv"),
        ("application/json;q=0.9, text/csv;q=0.5, application/x-ndjson;q=0.8", NDJSON),
        ("application/x-ndjson;q=0, */*", "text/csv"),
    ],
)
def test_accept_chooses_the_form(
    client: httpx.Client, new_experiment: NewExperiment, accept: str | None, expected: str
) -> None:
    response = _export(client, new_experiment()["id"], accept)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == expected


@pytest.mark.parametrize("accept", ["application/json", "text/html, application/xml", "text/csv;q=0"])
def test_unoffered_accept_is_406_naming_both(
    client: httpx.Client, new_experiment: NewExperiment, accept: str
) -> None:
    error = assert_error(_export(client, new_experiment()["id"], accept), 406, "not_acceptable")
    assert error["details"]["offered"] == [NDJSON, "text/csv"]
    assert NDJSON in error["message"]
    assert "text/csv" in error["message"]


def test_errors_of_a_read(client: httpx.Client, anon: httpx.Client, new_experiment: NewExperiment) -> None:
    assert_error(_export(client, "exp_01JD0000000000000000000000"), 404, "not_found")
    assert_error(_export(anon, new_experiment()["id"]), 401, "unauthenticated")
    error = assert_error(_export(client, new_experiment()["id"], metadata_value="x"), 400, "invalid_request")
    assert "metadata_value" in json.dumps(error["details"])


def test_an_empty_experiment_exports_nothing_or_the_header(
    client: httpx.Client, new_experiment: NewExperiment
) -> None:
    experiment_id = new_experiment()["id"]
    assert _export(client, experiment_id).content == b""
    assert (
        _export(client, experiment_id, "text/csv").text
        == "name,value,step,timestamp,metadata,client_event_id\r\n"
    )


def test_the_answer_streams_even_gzipped(client: httpx.Client, experiment: str) -> None:
    """Chunked, no Content-Length: the server did not build the body first (GZip compresses chunk by chunk)."""
    with client.stream(
        "GET", f"/v1/experiments/{experiment}/metrics/export", headers={"Accept-Encoding": "gzip"}
    ) as response:
        assert response.status_code == 200
        assert response.headers.get("content-encoding") == "gzip"
        assert "content-length" not in response.headers
        assert response.headers.get("transfer-encoding") == "chunked"
        assert sum(chunk.count(b"\n") for chunk in response.iter_bytes()) == POINTS


def test_a_streamed_answer_has_no_etag(client: httpx.Client, experiment: str) -> None:
    """The contract's one exception to "every GET has an ETag": the tag hashes the body, which a stream does not
    know before it has been sent; If-None-Match is ignored (never a 304)."""
    first = _export(client, experiment)
    assert "etag" not in first.headers
    again = client.get(f"/v1/experiments/{experiment}/metrics/export", headers={"If-None-Match": "*"})
    assert again.status_code == 200
    assert again.content == first.content
