"""`tally.configure(...)` and the module-level default client (issue 19, Tilde): `tally.experiments.list()` and
friends against the live server; a missing key fails on first use, not on import or configure; creation is
thread-safe; configuring again replaces and closes the previous client.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

import tally
import tally._default
from tally_server import RunningServer

from ..conftest import unique

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def fresh_default() -> Iterator[None]:
    """Each test starts with no default client and no settings, and closes what it made."""
    tally.configure()
    yield
    tally.configure()


def test_configure_then_module_level_calls(live_server: RunningServer) -> None:
    tally.configure(api_key=live_server.api_key, base_url=live_server.url, timeout=5.0)
    folder = tally.folders.create(unique("default-folder"))
    experiment = tally.experiments.create(unique("default"), folder_id=folder.id)
    tally.metrics.ingest(experiment.id, [{"name": "loss", "value": 0.5, "step": 0}], sync=True)
    assert [point.value for point in tally.metrics.list(experiment.id)] == [0.5]
    assert experiment.id in {item.id for item in tally.experiments.list(folder_id=folder.id)}
    assert tally.auth.status().credential_source == "argument"
    assert tally.annotations.create(experiment.id, "note", step=0).text == "note"
    assert tally.health().status
    assert tally._default.default_client().timeout == 5.0
    assert "list" in dir(tally.experiments)
    assert "default client" in repr(tally.experiments)


def test_a_missing_key_fails_on_first_use_not_before(live_server: RunningServer) -> None:
    """No TALLY_API_KEY, an empty config dir (the `isolated` fixture): import and configure succeed."""
    tally.configure(base_url=live_server.url)
    experiments = tally.experiments  # no client yet
    with pytest.raises(tally.ConfigurationError) as caught:
        experiments.list()
    message = str(caught.value)
    for place in ("argument", "TALLY_API_KEY", "credentials.json"):
        assert place in message


def test_import_and_configure_never_look_for_a_key() -> None:
    code = (
        "import tally; tally.configure(); e = tally.experiments; tally.configure(base_url='http://x.test'); "
        "print('ok')"
    )
    env = {"TALLY_CONFIG_DIR": "/nonexistent-tally-config", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_environment_when_not_configured(live_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLY_API_KEY", live_server.api_key)
    monkeypatch.setenv("TALLY_BASE_URL", live_server.url)
    assert tally.auth.status().credential_source == "env:TALLY_API_KEY"


def test_one_client_however_many_threads_ask(live_server: RunningServer) -> None:
    tally.configure(api_key=live_server.api_key, base_url=live_server.url)
    start = threading.Barrier(16)
    made: list[int] = []
    lock = threading.Lock()

    def first_use() -> None:
        start.wait()
        client = tally._default.default_client()
        tally.experiments.get  # noqa: B018 - the attribute access is the first use
        with lock:
            made.append(id(client))

    threads = [threading.Thread(target=first_use) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 16
    assert len(set(made)) == 1


def test_configure_again_replaces_and_closes(live_server: RunningServer) -> None:
    tally.configure(api_key=live_server.api_key, base_url=live_server.url, max_retries=0)
    first = tally._default.default_client()
    assert tally.health().status
    tally.configure(api_key=live_server.api_key, base_url=live_server.url, max_retries=1)
    assert first.is_closed
    second = tally._default.default_client()
    assert second is not first
    assert second.max_retries == 1
    assert tally.folders.create(unique("replaced")).id


def test_configure_takes_a_client_config(live_server: RunningServer) -> None:
    config = tally.ClientConfig(api_key=live_server.api_key, base_url=live_server.url, timeout=3.0)
    tally.configure(config=config)
    assert tally._default.default_client().timeout == 3.0
    assert tally.auth.status().organization_id


def test_configure_with_a_config_and_a_keyword_it_holds_fails_at_once() -> None:
    config = tally.ClientConfig(api_key="tk_org_" + "x" * 32, base_url="http://x.test")
    with pytest.raises(tally.ConfigurationError, match="not both"):
        tally.configure(config=config, timeout=1.0)
    tally.configure(config=config, logger=logging.getLogger("mine"))  # other keywords combine with config=
