"""`python -m tally_server` / `tally serve`: first start, credentials file, logging without tokens."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tally_credentials import credentials_path, write_credentials
from tally_server.process import ServerProcess, free_port, start_server_process


def _serve(args: list[str], env: dict[str, str], port: int = 0) -> ServerProcess:
    """`python -m tally_server --port <port> <args>` (0: a free one), once it answers at the URL it announced;
    its output goes next to the test's config or home directory."""
    logs = Path(env.get("TALLY_CONFIG_DIR") or env["HOME"]).parent / "server-logs"
    return start_server_process(args, logs=logs, port=port, env=env)


def _stop(server: ServerProcess) -> tuple[str, str]:
    """Stop it cleanly; what it wrote to stdout and to stderr."""
    server.stop()
    return server.stdout(), server.stderr()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    environment["TALLY_CONFIG_DIR"] = str(tmp_path / "config")
    return environment


def test_first_start_prints_the_key_once_and_writes_private_credentials(
    tmp_path: Path, env: dict[str, str]
) -> None:
    db = tmp_path / "data" / "server.sqlite3"
    process = _serve(["--db", str(db)], env)
    url = process.url
    try:
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
    process = _serve(["--db", str(db)], env, process.port)
    try:
        assert process.url == url
    finally:
        out, _ = _stop(process)
    assert "tk_org_" not in out
    assert json.loads(creds_file.read_text())["api_key"] == creds["api_key"]


def test_bootstrap_key_from_the_environment(tmp_path: Path, env: dict[str, str]) -> None:
    key = "tk_org_" + "E" * 32
    process = _serve(["--db", ":memory:"], {**env, "TALLY_SERVER_BOOTSTRAP_KEY": key})
    try:
        status = httpx.get(f"{process.url}/v1/auth/status", headers={"Authorization": f"Bearer {key}"})
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


# ---- started as a real process on a free port, in a private HOME ----------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment whose home, XDG directories and Tally config directory are all inside `tmp_path`."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TALLY_", "XDG_"))}
    environment["HOME"] = str(tmp_path / "home")
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        environment[name] = str(tmp_path / "home" / name.lower())
    return environment


def _serve_announced(args: list[str], env: dict[str, str], port: int = 0) -> tuple[ServerProcess, str]:
    """Start it on `port` (0: a free one); the URL it announced on its first line, once the server answers
    there."""
    server = _serve(args, env, port)
    banner = server.stdout().splitlines()[0]
    assert re.match(rf"Tally reference server on {re.escape(server.url)} ", banner), banner
    assert server.port != 0, f"the server announced the port it was asked for: {banner}"
    if port:
        assert server.port == port, banner
    return server, server.url


def test_port_0_announces_and_saves_the_port_it_got(home: dict[str, str]) -> None:
    process, url = _serve_announced(["--db", ":memory:"], home)
    try:
        port = int(url.rsplit(":", 1)[1])
        assert port != 0
        saved = json.loads((Path(home["XDG_CONFIG_HOME"]) / "tally" / "credentials.json").read_text())
        assert saved["base_url"] == url
        status = httpx.get(url + "/v1/auth/status", headers={"Authorization": f"Bearer {saved['api_key']}"})
        assert status.status_code == 200
    finally:
        out, _ = _stop(process)
    assert "127.0.0.1:0" not in out


