"""Server selection by index (issue 19, Speakeasy's `server_idx`), on both clients.

The contract lists its servers (`servers:` in openapi/tally.yaml); the generator makes them the table
`tally_api_types.servers.SERVERS`; `Tally(server_idx=i)` talks to `SERVERS[i]`. The precedence for the URL is
one rule, "what you pass wins over what the environment and the file say": the `base_url` argument, the
`server_idx` argument, `TALLY_BASE_URL`, the credentials file's `base_url`, then the contract's first server
(the local reference server). The live server runs on a port of its own, so the tests that reach it do so
through `base_url`, the environment or the file; where `server_idx` wins, a hook shows the URL each request goes
to, and stops it there (the production URL is a placeholder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tally_api_types.servers import SERVERS, Server

import tally
from tally import AsyncTally, ClientConfig, Tally
from tally._credentials import DEFAULT_BASE_URL
from tally_credentials import credentials_path, write_credentials
from tally_server import RunningServer

from ..conftest import call

pytestmark = pytest.mark.integration

SPEC = Path(__file__).resolve().parents[3] / "openapi" / "tally.yaml"


class Stopped(Exception):
    pass


def stop_at(urls: list[str]) -> tally.Hooks:
    def before(request: httpx.Request) -> None:
        urls.append(str(request.url))
        raise Stopped

    return tally.Hooks(before_request=before)


def test_the_table_is_the_contracts_servers_in_order() -> None:
    servers = yaml.safe_load(SPEC.read_text(encoding="utf-8"))["servers"]
    assert [server.url for server in SERVERS] == [server["url"] for server in servers]
    assert len(SERVERS) >= 2
    assert all(isinstance(server, Server) and server.description for server in SERVERS)
    assert DEFAULT_BASE_URL == SERVERS[0].url == "http://127.0.0.1:8787"  # the default is unchanged


@pytest.mark.parametrize("made", [Tally, AsyncTally])
@pytest.mark.parametrize("index", range(len(SERVERS)))
async def test_server_idx_selects_the_server_each_request_goes_to(made: Any, index: int) -> None:
    urls: list[str] = []
    client = made(api_key="tk_org_" + "s" * 32, server_idx=index, hooks=stop_at(urls))
    try:
        assert client.base_url == SERVERS[index].url
        assert client.config.base_url_source == f"server_idx={index}"
        with pytest.raises(Stopped):
            await call(client.health())
    finally:
        await call(client.close())
    assert urls == [f"{SERVERS[index].url}/v1/health"]


@pytest.mark.parametrize("made", [Tally, AsyncTally])
async def test_an_explicit_server_idx_wins_over_the_environment_and_the_file(
    made: Any, live_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until issue 19's follow-up, a `base_url` in the credentials file or `TALLY_BASE_URL` silently beat an
    explicit `server_idx=1`: the one argument the caller wrote was the one ignored. Arguments now win."""
    key = live_server.api_key
    write_credentials(key, live_server.url)  # in the `isolated` fixture's TALLY_CONFIG_DIR
    for env in (None, live_server.url):
        if env is not None:
            monkeypatch.setenv("TALLY_BASE_URL", env)
        urls: list[str] = []
        client = made(key, server_idx=1, hooks=stop_at(urls))
        try:
            assert client.base_url == SERVERS[1].url
            assert client.config.base_url_source == "server_idx=1"
            with pytest.raises(Stopped):
                await call(client.health())
        finally:
            await call(client.close())
        assert urls == [f"{SERVERS[1].url}/v1/health"]
    config = ClientConfig.resolve(key, server_idx=1)
    assert (config.base_url, config.base_url_source) == (SERVERS[1].url, "server_idx=1")


@pytest.mark.parametrize("made", [Tally, AsyncTally])
async def test_the_url_precedence_is_base_url_server_idx_environment_file_default(
    made: Any, live_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each step of the rule, against the live server where a step names it: an explicit `base_url` beats an
    explicit `server_idx`; without either, `TALLY_BASE_URL` beats the file, the file beats the default."""
    key = live_server.api_key
    write_credentials(key, live_server.url)
    client = made(key)
    assert client.config.base_url_source.startswith("file:")
    assert (await call(client.health())).status == "ok"
    await call(client.close())

    monkeypatch.setenv("TALLY_BASE_URL", live_server.url)
    write_credentials(key, "http://127.0.0.1:9")
    client = made(key)
    assert client.config.base_url_source == "env:TALLY_BASE_URL"
    assert (await call(client.health())).status == "ok"
    await call(client.close())

    monkeypatch.setenv("TALLY_BASE_URL", "http://127.0.0.1:9")
    client = made(key, base_url=live_server.url, server_idx=1)
    assert client.config.base_url_source == "argument"
    assert (await call(client.health())).status == "ok"
    await call(client.close())

    monkeypatch.delenv("TALLY_BASE_URL")
    credentials_path().unlink()
    client = made(key)
    assert (client.base_url, client.config.base_url_source) == (DEFAULT_BASE_URL, "default")
    await call(client.close())


def test_config_and_configure_take_server_idx(live_server: RunningServer) -> None:
    config = ClientConfig.resolve("tk_org_" + "s" * 32, server_idx=1)
    assert config.base_url == SERVERS[1].url
    assert config.base_url_source == "server_idx=1"
    with pytest.raises(tally.ConfigurationError, match="pass config= or server_idx, not both"):
        Tally(config=config, server_idx=0)
    assert ClientConfig.resolve("tk_org_" + "s" * 32, server_idx=1, offline=True).base_url == SERVERS[1].url
    with Tally(offline=True, server_idx=1) as offline:
        assert offline.base_url == SERVERS[1].url
    urls: list[str] = []
    tally.configure(api_key=live_server.api_key, server_idx=1, hooks=stop_at(urls))
    try:
        with pytest.raises(Stopped):
            tally.health()
        assert urls == [f"{SERVERS[1].url}/v1/health"]
    finally:
        tally.configure()


@pytest.mark.parametrize("bad", [len(SERVERS), -1, "1", True, 1.0])
def test_a_bad_server_idx_names_the_field_and_lists_the_servers(bad: Any) -> None:
    with pytest.raises(tally.ConfigurationError) as raised:
        Tally(api_key="tk_org_" + "s" * 32, server_idx=bad)
    message = str(raised.value)
    assert f"server_idx must be an int from 0 to {len(SERVERS) - 1}" in message
    assert all(server.url in message for server in SERVERS)
    assert "base_url=" in message
