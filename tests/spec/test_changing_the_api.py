"""The README's "Changing the API", run in a scratch copy of the repository: add an optional property to a create
operation (request and response) and a new operation to the spec, regenerate, and check what the suite reports
for each step left undone. Only the generator and the relevant tests run, with this environment's Python and the
copy's `src/` and `generated/` first on the path.

(That the new response property appears on the public type with no edit under `src/` is the generated types'
part of issue 9; its assertion joins this test where those types are generated.)
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NEW_PROPERTY = "color"  # on CreateFolderRequest and Folder, optional in both
NEW_OPERATION = "getExperimentDigest"  # GET /v1/experiments/{experiment_id}/digest (not in the contract)
NEW_PATH = "/v1/experiments/{experiment_id}/digest"


def _copy_repository(target: Path) -> None:
    """The working tree as git sees it (tracked and untracked files, not the ignored ones: no .venv); without
    git, the tree minus environments and caches."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.split(b"\0")
    except (OSError, subprocess.CalledProcessError):
        ignored = shutil.ignore_patterns(
            ".git", ".venv", "node_modules", "__pycache__", ".*_cache", ".make", ".bench"
        )
        shutil.copytree(ROOT, target, ignore=ignored)
        return
    for name in filter(None, (entry.decode() for entry in listed)):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _change_the_spec(spec_path: Path) -> None:
    spec: dict[str, Any] = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    schemas = spec["components"]["schemas"]
    schemas["CreateFolderRequest"]["properties"][NEW_PROPERTY] = {"type": "string", "maxLength": 32}
    schemas["Folder"]["properties"][NEW_PROPERTY] = {"type": "string", "description": "Absent when unset."}
    template = spec["paths"]["/v1/experiments/{experiment_id}"]
    operation = copy.deepcopy(template["get"])
    operation["operationId"] = NEW_OPERATION
    operation["summary"] = "A digest of one experiment."
    spec["paths"][NEW_PATH] = {"parameters": copy.deepcopy(template.get("parameters", [])), "get": operation}
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _run(scratch: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(scratch / "src"), str(scratch / "generated")]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),  # ruff
    }
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, *args],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository with the spec changed and `make generate` run, and nothing else done."""
    root = tmp_path_factory.mktemp("changing-the-api") / "repo"
    _copy_repository(root)
    _change_the_spec(root / "openapi" / "tally.yaml")
    generated = _run(root, "scripts/generate.py")
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert (root / "generated/tally_api/api/experiments/get_experiment_digest.py").is_file()
    return root


def test_the_copy_runs_its_own_code(scratch: Path) -> None:
    where = _run(
        scratch, "-c", "import tally, tally_api, tally_server; print(tally.__file__, tally_api.__file__)"
    )
    assert where.returncode == 0, where.stderr
    assert all(path.startswith(str(scratch)) for path in where.stdout.split()), where.stdout


def test_the_new_response_property_is_on_the_public_type(scratch: Path) -> None:
    """No edit under src/: `make generate` alone puts the new optional property on `tally.Folder`."""
    result = _run(scratch, "-c", "import msgspec, tally; print(msgspec.structs.fields(tally.Folder))")
    assert result.returncode == 0, result.stderr
    assert f"name='{NEW_PROPERTY}'" in result.stdout


def test_the_curated_method_check_names_the_new_operation_and_the_new_parameter(scratch: Path) -> None:
    result = _run(scratch, "-m", "pytest", "-q", "tests/sdk/unit/test_curated_methods.py")
    report = result.stdout + result.stderr
    assert result.returncode == 1, report
    for client in ("AsyncTally", "Tally"):
        assert (
            f"operation {NEW_OPERATION} (GET {NEW_PATH}) has no curated method on {client}: add one in "
            "src/tally/_async/_resources.py"
        ) in report
        create = f"{client}.folders.create (wrapping createFolder (POST /v1/folders))"
        assert f"{create} has no parameter `{NEW_PROPERTY}`" in report
    assert "RAW_ONLY_OPERATIONS" in report  # the other way out, for an operation left to client.request()


def test_the_server_refuses_to_start_naming_the_missing_handler(scratch: Path) -> None:
    result = _run(scratch, "-c", "from tally_server.app import create_app; create_app().state.repo.close()")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"operation {NEW_OPERATION} (GET {NEW_PATH}) has no handler" in result.stderr
    assert "src/tally_server/handlers/" in result.stderr


def test_a_request_property_the_server_drops_fails_the_keeps_what_it_accepts_check(scratch: Path) -> None:
    """With a handler for the new operation (so that the server starts) but nothing stored for the new property:
    the server accepts `color` (its validation follows the spec) and answers without it."""
    handlers = scratch / "src/tally_server/handlers/experiments.py"
    text = handlers.read_text(encoding="utf-8")
    marker = "HANDLERS: dict[str, Handler] = {\n"
    assert marker in text
    handlers.write_text(
        text.replace(marker, f'{marker}    "{NEW_OPERATION}": get_experiment,\n'), encoding="utf-8"
    )
    result = _run(
        scratch,
        "-m",
        "pytest",
        "-q",
        "tests/server/test_keeps_what_it_accepts.py",
        "-k",
        "sqlite and createFolder",
    )
    report = result.stdout + result.stderr
    assert result.returncode == 1, report
    assert f"createFolder (POST /v1/folders) accepted `{NEW_PROPERTY}` = " in report
    assert "the server must store and return it" in report
