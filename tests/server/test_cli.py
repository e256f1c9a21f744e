"""`python -m tally_server` / `tally serve`: first start, credentials file, logging without tokens."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tally_server._credentials_file import credentials_path, write_credentials


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tally_server", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("the server did not start")


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.terminate()
    out, err = process.communicate(timeout=30)
    return out, err


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    environment["TALLY_CONFIG_DIR"] = str(tmp_path / "config")
    return environment


def test_first_start_prints_the_key_once_and_writes_private_credentials(
    tmp_path: Path, env: dict[str, str]
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    db = tmp_path / "data" / "server.sqlite3"
    process = _serve(["--port", str(port), "--db", str(db)], env)
    try:
        _wait(url, process)
        creds_file = Path(env["TALLY_CONFIG_DIR"]) / "credentials.json"
        creds = json.loads(creds_file.read_text())
        assert creds["base_url"] == url
        assert creds["api_key"].startswith("tk_org_")
        assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(creds_file.parent.stat().st_mode) == 0o700
        response = httpx.get(url + "/v1/auth/status", headers={"Authorization": f"Bearer {creds['api_key']}"})
        assert response.status_code == 200
        request_id = response.headers["X-Request-Id"]
    finally:
        out, err = _stop(process)
    assert out.count(creds["api_key"]) == 1
    assert creds["api_key"] not in err
    assert request_id in err  # one log line per request, with its id
    assert "GET /v1/auth/status 200" in err
    # A second start on the same database: no new key printed, the credentials still work.
    process = _serve(["--port", str(port), "--db", str(db)], env)
    try:
        _wait(url, process)
    finally:
        out, _ = _stop(process)
    assert "tk_org_" not in out
    assert json.loads(creds_file.read_text())["api_key"] == creds["api_key"]


def test_bootstrap_key_from_the_environment(tmp_path: Path, env: dict[str, str]) -> None:
    port = _free_port()
    key = "tk_org_" + "E" * 32
    process = _serve(["--port", str(port), "--db", ":memory:"], {**env, "TALLY_SERVER_BOOTSTRAP_KEY": key})
    try:
        _wait(f"http://127.0.0.1:{port}", process)
        status = httpx.get(
            f"http://127.0.0.1:{port}/v1/auth/status", headers={"Authorization": f"Bearer {key}"}
        )
        assert status.status_code == 200
    finally:
        _, err = _stop(process)
    assert key not in err


def test_a_bad_bootstrap_key_names_the_flag(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tally_server", "--bootstrap-key", "nope", "--db", ":memory:"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "--bootstrap-key" in result.stderr


def test_credentials_file_path_and_atomic_private_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALLY_CONFIG_DIR", str(tmp_path / "cfg"))
    assert credentials_path() == tmp_path / "cfg" / "credentials.json"
    path = write_credentials("tk_org_" + "a" * 32, "http://127.0.0.1:1")
    path.write_text(json.dumps({**json.loads(path.read_text()), "extra": 1}))
    write_credentials("tk_org_" + "b" * 32, "http://127.0.0.1:2")
    assert json.loads(path.read_text()) == {
        "api_key": "tk_org_" + "b" * 32,
        "base_url": "http://127.0.0.1:2",
        "extra": 1,
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]
