"""`tally.ClientConfig` (issue 19): one frozen value for a client's connection settings, resolved with the same
precedence and by the same resolver as `Tally(...)`, printed with the key masked, and accepted by both clients as
`config=`; giving `config=` and a keyword it holds is a clear error.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import pytest

import tally
from tally import AsyncTally, ClientConfig, Tally
from tally_server import RunningServer

from ..conftest import call

pytestmark = pytest.mark.timeout(60)

FILE_KEY = "tk_org_" + "FromTheCredentialsFile0123456789"
ENV_KEY = "tk_org_" + "FromTheEnvironment0123456789abcd"
ARG_KEY = "tk_org_" + "FromTheArgument0123456789abcdefg"


def write_file(tmp_path: Path, api_key: str, base_url: str) -> Path:
    path = tmp_path / "config" / "credentials.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"api_key": api_key, "base_url": base_url}))
    return path


def test_the_same_precedence_as_the_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Argument, then environment, then file, then the default URL: what `Tally(...)` resolves, field by field."""
    path = write_file(tmp_path, FILE_KEY, "http://file.test")
    config = ClientConfig.resolve()
    assert (config.api_key, config.base_url) == (FILE_KEY, "http://file.test")
    assert config.credential_source == f"file:{path}"

    monkeypatch.setenv("TALLY_API_KEY", ENV_KEY)
    monkeypatch.setenv("TALLY_BASE_URL", "http://env.test/")
    config = ClientConfig.from_env(timeout=3.0)
    assert (config.api_key, config.base_url, config.timeout) == (ENV_KEY, "http://env.test", 3.0)
    assert config.credential_source == "env:TALLY_API_KEY"

    config = ClientConfig.resolve(ARG_KEY, base_url="http://arg.test")
    assert (config.api_key, config.base_url, config.credential_source) == (
        ARG_KEY,
        "http://arg.test",
        "argument",
    )

    local = ClientConfig.from_file()  # the file alone, the environment ignored, as Tally("local")
    assert (local.api_key, local.base_url) == (FILE_KEY, "http://file.test")
    other = write_file(tmp_path / "other", ARG_KEY, "http://other.test")
    assert ClientConfig.from_file(other).api_key == ARG_KEY
    monkeypatch.setenv("TALLY_MODE", "offline")
    assert ClientConfig.from_file(other).offline
    assert ClientConfig.from_file().offline
    monkeypatch.delenv("TALLY_MODE")

    for api_key in (None, "local", ARG_KEY):  # the client resolves the same
        with Tally(api_key) as client:
            resolved = ClientConfig.resolve(api_key)
            assert (client.credential_source, client.base_url) == (
                resolved.credential_source,
                resolved.base_url,
            )


def test_no_key_anywhere_lists_every_place() -> None:
    with pytest.raises(tally.ConfigurationError) as caught:
        ClientConfig.from_env()
    for place in ("argument", "TALLY_API_KEY", "credentials.json"):
        assert place in str(caught.value)


def test_printed_and_pickled_it_never_shows_the_key_in_text() -> None:
    config = ClientConfig(api_key=ARG_KEY, base_url="http://x.test", max_retries=1)
    for shown in (repr(config), str(config), f"{config}", repr([config]), repr(config.replace(timeout=2.0))):
        assert ARG_KEY not in shown
        assert "…" + ARG_KEY[-4:] in shown
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.api_key = "tk_org_other"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(config)) == config  # noqa: S301 - our own bytes


def test_bad_values_name_the_field() -> None:
    with pytest.raises(ValueError, match="base_url"):
        ClientConfig(api_key=ARG_KEY, base_url="x.test")
    with pytest.raises(TypeError, match="api_key"):
        ClientConfig(api_key=None, base_url="http://x.test")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_retries"):
        ClientConfig(api_key=ARG_KEY, base_url="http://x.test", max_retries=-1)
    with pytest.raises(TypeError, match="retry"):
        ClientConfig(api_key=ARG_KEY, base_url="http://x.test", retry=3)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_both_clients_take_a_config(mode: str, live_server: RunningServer) -> None:
    config = ClientConfig(api_key=live_server.api_key, base_url=live_server.url, timeout=7.0, max_retries=1)
    cls = Tally if mode == "sync" else AsyncTally
    client = cls(config=config, max_retries=None)  # an unset keyword is not a conflict
    try:
        assert (await call(client.auth.status())).organization_id
        assert client.timeout == 7.0
        assert client.max_retries == 1
        assert client.base_url == live_server.url.rstrip("/")
        again = client.config
        assert isinstance(again, ClientConfig)
        assert (again.api_key, again.base_url, again.timeout) == (config.api_key, config.base_url, 7.0)
        assert live_server.api_key not in repr(client) + repr(again)
        copy = cls(config=again.replace(timeout=2.0))
        try:
            assert copy.timeout == 2.0
            assert copy.max_retries == 1
            assert (await call(copy.health())).status
        finally:
            await call(copy.close())
    finally:
        await call(client.close())


@pytest.mark.parametrize("keyword", ["api_key", "base_url", "timeout", "max_retries", "offline"])
def test_config_and_a_keyword_it_holds_is_an_error(keyword: str) -> None:
    config = ClientConfig(api_key=ARG_KEY, base_url="http://x.test")
    value = {
        "api_key": ENV_KEY,
        "base_url": "http://y.test",
        "timeout": 1.0,
        "max_retries": 0,
        "offline": True,
    }
    with pytest.raises(tally.ConfigurationError, match=rf"config= or {keyword}, not both"):
        Tally(config=config, **{keyword: value[keyword]})  # type: ignore[arg-type]
    with pytest.raises(tally.ConfigurationError, match="not both"):
        AsyncTally(config=config, **{keyword: value[keyword]})  # type: ignore[arg-type]


def test_config_combines_with_connection_keywords(live_server: RunningServer) -> None:
    """Objects that are not settings (transport, logger, ...) go with `config=` as keywords."""
    import logging

    config = ClientConfig(api_key=live_server.api_key, base_url=live_server.url)
    with Tally(config=config, logger=logging.getLogger("mine")) as client:
        assert client.health().status


def test_offline_config() -> None:
    config = ClientConfig.resolve(offline=True)  # no key needed offline
    with Tally(config=config) as client:
        assert client.offline
        with pytest.raises(tally.ConfigurationError):
            client.experiments.get("exp_x")
