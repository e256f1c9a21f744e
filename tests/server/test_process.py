"""`tally_server.process`: the one helper that starts the server as a process and waits for it, and that there is
no other (tests and scripts started and polled it six different ways)."""

from __future__ import annotations

import ast
import os
import re
import signal
from pathlib import Path

import httpx
import pytest

from tally_server.process import ServerStartError, start_server_process

_ROOT = Path(__file__).resolve().parents[2]
_KEY = "tk_org_" + "Q" * 32


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    return {**environment, "TALLY_CONFIG_DIR": str(tmp_path / "config"), **extra}


def test_it_answers_at_the_url_it_announced_and_stops_cleanly(tmp_path: Path) -> None:
    env = _env(tmp_path, TALLY_SERVER_BOOTSTRAP_KEY=_KEY)
    with start_server_process(["--db", ":memory:"], logs=tmp_path / "logs", env=env) as server:
        assert server.port != 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        status = httpx.get(server.url + "/v1/auth/status", headers={"Authorization": f"Bearer {_KEY}"})
        assert status.status_code == 200
        assert _KEY not in repr(server)
    assert server.process.returncode in (0, -signal.SIGTERM)  # shut down cleanly (uvicorn re-raises SIGTERM)
    assert server.stdout().startswith(f"Tally reference server on {server.url} ")
    assert "GET /v1/auth/status 200" in server.stderr()


def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    with pytest.raises(ServerStartError) as failure:
        start_server_process(["--db", "mysql://tally@host/tally"], logs=tmp_path, env=_env(tmp_path))
    message = str(failure.value)
    assert "exited with status 2 before announcing its URL" in message
    assert "unsupported database URL scheme 'mysql'" in message  # the server's own stderr


def _copies(path: Path) -> list[str]:
    """Where a file defines its own free-port or wait-for-health helper, or waits in a loop for `/v1/health` to
    answer 200."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef) and re.search(r"free_port|healthy|^_?wait$", node.name):
            found.append(f"{node.lineno}: def {node.name}")
        elif isinstance(node, ast.While | ast.For):
            inside = list(ast.walk(node))
            constants = [inner.value for inner in inside if isinstance(inner, ast.Constant)]
            sleeps = any(  # waiting means sleeping between tries; a loop over URLs that checks answers is not
                isinstance(inner, ast.Call)
                and (getattr(inner.func, "attr", None) or getattr(inner.func, "id", None)) == "sleep"
                for inner in inside
            )
            if (
                sleeps
                and 200 in constants
                and any(isinstance(c, str) and "/v1/health" in c for c in constants)
            ):
                found.append(f"{node.lineno}: a loop waiting for /v1/health to answer 200")
    return found


def test_no_other_copy_starts_a_server_process_and_waits_for_it() -> None:
    exempt = {
        _ROOT / "src" / "tally_server" / "process.py",
        Path(__file__).resolve(),
    }  # the helper; this scan
    files = [*(_ROOT / "tests").rglob("*.py"), *(_ROOT / "scripts").glob("*.py")]
    files += (_ROOT / "src" / "tally_server").rglob("*.py")
    found = [
        f"{path.relative_to(_ROOT)}:{where}"
        for path in sorted(files)
        if path not in exempt
        for where in _copies(path)
    ]
    assert not found, (
        "start the server with tally_server.process.start_server_process (it reads the announced URL and waits "
        "for /v1/health), or take a port from tally_server.process.free_port:\n" + "\n".join(found)
    )