def test_a_bootstrap_key_on_the_command_line_is_warned_about_and_never_logged(home: dict[str, str]) -> None:
    key = "tk_org_" + "C" * 32
    process, url = _serve_announced(["--db", ":memory:", "--bootstrap-key", key], home, free_port())
    try:
        assert (
            httpx.get(url + "/v1/auth/status", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        )
    finally:
        out, err = _stop(process)
    assert "warning: --bootstrap-key on the command line is visible to every user" in err
    assert "TALLY_SERVER_BOOTSTRAP_KEY" in err
    assert key not in err
    assert key not in out


@pytest.mark.parametrize("source", ["environment", "file"])
def test_a_bootstrap_key_from_the_environment_or_a_file_is_not_warned_about(
    home: dict[str, str], tmp_path: Path, source: str
) -> None:
    key = "tk_org_" + "F" * 32
    if source == "file":
        secret = tmp_path / "bootstrap-key"
        secret.write_text(key + "\n")
        args, env = ["--bootstrap-key-file", str(secret)], home
    else:
        args, env = [], {**home, "TALLY_SERVER_BOOTSTRAP_KEY": key}
    process, url = _serve_announced(["--db", ":memory:", *args], env, free_port())
    try:
        assert (
            httpx.get(url + "/v1/auth/status", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        )
    finally:
        out, err = _stop(process)
    assert "warning" not in err
    assert key not in err
    assert key not in out


def test_a_bootstrap_key_given_twice_or_a_bad_key_file_is_refused(
    home: dict[str, str], tmp_path: Path
) -> None:
    secret = tmp_path / "bootstrap-key"
    secret.write_text("not-a-key\n")
    for args, expected in (
        (["--bootstrap-key-file", str(secret)], f"the content of {secret} must be an organisation key"),
        (["--bootstrap-key-file", str(tmp_path / "missing")], "cannot read"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "tally_server", "--db", ":memory:", *args],
            env=home, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 2, result
        assert expected in result.stderr
    secret.write_text("tk_org_" + "T" * 32)
    result = subprocess.run(
        [sys.executable, "-m", "tally_server", "--db", ":memory:", "--bootstrap-key-file", str(secret)],
        env={**home, "TALLY_SERVER_BOOTSTRAP_KEY": "tk_org_" + "E" * 32},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "not both" in result.stderr


def test_the_log_holds_no_token_from_a_query_and_no_forged_line(home: dict[str, str]) -> None:
    """Tokens pasted into a query string or a path never reach the log; a line feed or a NUL in a path is
    escaped, so the log keeps one line per request and no control character."""
    key = "tk_org_" + "L" * 32
    process, url = _serve_announced(
        ["--db", ":memory:", "--log-level", "info"], {**home, "TALLY_SERVER_BOOTSTRAP_KEY": key}, free_port()
    )
    secrets_sent = {
        "api-key": "tk_org_" + "A" * 32,
        "access-token": "tk_ing_" + "B" * 32,
        "token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",  # a JSON Web Token
        "declared-key": "tk_org_" + "D" * 32,
        "declared-bearer": "abcdefghijklmnopqrstuvwxyz0123456789",
        "key-in-path": "tk_org_" + "P" * 32,
    }
    requests = {
        "api-key": ("/v1/folders", {"api_key": secrets_sent["api-key"]}, False),
        "access-token": ("/v1/folders", {"access_token": secrets_sent["access-token"]}, False),
        "token": ("/v1/folders", {"token": secrets_sent["token"]}, True),
        "declared-key": ("/v1/experiments", {"name_prefix": secrets_sent["declared-key"]}, True),
        "declared-bearer": (
            "/v1/experiments",
            {"name_prefix": f"Bearer {secrets_sent['declared-bearer']}"},
            True,
        ),
        "key-in-path": (f"/v1/folders/{secrets_sent['key-in-path']}", {}, True),
        "line-feed": ("/v1/folders/x%0AFORGED 200", {}, True),
        "nul": ("/v1/folders/x%00y", {}, True),
    }
    try:
        with httpx.Client(base_url=url) as client:
            for request_id, (path, query, authorised) in requests.items():
                headers = {"X-Request-Id": request_id}
                if authorised:
                    headers["Authorization"] = f"Bearer {key}"
                response = client.get(path, params=query, headers=headers)
                assert 400 <= response.status_code < 500 or response.status_code == 200, response.text
    finally:
        _, err = _stop(process)
    assert "\x00" not in err
    for secret in secrets_sent.values():
        assert secret[7:20] not in err  # not even part of one
    lines = err.splitlines()
    assert not [line for line in lines if line.startswith("FORGED")]
    for request_id in requests:
        logged = [line for line in lines if line.endswith(f" {request_id}")]
        assert len(logged) == 1, (request_id, logged)
    by_id = {request_id: next(ln for ln in lines if ln.endswith(f" {request_id}")) for request_id in requests}
    assert "GET /v1/folders 401" in by_id["api-key"]  # an undeclared parameter is left out
    assert "name_prefix=tk_org_***" in by_id["declared-key"]
    assert "name_prefix=Bearer%20***" in by_id["declared-bearer"]
    assert "/v1/folders/tk_org_*** 404" in by_id["key-in-path"]
    assert "/v1/folders/x%0AFORGED%20200 400" in by_id["line-feed"]
    assert "/v1/folders/x%00y 400" in by_id["nul"]
