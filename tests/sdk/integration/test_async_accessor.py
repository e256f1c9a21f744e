"""`Tally.async_` (issue 19, Sift's `client.async_`): the sync client's async surface, against the live server.

It shares the sync client's configuration, hooks, option defaults, response cache and ingestion-key cache; it
opens one connection pool per event loop, closed with its loop or by the sync client's `close()`
(`tally._async_accessor`). The lifecycle test runs a script under `python -W error`, because an aiohttp session
that outlives its loop reports itself on stderr (through the loop's exception handler), not only as a warning.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

import tally
from tally import AsyncTally, Tally
from tally_server import RunningServer

pytestmark = pytest.mark.integration

EVENT = [{"name": "loss", "value": 0.5, "step": 0}]


def test_it_shares_configuration_hooks_option_defaults_and_the_response_cache(
    live_server: RunningServer,
) -> None:
    seen: list[str] = []
    hooks = tally.Hooks(before_request=lambda request: seen.append(request.url.path))
    with Tally(
        live_server.api_key, base_url=live_server.url, hooks=hooks, max_retries=1, timeout=7.0
    ) as client:
        view = client.async_
        assert isinstance(view, AsyncTally)
        assert view is client.async_
        assert view.base_url == client.base_url
        assert view.credential_source == client.credential_source == "argument"
        assert (view.timeout, view.max_retries) == (7.0, 1)
        assert view.config == client.config
        assert view.cache is client.cache
        quick = client.with_options(timeout=3.0, extra_headers={"X-Copy": "yes"})
        assert quick.async_.timeout == 3.0
        experiment = client.experiments.create("accessor-shares")
        headers: list[str | None] = []

        async def use() -> tally.AsyncExperiment:
            raw = await quick.async_.with_raw_response(quick.async_.experiments.get)(experiment.id)
            headers.append(raw.http_response.request.headers.get("X-Copy"))
            return await view.experiments.get(experiment.id)

        fetched = asyncio.run(use())
        assert isinstance(fetched, tally.AsyncExperiment)  # the async surface's own class, the same fields
        assert fetched.to_dict() == experiment.to_dict()
        assert headers == ["yes"]
        assert seen.count(f"/v1/experiments/{experiment.id}") == 2  # the client's hooks ran for both


def test_an_ingestion_key_minted_by_either_side_serves_the_other(live_server: RunningServer) -> None:
    with Tally(live_server.api_key, base_url=live_server.url) as client:
        first = client.experiments.create("accessor-keys-1")
        second = client.experiments.create("accessor-keys-2")
        client.metrics.ingest(first.id, EVENT)  # the sync side mints first's key

        async def use() -> None:
            await client.async_.metrics.ingest(first.id, EVENT)  # ... and the async side uses it
            await client.async_.metrics.ingest(second.id, EVENT)  # the async side mints second's key

        asyncio.run(use())
        client.metrics.ingest(second.id, EVENT)  # ... and the sync side uses it
        for experiment in (first, second):
            assert len(list(client.ingestion_keys.list(experiment.id))) == 1, experiment.name


def test_consecutive_asyncio_runs_each_get_a_pool_closed_with_their_loop(live_server: RunningServer) -> None:
    """The classic failure of a cached `httpx.AsyncClient` (encode/httpx#2473): the second `asyncio.run` meets a
    pool bound to the first, closed loop. Here each loop gets its own pool, closed when its loop shuts down."""
    pools: list[httpx.AsyncClient] = []
    with Tally(live_server.api_key, base_url=live_server.url) as client:
        experiment = client.experiments.create("accessor-runs")
        view = client.async_  # one object, taken outside any loop

        async def use() -> str:
            name = (await view.experiments.get(experiment.id)).name
            pools.append(loop_pool(view))
            return name

        for _ in range(3):
            assert asyncio.run(use()) == "accessor-runs"
        assert len({id(pool) for pool in pools}) == 3
        assert all(pool.is_closed for pool in pools)  # each closed by its loop's shutdown, inside that loop
        gc.collect()  # nothing left to warn (pytest turns warnings into errors)


def loop_pool(view: AsyncTally) -> httpx.AsyncClient:
    """The running loop's pool behind `view` (private: what the test checks is that each loop has its own)."""
    entries = view._core.state.http._pools._entries  # type: ignore[attr-defined]
    pool: httpx.AsyncClient = entries[asyncio.get_running_loop()].http
    return pool


def test_each_thread_gets_its_own_pool(live_server: RunningServer) -> None:
    with Tally(live_server.api_key, base_url=live_server.url) as client:
        experiment = client.experiments.create("accessor-threads")
        names: list[str] = []

        async def use() -> None:
            names.append((await client.async_.experiments.get(experiment.id)).name)

        threads = [threading.Thread(target=asyncio.run, args=(use(),)) for _ in range(3)]
        for thread in threads:
            thread.start()
        client.metrics.ingest(experiment.id, EVENT)  # the sync client meanwhile
        for thread in threads:
            thread.join()
        assert names == ["accessor-threads"] * 3


async def test_in_a_running_loop_close_releases_the_pool_and_later_use_says_the_client_is_closed(
    live_server: RunningServer,
) -> None:
    """As in Jupyter: the loop runs, and `client.close()` is a plain call inside it."""
    client = Tally(live_server.api_key, base_url=live_server.url)
    assert (await client.async_.health()).status == "ok"
    view = client.async_
    await view.close()  # releases this loop's pool; the next call opens another
    assert not view.is_closed
    assert (await view.health()).status == "ok"
    client.close()
    assert view.is_closed
    with pytest.raises(RuntimeError, match=r"this Tally is closed, and so is client\.async_"):
        await view.health()
    with pytest.raises(RuntimeError, match="open a new client"):
        client.async_  # noqa: B018


def test_a_sync_only_transport_is_refused_with_the_fix(live_server: RunningServer) -> None:
    client = Tally(live_server.api_key, base_url=live_server.url, transport=httpx.HTTPTransport())
    with (
        client,
        pytest.raises(tally.ConfigurationError, match=r"transport=HTTPTransport.*AsyncTally\(transport="),
    ):
        client.async_  # noqa: B018

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "ok", "version": "mock", "time": "2026-12-04T00:00:00Z"})

    with Tally(
        "tk_org_" + "m" * 32, base_url="http://mock.test", transport=httpx.MockTransport(answer)
    ) as mocked:
        assert asyncio.run(mocked.async_.health()).version == "mock"  # a transport that is both is shared


