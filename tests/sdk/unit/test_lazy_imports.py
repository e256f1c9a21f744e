"""`import tally` loads nothing until a name is used; the sync client does not load the async side."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import tally
from tally._lazy import RUN_OPERATIONS


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


# ---- httpx's command line (issue 21, "How fast": a training job must not pay for the CLI's libraries) -------------
CLI_LIBRARIES = ("click", "rich", "pygments")


def _imported(code: str) -> set[str]:
    """The modules `code` imports from their files, by `python -X importtime` (a stand-in put in `sys.modules`
    is not imported, so it is not listed)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    return {
        line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")
    }


RUN_ONLY = ("tally.run", "argparse", "subprocess", "shlex")
"""What only `client.run()` and `tally sync` need (the run's spool, sender, capture and replay): a program that
imports the client to query pays for none of it."""


def test_a_client_does_not_import_the_command_line_of_httpx_nor_the_run() -> None:
    """httpx's `__init__` imports `httpx._main` (click, rich, pygments: ~190 ms) whenever they are installed, as
    they are with the `[cli]` extra; `from tally import Tally` must not, nor the run's modules (issue 21's import
    target: at most 1.3x `import httpx`)."""
    for library in CLI_LIBRARIES:
        if importlib.util.find_spec(library) is None:  # pragma: no cover - the dev environment has them all
            pytest.skip(f"{library} is not installed: httpx would not import its command line anyway")
    imported = _imported("from tally import Tally")
    assert "httpx" in imported
    unwanted = {name for name in imported if name.split(".")[0] in CLI_LIBRARIES or name in RUN_ONLY}
    assert not unwanted | {name for name in imported if name.startswith("tally.run.")}
    made = _imported("from tally import Tally\nTally(api_key='tk_org_' + 'x' * 32, base_url='http://h')")
    assert "httpx._main" not in made
    assert not {name for name in made if name.split(".")[0] in CLI_LIBRARIES}


def test_a_training_run_does_not_import_the_command_line_libraries(tmp_path: Path) -> None:
    """What a training job loads in all (import, client, `client.run()` with capture and a config, `log()`,
    close): none of the CLI's libraries, nor argparse for a config that is not a Namespace."""
    code = (
        f"import os\nos.environ['TALLY_SPOOL_DIR'] = {str(tmp_path)!r}\n"
        "from tally import Tally\n"
        "with Tally(offline=True, api_key='tk_org_' + 'x' * 32) as client:\n"
        "    with client.run('no-cli', config={'optim': {'lr': 0.1}}) as run:\n"
        "        run.log({'loss': 1.0})\n"
    )
    imported = _imported(code)
    # (`tally.run._spool`: the run's modules are imported by importlib, whose imports -X importtime does not list,
    # and they import the spool)
    assert "tally.run._spool" in imported
    assert not {name for name in imported if name.split(".")[0] in (*CLI_LIBRARIES, "argparse")}


def test_httpx_main_still_works_after_importing_tally() -> None:
    """Whoever calls `httpx.main` (or imports from `httpx._main`) gets httpx's real command line, loaded then."""
    code = (
        "import sys\nfrom tally import Tally\nimport httpx\n"
        "assert 'click' not in sys.modules\n"
        "from httpx._main import print_response\n"
        "assert 'click' in sys.modules and print_response.__module__ == 'httpx._main'\n"
        "httpx.main(['--help'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "Usage: httpx" in done.stdout


def test_httpx_imported_before_tally_is_left_alone() -> None:
    code = "import httpx\nimport tally\nimport sys\nprint(type(sys.modules['httpx._main']).__name__, httpx.main.name)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["module", "main"]  # the real module, and its click command


# ---- what `from tally import Tally` leaves for first use (issue 21's import target) ---------------------------------
DEFERRED = (
    "msgspec",
    "tally_api_types._models",
    "tally._types",
    "tally._sync._resources",
    "tally._sync._objects",
    "tally._sync._pagination",
    "tally._pagination",
    "tally._cache_policy",
    "tally._binding",
    "tally._events",
    "tally._groups",
    "tally._limits",
    "tally._raw",
)
"""What the sync client's import leaves alone: msgspec and the public types (first decoded answer), the resources
and what only they need (first `client.<resource>`), pagination, the response cache's rules and raw responses."""


def test_importing_the_client_defers_msgspec_the_types_and_the_resources() -> None:
    loaded = _loaded_after("from tally import Tally")
    assert "tally._sync._client" in loaded
    assert not set(DEFERRED) & loaded


def test_the_deferred_parts_load_on_first_use() -> None:
    """A client made without them loads each on first use, and every public name still resolves."""
    code = (
        "import sys, tally\n"
        "from tally import Tally\n"
        "client = Tally(api_key='tk_org_' + 'x' * 32, base_url='http://127.0.0.1:9')\n"
        "experiments = client.experiments\n"
        "assert client.experiments is experiments and type(experiments).__name__ == 'Experiments'\n"
        "assert 'tally._sync._resources' in sys.modules\n"
        "assert client.with_options(max_retries=0).folders is not client.folders\n"
        "from tally import Experiment, Paginator, RawResponse, MetricEvent\n"
        "assert tally.Experiment is Experiment and Experiment.__module__ == 'tally._sync._objects'\n"
        "assert {'experiments', 'metrics', 'folders'} <= set(dir(client))\n"
        "client.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_a_client_imports_the_generated_packages_and_the_run_s_operations_only() -> None:
    """`Tally()` imports the generated packages (so that threads' first calls never meet one half imported:
    `tally._lazy`) and the few operations a training run sends, not every model and operation: any other call
    imports its own."""
    code = (
        "from tally import Tally\nTally(api_key='tk_org_' + 'x' * 32, base_url='http://127.0.0.1:9').close()"
    )
    loaded = _loaded_after(code)
    assert {"tally_api", "tally_api.models", "tally_api.api", "tally_api_types"} <= loaded
    assert set(RUN_OPERATIONS) <= loaded
    generated = {name for name in loaded if name.startswith(("tally_api.models.", "tally_api.api."))}
    assert len(generated) < 30, sorted(generated)  # of 100 or so
    assert not {"tally_api.api.folders", "tally_api.api.annotations", "tally_api.models.folder"} & generated
    assert "tally_api_types._models" not in loaded


def test_the_run_package_names_are_each_lazily_reachable() -> None:
    import tally.run

    lazy: dict[str, str] = tally.run._LAZY  # type: ignore[attr-defined]
    assert set(lazy) == set(tally.run.__all__)
    for name in lazy:
        assert getattr(tally.run, name) is getattr(importlib.import_module("tally.run" + lazy[name]), name)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        tally.run.nothing  # type: ignore[attr-defined]  # noqa: B018


def test_a_sender_process_starts_making_segments_ready_before_it_imports_a_client() -> None:
    """`sender="process"`: the child reads its instructions and starts its `Preparer` with these modules alone, so
    that it is making the parent's next segments ready a tenth of a second or more before it has a client
    (`tally.run._sender_wire` says why)."""
    loaded = _loaded_after("import tally.run._sender_wire, tally.run._spool")
    assert (
        not {"httpx", "tally.run._run", "tally.run._sender", "tally.run._capture", "tally._sync._client"}
        & loaded
    )
