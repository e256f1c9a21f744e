"""Conditional GETs (issue 19, the on-disk cache): every GET answer carries an `ETag`, `If-None-Match` naming it
is answered 304 without a body, and any change to what the answer holds changes the tag. Both backends."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import httpx

from tally_server._spec import load_spec

from .helpers import assert_error, event


def _conditional(client: httpx.Client, url: str, etag: str, **headers: str) -> httpx.Response:
    return client.get(url, headers={"If-None-Match": etag, **headers})


def test_every_get_has_an_etag_and_a_matching_if_none_match_is_a_304_without_body(
    client: httpx.Client,
    new_experiment: Callable[..., dict[str, Any]],
    ingest_client: Callable[[str], httpx.Client],
) -> None:
    folder = client.post("/v1/folders", json={"name": "etags"}).json()
    experiment = new_experiment(folder_id=folder["id"])
    eid = experiment["id"]
    key = client.post(f"/v1/experiments/{eid}/ingestion-keys", json={"name": "etags"}).json()
    note = ingest_client(eid).post(
        f"/v1/experiments/{eid}/annotations", json={"text": "etags", "client_event_id": "etags-note"}
    )
    assert note.status_code == 201, note.text
    sent = ingest_client(eid).post(
        f"/v1/experiments/{eid}/metrics?sync=true", json={"events": [event("a"), event("b", step=1)]}
    )
    assert sent.status_code in (200, 202), sent.text
    data = b"etags"
    artifact = client.post(
        f"/v1/experiments/{eid}/artifacts",
        params={"name": "etags.bin", "sha256": hashlib.sha256(data).hexdigest()},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert artifact.status_code == 201, artifact.text
    urls = [
        "/v1/health",
        "/v1/auth/status",
        "/v1/folders",
        f"/v1/folders/{experiment['folder_id']}",
        "/v1/experiments",
        f"/v1/experiments/{eid}",
        f"/v1/experiments/{eid}/metrics",
        f"/v1/experiments/{eid}/summary",
        f"/v1/experiments/{eid}/metrics/series?name=train/loss",
        "/v1/metric-catalog",
        "/v1/metric-catalog/values?metric_name=train/loss&metadata_key=split",
        f"/v1/experiments/{eid}/ingestion-keys",
        f"/v1/experiments/{eid}/annotations",
        f"/v1/ingestion-keys/{key['id']}",
        f"/v1/experiments/{eid}/annotations/{note.json()['id']}",
        f"/v1/experiments/{eid}/artifacts",
        f"/v1/experiments/{eid}/artifacts/{artifact.json()['id']}",
    ]
    # one URL per GET of the contract, but for streamed answers (no ETag: test_export.py)
    gets = {
        op.operation_id
        for op in load_spec().by_id().values()
        if op.method == "GET" and "application/json" in op.produces
    }
    assert len(urls) == len(gets), "one URL per GET of the contract: add the new one"
    for url in urls:
        first = client.get(url)
        assert first.status_code == 200, (url, first.text)
        etag = first.headers["ETag"]
        assert re.fullmatch(r'"[0-9a-f]{32}"', etag), (url, etag)
        if url != "/v1/health":  # the only answer that holds the time
            assert client.get(url).headers["ETag"] == etag, url
            not_modified = _conditional(client, url, etag)
            assert not_modified.status_code == 304, (url, not_modified.text)
            assert not_modified.content == b""
            assert not_modified.headers["ETag"] == etag
            assert not_modified.headers["X-Request-Id"].startswith("req_")
            assert "content-type" not in not_modified.headers
        stale = _conditional(client, url, '"00000000000000000000000000000000"')
        assert stale.status_code == 200, url
        assert stale.content, url


def test_if_none_match_compares_weakly_takes_lists_and_star(
    client: httpx.Client, new_experiment: Callable[..., dict[str, Any]]
) -> None:
    url = f"/v1/experiments/{new_experiment()['id']}"
    etag = client.get(url).headers["ETag"]
    for header in (f"W/{etag}", f'"nope", {etag}', "*", f'"x",W/{etag}'):
        assert _conditional(client, url, header).status_code == 304, header
    assert _conditional(client, url, etag.strip('"')).status_code == 200  # unquoted: not the tag


def test_a_change_changes_the_etag(
    client: httpx.Client,
    new_experiment: Callable[..., dict[str, Any]],
    ingest_client: Callable[[str], httpx.Client],
) -> None:
    eid = new_experiment()["id"]
    points = f"/v1/experiments/{eid}/metrics"
    ingest = ingest_client(eid)
    assert ingest.post(points + "?sync=true", json={"events": [event("a")]}).status_code == 200
    before = client.get(points).headers["ETag"]
    status_before = client.get(f"/v1/experiments/{eid}").headers["ETag"]
    assert ingest.post(points + "?sync=true", json={"events": [event("b", step=1)]}).status_code == 200
    changed = _conditional(client, points, before)
    assert changed.status_code == 200
    assert len(changed.json()["data"]) == 2
    assert changed.headers["ETag"] != before
    assert client.post(f"/v1/experiments/{eid}/status", json={"status": "completed"}).status_code == 200
    assert _conditional(client, f"/v1/experiments/{eid}", status_before).status_code == 200


def test_gzip_and_304_a_large_answer_is_gzipped_with_its_etag_and_its_304_has_no_body(
    client: httpx.Client,
    new_experiment: Callable[..., dict[str, Any]],
    ingest_client: Callable[[str], httpx.Client],
) -> None:
    eid = new_experiment()["id"]
    events = [event(f"e{i}", step=i, value=i / 7) for i in range(200)]
    url = f"/v1/experiments/{eid}/metrics?page_size=1000"
    assert (
        ingest_client(eid)
        .post(f"/v1/experiments/{eid}/metrics?sync=true", json={"events": events})
        .status_code
        == 200
    )
    gzip = {"Accept-Encoding": "gzip"}
    full = client.get(url, headers=gzip)
    assert full.headers["Content-Encoding"] == "gzip"
    etag = full.headers["ETag"]
    assert etag == client.get(url, headers={"Accept-Encoding": "identity"}).headers["ETag"]
    with client.stream("GET", url, headers={**gzip, "If-None-Match": etag}) as raw:
        assert raw.status_code == 304
        assert raw.read() == b""
        assert "content-encoding" not in raw.headers
        assert raw.headers.get("content-length") in (None, "0")
        assert raw.headers["ETag"] == etag


def test_errors_and_writes_carry_no_etag(client: httpx.Client) -> None:
    missing = client.get("/v1/experiments/exp_01JD0000000000000000000000", headers={"If-None-Match": "*"})
    assert_error(missing, 404, "not_found")
    assert "etag" not in missing.headers
    created = client.post("/v1/folders", json={"name": "etag-none"}, headers={"If-None-Match": "*"})
    assert created.status_code == 201
    assert "etag" not in created.headers