LIFECYCLE = """
import asyncio, gc, sys, threading
import tally._transports
from tally import Tally

url, key, transport = sys.argv[1:4]
if transport == "httpx":  # httpx's own async pool rather than aiohttp's
    tally._transports.aiohttp_available = lambda: False
client = Tally(key, base_url=url)

async def use():
    return (await client.async_.health()).status

def pools():
    return client.async_._core.state.http._pools._entries

print(asyncio.run(use()), asyncio.run(use()), len(pools()))   # two loops one after the other, both closed

idle = asyncio.new_event_loop()                         # a loop that stays open, idle
print(idle.run_until_complete(use()))

busy = asyncio.new_event_loop()                         # a loop running in another thread
thread = threading.Thread(target=busy.run_forever)
thread.start()
print(asyncio.run_coroutine_threadsafe(use(), busy).result())

for _ in range(2):                                      # closed by hand, without shutdown_asyncgens()
    gone = asyncio.new_event_loop()
    print(gone.run_until_complete(use()), len(pools())) # the second one's first call sweeps the first away
    gone.close()

open_pools = [entry.http for entry in pools().values()]
print("open", len(open_pools))
client.close()
print("closed", all(http.is_closed for http in open_pools[:2]))
try:
    asyncio.run(use())
except RuntimeError as error:
    print("after close:", error)
busy.call_soon_threadsafe(busy.stop)
thread.join()
busy.close()
idle.close()
del client, open_pools
gc.collect()
print("end")
"""


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_close_closes_every_async_pool_without_a_warning(
    live_server: RunningServer, tmp_path: Path, transport: str
) -> None:
    """Pools in every state a loop can be in: shut down by `asyncio.run`, idle, running in another thread, closed
    by hand (swept by the next loop's first call, or closed by `close()`); with aiohttp's pool and httpx's. Under
    `-W error`, any ResourceWarning or "Unclosed client session" would reach stderr."""
    script = tmp_path / "lifecycle.py"
    script.write_text(LIFECYCLE, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-W", "error", str(script), live_server.url, live_server.api_key, transport],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "ok ok 0",
        "ok",
        "ok",
        "ok 3",
        "ok 3",
        "open 3",
        "closed True",
        "after close: this Tally is closed, and so is client.async_: open a new client (keep the `with "
        "Tally() as client:` block around every use, async ones included)",
        "end",
    ]
