"""The contract's tooling fails when it should: a hand edit of generated/, a breaking change to the spec."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SPEC: dict[str, Any] = yaml.safe_load((ROOT / "openapi" / "tally.yaml").read_text(encoding="utf-8"))
OPTIC = ROOT / "tools" / "node" / "node_modules" / ".bin" / "optic"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_check_generated_passes_on_the_committed_copy() -> None:
    result = run("scripts/generate.py", "--check")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("edited", ["tally_api/client.py", "tally_api_types/__init__.py"])
def test_check_generated_fails_on_a_hand_edit(tmp_path: Path, edited: str) -> None:
    copy_of_generated = tmp_path / "generated"
    shutil.copytree(ROOT / "generated", copy_of_generated, ignore=shutil.ignore_patterns("__pycache__"))
    assert run("scripts/generate.py", "--check", "--target", copy_of_generated).returncode == 0
    target = copy_of_generated / edited
    target.write_text(target.read_text(encoding="utf-8") + "\n# a hand edit\n", encoding="utf-8")
    result = run("scripts/generate.py", "--check", "--target", copy_of_generated)
    assert result.returncode == 1
    assert edited in result.stderr


def required_response_property_made_optional(spec: dict[str, Any]) -> None:
    spec["components"]["schemas"]["Experiment"]["required"].remove("status")


def optional_query_parameter_made_required(spec: dict[str, Any]) -> None:
    parameters = spec["paths"]["/v1/experiments"]["get"]["parameters"]
    next(p for p in parameters if p.get("name") == "name_prefix")["required"] = True


def a_new_optional_response_property(spec: dict[str, Any]) -> None:
    spec["components"]["schemas"]["Experiment"]["properties"]["tags"] = {
        "type": "array",
        "items": {"type": "string"},
    }


def a_break_with_the_major_version_raised(spec: dict[str, Any]) -> None:
    required_response_property_made_optional(spec)
    spec["info"]["version"] = "2.0.0"


# mutation -> whether spec-diff must pass
CASES: dict[str, tuple[Callable[[dict[str, Any]], None], bool]] = {
    "required response property made optional": (required_response_property_made_optional, False),
    "optional query parameter made required": (optional_query_parameter_made_required, False),
    "new optional response property": (a_new_optional_response_property, True),
    "break with the major version raised": (a_break_with_the_major_version_raised, True),
}


@pytest.fixture(scope="module")
def spec_diff_results(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run every case's spec-diff at once: Optic takes seconds per run and the machine has two cores."""
    if not OPTIC.exists():
        pytest.fail("Optic is not installed: run `make install`")
    folder = tmp_path_factory.mktemp("spec-diff")
    base = folder / "base.yaml"
    base.write_text(yaml.safe_dump(SPEC, sort_keys=False), encoding="utf-8")
    jobs: dict[str, tuple[str | Path, ...]] = {}
    for index, (name, (mutate, _)) in enumerate(CASES.items()):
        head_spec = copy.deepcopy(SPEC)
        mutate(head_spec)
        head = folder / f"head-{index}.yaml"
        head.write_text(yaml.safe_dump(head_spec, sort_keys=False), encoding="utf-8")
        jobs[name] = ("scripts/spec_diff.py", "--base-file", base, "--head-file", head)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run, *args) for name, args in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_spec_diff_fails_exactly_on_breaking_changes(
    case: str, spec_diff_results: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    result = spec_diff_results[case]
    must_pass = CASES[case][1]
    assert (result.returncode == 0) == must_pass, result.stdout[-3000:] + result.stderr[-3000:]
