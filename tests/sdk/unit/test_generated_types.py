"""The public-types generator (scripts/generate_public_types.py), run on modified copies of the spec: a property
added to a response schema reaches the public type with no edit under src/, and the generator's rules hold."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest
import yaml

import tally

from .test_faults import EXPERIMENT

ROOT = Path(__file__).resolve().parents[3]
SPEC = yaml.safe_load((ROOT / "openapi" / "tally.yaml").read_text(encoding="utf-8"))


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return _load("generate_public_types", ROOT / "scripts" / "generate_public_types.py")


def generate(generator: ModuleType, spec: dict[str, Any], tmp_path: Path, name: str) -> ModuleType:
    spec_path = tmp_path / "tally.yaml"
    spec_path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    out = tmp_path / name
    out.mkdir()
    generator.write(spec_path, out)
    return _load(name, out / "__init__.py")


def test_a_new_optional_response_property_reaches_the_public_type(
    generator: ModuleType, tmp_path: Path
) -> None:
    spec = yaml.safe_load(yaml.safe_dump(SPEC))
    experiment = spec["components"]["schemas"]["Experiment"]
    experiment["properties"]["tags"] = {
        "type": "array",
        "items": {"type": "string"},
        "default": [],
        "description": "Labels.",
    }
    experiment["properties"]["archived_at"] = {"type": ["string", "null"], "format": "date-time"}
    types = generate(generator, spec, tmp_path, "scratch_types_tags")

    older_server = msgspec.json.decode(msgspec.json.encode(EXPERIMENT), type=types.Experiment)
    assert (older_server.tags, older_server.archived_at) == ((), None)
    newer = msgspec.json.decode(
        msgspec.json.encode({**EXPERIMENT, "tags": ["a", "b"], "archived_at": "2026-11-24T00:00:00Z"}),
        type=types.Experiment,
    )
    assert newer.tags == ("a", "b")
    assert newer.archived_at.year == 2026
    assert list(newer.to_dict()["tags"]) == ["a", "b"]
    with pytest.raises(AttributeError):
        newer.tags = ()  # type: ignore[misc]
    # The committed types are this generator's output for today's spec, and tally.Experiment is that class with
    # methods that act (tally._sync._objects), no field added.
    assert (
        tally.Experiment.__bases__[-1].__module__ == "tally_api_types._models"
    )  # re-exported by tally_api_types
    assert tally.Experiment.__struct_fields__ == tally.Experiment.__bases__[-1].__struct_fields__
    assert set(types.Experiment.__struct_fields__) == set(tally.Experiment.__struct_fields__) | {
        "tags",
        "archived_at",
    }


def test_output_is_deterministic_and_matches_the_committed_package(
    generator: ModuleType, tmp_path: Path
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        out.mkdir()
        generator.write(ROOT / "openapi" / "tally.yaml", out)
    committed = ROOT / "generated" / "tally_api_types"
    for name in ("__init__.py", "operations.py"):
        assert (first / name).read_bytes() == (second / name).read_bytes() == (committed / name).read_bytes()


def test_open_enumerations_never_fail_to_decode() -> None:
    unknown = msgspec.json.decode(
        msgspec.json.encode({**EXPERIMENT, "status": "paused"}), type=tally.Experiment
    )
    assert unknown.status == "paused"
    assert tally.ExperimentStatus.RUNNING == "running"


def test_a_missing_required_property_is_still_an_error() -> None:
    body = {k: v for k, v in EXPERIMENT.items() if k != "name"}
    with pytest.raises(msgspec.ValidationError, match="name"):
        msgspec.json.decode(msgspec.json.encode(body), type=tally.Experiment)


def test_an_unsupported_construct_stops_the_generator_with_its_path(
    generator: ModuleType, tmp_path: Path
) -> None:
    spec = yaml.safe_load(yaml.safe_dump(SPEC))
    spec["components"]["schemas"]["Experiment"]["properties"]["size"] = {
        "oneOf": [{"type": "integer"}, {"type": "string"}]
    }
    with pytest.raises(generator.UnsupportedSchema, match=r"Experiment\.size"):
        generate(generator, spec, tmp_path, "scratch_types_bad")


def test_every_operation_has_a_row_with_its_response_type() -> None:
    from tally_api_types.operations import OPERATIONS

    spec_ids = {
        operation["operationId"]
        for item in SPEC["paths"].values()
        for method, operation in item.items()
        if method in ("get", "put", "post", "delete", "patch")
    }
    assert set(OPERATIONS) == spec_ids
    assert issubclass(tally.Experiment, OPERATIONS["getExperiment"].response)
    assert OPERATIONS["ingestMetrics"].auth == "ingestion"
    assert OPERATIONS["getHealth"].auth == "none"
    for row in OPERATIONS.values():
        importlib.import_module(row.module)  # every row names a generated module


def test_make_generate_alone_puts_a_new_property_on_tally_types(tmp_path: Path) -> None:
    """End to end, with src/ untouched: a modified spec, `scripts/generate.py --spec ... --target ...`, then
    `import tally` from this checkout's src/ over the scratch generated packages."""
    spec = yaml.safe_load(yaml.safe_dump(SPEC))
    schemas = spec["components"]["schemas"]
    schemas["Experiment"]["properties"]["tags"] = {
        "type": "array",
        "items": {"type": "string"},
        "default": [],
    }
    schemas["AuthStatus"]["properties"]["region"] = {"type": ["string", "null"]}  # a type the SDK subclasses
    spec_path = tmp_path / "tally.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    generated = tmp_path / "generated"
    command = [sys.executable, "scripts/generate.py", "--spec", str(spec_path), "--target", str(generated)]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    probe = (
        "import msgspec, tally\n"
        "body = msgspec.json.encode({'id': 'e', 'name': 'n', 'metadata': {}, 'status': 'running',\n"
        "    'created_at': '2026-11-23T10:00:00Z', 'updated_at': '2026-11-23T10:00:00Z', 'tags': ['x']})\n"
        "print(msgspec.json.decode(body, type=tally.Experiment).tags)\n"
        "fields = tally.AuthStatus.__struct_fields__\n"
        "print('region' in fields, 'credential_source' in fields)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(generated), str(ROOT / "src")])}
    output = subprocess.run(
        [sys.executable, "-c", probe], env=env, check=True, capture_output=True, text=True
    )
    assert output.stdout.split("\n")[:2] == ["('x',)", "True True"]
