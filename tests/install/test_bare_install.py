"""The bare install: `pip install tally-metrics` with no extras, in a fresh venv, against a dev-env server.

The wheel is built from this checkout (`uv build`) once per session; the venv installs from uv's cache when it
can (see `scripts/bare_venv.py`). The list of packages that must be absent is read from pyproject.toml's
optional dependencies, not kept by hand.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tally_server import RunningServer

ROOT = Path(__file__).resolve().parents[2]


def _load_bare_venv() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bare_venv", ROOT / "scripts" / "bare_venv.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bare_venv = _load_bare_venv()


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = bare_venv.build_wheel(tmp_path_factory.mktemp("dist"))
    return path


@pytest.fixture(scope="session")
def bare_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding the wheel and its required dependencies, nothing else."""
    python: Path = bare_venv.make_venv(tmp_path_factory.mktemp("bare") / "venv", [str(wheel)])
    return python


@pytest.fixture
def bare_env(live_server: RunningServer, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TALLY_", "VIRTUAL_ENV", "PYTHON")) and key != "FORCE_COLOR"
    }
    env.update(
        TALLY_API_KEY=live_server.api_key,
        TALLY_BASE_URL=live_server.url,
        TALLY_CONFIG_DIR=str(tmp_path / "config"),
    )
    return env


def _run(python: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), *args], capture_output=True, text=True, env=env, check=False, cwd="/")


def test_no_extra_is_installed(bare_python: Path, bare_env: dict[str, str]) -> None:
    listing = _run(
        bare_python,
        bare_env,
        "-c",
        "import importlib.metadata as m, json\n"
        "print(json.dumps(sorted(d.metadata['Name'] for d in m.distributions())))",
    )
    assert listing.returncode == 0, listing.stderr
    installed = {name.lower().replace("_", "-") for name in json.loads(listing.stdout)}
    extras = bare_venv.extras_packages()
    assert set(extras) == {
        *("server", "cli", "aiohttp", "pandas", "polars", "plot", "system", "all"),
        *("lightning", "transformers", "keras"),
    }
    forbidden = set().union(*extras.values())
    assert {
        "starlette",
        "click",
        "aiohttp",
        "pandas",
        "polars",
        "matplotlib",
        "psutil",
        "nvidia-ml-py",
    } <= forbidden  # the list is real
    assert "tally-metrics" in installed
    assert "httpx" in installed
    assert not installed & forbidden, installed & forbidden


SDK_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    import tally
    from tally import Tally, AsyncTally

    with Tally() as client:
        experiment = client.experiments.create("bare-install")
        events = [{"name": "loss", "value": 1.0 / (s + 1), "step": s} for s in range(30)]
        result = client.metrics.ingest(experiment.id, events)
        steps = [p.step for p in client.metrics.list(experiment.id, page_size=7)]
        compared = client.metrics.compare([{"experiment_id": experiment.id, "name": "loss"}], max_step=2)
        try:
            client.experiments.get("exp_missing")
        except tally.NotFoundError as error:
            missing = error.code

    async def run_async():
        async with AsyncTally() as client:
            got = await client.experiments.get(experiment.id)
            return got.name, type(client._core.state.http._transport._inner).__name__

    name, transport = asyncio.run(run_async())
    loaded = sorted(m for m in ("click", "rich", "starlette", "aiohttp") if m in sys.modules)
    print(json.dumps({"accepted": result.accepted, "steps": steps, "rows": len(compared.rows), "missing": missing,
                      "name": name, "transport": transport, "loaded": loaded}))
    """
)


def test_the_sdk_works_against_a_server_from_the_dev_env(bare_python: Path, bare_env: dict[str, str]) -> None:
    result = _run(bare_python, bare_env, "-c", SDK_SCRIPT)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["accepted"] == 30
    assert report["steps"] == list(range(30))
    assert report["rows"] == 3
    assert report["missing"] == "not_found"
    assert report["name"] == "bare-install"
    assert report["transport"] == "AsyncHTTPTransport"  # httpx's own, without the [aiohttp] extra
    assert report["loaded"] == []


@pytest.mark.parametrize(
    ("code", "extra"),
    [
        (
            "from tally import CompareResult; CompareResult(series=(), rows=(), truncated=False).to_pandas()",
            "pandas",
        ),
        (
            "from tally import CompareResult; CompareResult(series=(), rows=(), truncated=False).to_polars()",
            "polars",
        ),
        ("import tally.embedded; tally.embedded.start_embedded()", "server"),
        (
            "from tally import _plotting; from pathlib import Path\n"
            "_plotting.render_png([], Path('x.png'), metric='m', log_y=False)",
            "plot",
        ),
    ],
)
def test_a_missing_extra_is_named(bare_python: Path, bare_env: dict[str, str], code: str, extra: str) -> None:
    result = _run(bare_python, bare_env, "-c", code)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("tally._extras.MissingExtraError: "), result.stderr
    assert f"tally-metrics[{extra}]" in last


def test_the_cli_and_demo_say_which_extra_in_one_line(bare_python: Path, bare_env: dict[str, str]) -> None:
    script = bare_python.parent / "tally"
    for command in ([str(script), "experiments", "list"], [str(bare_python), "-m", "tally.cli", "--help"]):
        result = subprocess.run(command, capture_output=True, text=True, env=bare_env, check=False)
        assert result.returncode == 3, (command, result.stderr)
        assert result.stderr.count("\n") == 1
        assert "pip install 'tally-metrics[cli]'" in result.stderr
    demo = _run(bare_python, bare_env, "-m", "tally.demo")
    assert demo.returncode == 1
    assert demo.stderr.count("\n") == 1
    assert "tally-metrics[cli]" in demo.stderr


def test_pytest_with_tally_installed_bare(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """pytest loads the `pytest11` plugin wherever Tally is installed: it must not break a bare install, and a
    fixture used there fails with one line naming the extra."""
    python = bare_venv.make_venv(tmp_path_factory.mktemp("bare-pytest") / "venv", [str(wheel), "pytest"])
    tests = tmp_path_factory.mktemp("user-tests")
    (tests / "test_user.py").write_text(
        "def test_plain():\n    assert 1 + 1 == 2\n\n\ndef test_with_server(tally_client):\n    pass\n"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TALLY_", "PYTEST", "VIRTUAL_ENV"))
    }
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=tests,
    )
    assert "1 passed, 1 error" in result.stdout, result.stdout
    assert "pip install 'tally-metrics[server]'" in result.stdout
    assert "Traceback" not in result.stdout
