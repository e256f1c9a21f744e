"""`import tally` loads nothing until a name is used; the sync client does not load the async side."""

from __future__ import annotations

import importlib
import subprocess
import sys

import tally


def test_every_exported_name_is_lazily_reachable() -> None:
    lazy: dict[str, str] = tally._LAZY  # type: ignore[attr-defined]
    assert set(lazy) == set(tally.__all__) - {"__version__"}
    for name, module in lazy.items():
        assert hasattr(importlib.import_module(module), name), (name, module)
    assert set(dir(tally)) >= set(tally.__all__)


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(output.split())


def test_import_tally_loads_nothing_heavy() -> None:
    loaded = _loaded_after("import tally")
    assert not {"httpx", "msgspec", "typing", "tally._types", "tally_api"} & loaded


def test_the_sync_client_leaves_the_async_side_and_the_generated_package_alone() -> None:
    loaded = _loaded_after("from tally import Tally, NotFoundError, Experiment")
    assert "tally._sync._client" in loaded
    unwanted = {"asyncio", "tally._async._client", "tally_api", "aiohttp", "tally_server", "tally._frames"}
    assert not unwanted & loaded


def test_the_cli_loads_only_the_command_it_runs() -> None:
    loaded = _loaded_after("from tally.cli._app import cli\ncli.get_command(None, 'auth')")
    assert "tally.cli.auth" in loaded
    assert not {"tally.cli.metrics", "tally._plotting", "plotille", "matplotlib", "tally_server"} & loaded
