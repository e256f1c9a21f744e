"""`client.cache` against the live server (issue 19, the on-disk cache), with both clients: what is served from
the cache, what is revalidated (the server's 304s, seen in the answers), that a changed experiment is never
served stale, the size cap, and a corrupt or foreign-version file."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tally import AsyncTally, Tally
from tally._cache_file import FORMAT
from tally_server import RunningServer

from ..conftest import AnyClient, call, collect, unique

Seen = list[tuple[int, str]]  # (status, path) of every answer the server sent


@pytest.fixture(params=["sync", "async"])
async def cached(
    request: pytest.FixtureRequest, live_server: RunningServer, tmp_path: Path
) -> AsyncIterator[tuple[AnyClient, Seen]]:
    """A client with its cache on in a temporary file, and the answers it received."""
    seen: Seen = []
    async with _client(request.param, live_server, seen) as client:
        client.cache.enable(path=tmp_path / "cache.sqlite3")
        yield client, seen


class _client:
    """`async with _client("sync" | "async", server, seen)`: a client whose answers are appended to `seen`."""

    def __init__(self, kind: str, server: RunningServer, seen: Seen, api_key: str | None = None) -> None:
        key = api_key or server.api_key
        if kind == "sync":

            def record(response: httpx.Response) -> None:
                seen.append((response.status_code, response.request.url.path))

            self.client: AnyClient = Tally(
                api_key=key, base_url=server.url, event_hooks={"response": [record]}
            )
        else:

            async def record_async(response: httpx.Response) -> None:
                seen.append((response.status_code, response.request.url.path))

            self.client = AsyncTally(
                api_key=key, base_url=server.url, event_hooks={"response": [record_async]}
            )

    async def __aenter__(self) -> AnyClient:
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await call(self.client.close())


async def _experiment(client: AnyClient, points: int, *, complete: bool) -> str:
    experiment = await call(client.experiments.create(unique("cache")))
    events = [{"name": "loss", "value": 1 / (1 + s), "step": s} for s in range(points)]
    await call(client.metrics.ingest(experiment.id, events))
    if complete:
        await call(client.experiments.update_status(experiment.id, "completed"))
    return str(experiment.id)


async def _reads(client: AnyClient, eid: str) -> tuple[list[Any], Any, Any]:
    points = await collect(client.metrics.list(eid, page_size=10))
    series = await call(client.metrics.series(eid, "loss", max_points=10))
    summary = await call(client.experiments.summary(eid))
    return points, series, summary


def _data_requests(seen: Seen, eid: str) -> list[tuple[int, str]]:
    """The answers to reads of the experiment's data (not the experiment itself)."""
    return [(status, path) for status, path in seen if path.startswith(f"/v1/experiments/{eid}/")]


async def test_reads_of_a_terminal_experiment_are_served_from_the_cache_without_a_data_request(
    cached: tuple[AnyClient, Seen],
) -> None:
    client, seen = cached
    eid = await _experiment(client, 25, complete=True)
    seen.clear()
    first = await _reads(client, eid)
    assert [s for s, _ in _data_requests(seen, eid)] == [200] * 5  # 3 pages, a series, a summary
    stats = client.cache.stats()
    # The walk, the series and the summary each check the experiment first (the walk's later pages reuse its
    # first page's check): fetched once (a miss), then 304s (hits, revalidated).
    assert (stats.hits, stats.revalidated, stats.misses) == (2, 2, 6)
    assert stats.entries == 6
    seen.clear()
    second = await _reads(client, eid)
    assert second == first
    assert _data_requests(seen, eid) == []  # served from the cache
    assert seen == [(304, f"/v1/experiments/{eid}")] * 3  # only the three checks of the experiment
    stats = client.cache.stats()
    assert stats.hits == 2 + 3 + 5  # the three checks (304s) and the five reads
    assert stats.revalidated == 2 + 3
    assert stats.misses == 6


async def test_a_running_experiment_is_revalidated_and_a_change_is_never_served_stale(
    cached: tuple[AnyClient, Seen],
) -> None:
    client, seen = cached
    eid = await _experiment(client, 5, complete=False)
    first = await collect(client.metrics.list(eid))
    seen.clear()
    assert await collect(client.metrics.list(eid)) == first
    assert _data_requests(seen, eid) == [(304, f"/v1/experiments/{eid}/metrics")]
    # A walk of three pages: one check of the experiment, then each page revalidated (304), none re-checked.
    await collect(client.metrics.list(eid, page_size=2))
    seen.clear()
    assert len(await collect(client.metrics.list(eid, page_size=2))) == 5
    assert seen == [(304, f"/v1/experiments/{eid}")] + [(304, f"/v1/experiments/{eid}/metrics")] * 3
    await call(client.metrics.ingest(eid, [{"name": "loss", "value": 9.0, "step": 99}]))
    seen.clear()
    changed = await collect(client.metrics.list(eid))
    assert len(changed) == 6
    assert _data_requests(seen, eid) == [(200, f"/v1/experiments/{eid}/metrics")]
    # Completed now: the next read is checked once more (stored under no guard), then served.
    await call(client.experiments.update_status(eid, "completed"))
    assert await collect(client.metrics.list(eid)) == changed
    seen.clear()
    assert await collect(client.metrics.list(eid)) == changed
    assert _data_requests(seen, eid) == []


async def test_a_reopened_experiment_is_never_served_stale(cached: tuple[AnyClient, Seen]) -> None:
    """Issue 21's reopen (terminal -> running), new points and a second completion: the cache must notice and
    read the new points, series and summary."""
    client, _ = cached
    eid = await _experiment(client, 5, complete=True)
    before = await _reads(client, eid)
    assert len(before[0]) == 5
    await call(client.experiments.update_status(eid, "running", reopen=True))
    await call(client.metrics.ingest(eid, [{"name": "loss", "value": 7.0, "step": 50}]))
    await call(client.experiments.update_status(eid, "completed"))
    after = await _reads(client, eid)
    assert len(after[0]) == 6
    assert after[1].total_points == 6
    assert after[2] != before[2]


async def test_another_key_never_reads_the_entries_and_the_file_holds_no_key(
    live_server: RunningServer, tmp_path: Path
) -> None:
    path = tmp_path / "shared.sqlite3"
    with Tally(api_key=live_server.api_key, base_url=live_server.url) as owner:
        owner.cache.enable(path=path)
        eid = await _experiment(owner, 3, complete=True)
        assert len(list(owner.metrics.list(eid))) == 3
    assert live_server.api_key.encode() not in path.read_bytes()
    from tally import AuthenticationError

    with Tally(api_key="tk_org_" + "x" * 32, base_url=live_server.url) as stranger:
        stranger.cache.enable(path=path)
        with pytest.raises(AuthenticationError):
            list(stranger.metrics.list(eid))
        assert stranger.cache.stats().hits == 0


async def test_the_size_cap_evicts_the_least_recently_used(
    cached: tuple[AnyClient, Seen], tmp_path: Path
) -> None:
    client, seen = cached
    eid = await _experiment(client, 60, complete=True)
    await collect(client.metrics.list(eid, page_size=10))
    page = client.cache.stats().bytes // 7  # six pages and the experiment (about the same size)
    client.cache.enable(path=tmp_path / "small.sqlite3", max_bytes=page * 4)
    await collect(client.metrics.list(eid, page_size=10))
    stats = client.cache.stats()
    assert stats.bytes <= page * 4
    assert 1 <= stats.entries < 7
    # The first pages went first: the first page is fetched again.
    seen.clear()
    await collect(client.metrics.list(eid, page_size=10, limit=10))
    assert (200, f"/v1/experiments/{eid}/metrics") in seen


def _fill(live_server: RunningServer, path: Path) -> tuple[str, list[Any]]:
    with Tally(api_key=live_server.api_key, base_url=live_server.url) as client:
        client.cache.enable(path=path)
        experiment = client.experiments.create(unique("corrupt"))
        client.metrics.ingest(
            experiment.id, [{"name": "loss", "value": float(s), "step": s} for s in range(30)]
        )
        client.experiments.update_status(experiment.id, "completed")
        points = list(client.metrics.list(experiment.id, page_size=10))
        assert client.cache.stats().entries == 4
    return str(experiment.id), points


def _future_version(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={FORMAT + 1}")
    db.close()


def _garbage(path: Path) -> None:
    path.write_bytes(b"not a database at all " * 4096)


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _flipped(path: Path) -> None:
    """A byte inside a stored body changed: SQLite cannot see it, the row's digest can."""
    data = bytearray(path.read_bytes())
    at = data.find(b'"value":29.0')
    assert at > 0
    data[at + 8] = ord("8")
    path.write_bytes(bytes(data))


def _enable_and_read(client: Tally, path: Path, eid: str) -> list[Any]:
    client.cache.enable(path=path)
    return list(client.metrics.list(eid, page_size=10))


@pytest.mark.parametrize("damage", [_garbage, _truncated, _future_version, _flipped])
def test_a_corrupt_or_foreign_version_file_is_ignored_with_a_warning_and_rebuilt(
    live_server: RunningServer, tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    path = tmp_path / "cache.sqlite3"
    eid, points = _fill(live_server, path)
    assert not Path(f"{path}-wal").exists()  # closed cleanly: everything is in the file itself
    damage(path)
    with Tally(api_key=live_server.api_key, base_url=live_server.url) as client:
        with pytest.warns(RuntimeWarning, match="response cache"):
            read = _enable_and_read(client, path, eid)
        assert read == points
        assert list(client.metrics.list(eid, page_size=10)) == points
        assert client.cache.stats().enabled
        assert client.cache.stats().entries >= 1


def test_enable_disable_clear_and_bad_arguments(live_server: RunningServer, tmp_path: Path) -> None:
    with Tally(api_key=live_server.api_key, base_url=live_server.url) as client:
        assert not client.cache.stats().enabled  # off by default
        with pytest.raises(ValueError, match="max_bytes"):
            client.cache.enable(path=tmp_path / "c.sqlite3", max_bytes=0)
        client.cache.enable(path=tmp_path / "c.sqlite3")
        client.health()  # sent without the key (and it holds the time): not cached
        copy = client.with_options(timeout=5)
        assert copy.cache is client.cache
        client.auth.status()
        list(copy.folders.list())
        assert client.cache.stats().entries == 2
        client.cache.clear()
        assert client.cache.stats().entries == 0
        client.cache.disable()
        client.auth.status()
        stats = client.cache.stats()
        assert not stats.enabled
        assert stats.path is None


def test_another_programs_database_is_left_alone_and_the_cache_stays_off(
    live_server: RunningServer, tmp_path: Path
) -> None:
    path = tmp_path / "theirs.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE precious (x)")
    db.execute("INSERT INTO precious VALUES (1)")
    db.commit()
    db.close()
    with Tally(api_key=live_server.api_key, base_url=live_server.url) as client:
        with pytest.warns(RuntimeWarning, match="another program"):
            client.cache.enable(path=path)
        assert not client.cache.stats().enabled
        client.auth.status()  # no cache: the call goes to the server as usual
    db = sqlite3.connect(path)
    assert db.execute("SELECT x FROM precious").fetchall() == [(1,)]
    db.close()
