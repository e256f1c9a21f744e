"""The README's configuration table lists every setting the SDK reads, and nothing it does not (issue 19).

The settings are found in the code, never in a hand-kept list: every `TALLY_*` environment variable that
`src/tally` or `src/tally_credentials` reads (an AST scan for `os.environ.get(...)`, `env[...]`, `os.getenv(...)`,
with module constants such as `MODE_ENV = "TALLY_MODE"` resolved), every argument of `Tally(...)` and
`tally.configure(...)`, every field of `tally.ClientConfig`, and every key the credentials file is read for.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import re
from pathlib import Path

import tally
from tally import AsyncTally, Tally
from tally._credentials import CredentialsFile
from tally.cli import cli

ROOT = Path(__file__).resolve().parents[3]
SOURCES = [ROOT / "src" / "tally", ROOT / "src" / "tally_credentials"]
ENV_NAME = re.compile(r"TALLY_[A-Z0-9_]+")


def _constants(trees: list[ast.Module]) -> dict[str, str]:
    """Module-level `NAME = "TALLY_..."` of every module (names are unique enough across the package)."""
    found: dict[str, str] = {}
    for tree in trees:
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
                and ENV_NAME.fullmatch(node.value.value)
            ):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found[target.id] = node.value.value
    return found


def _is_environment(node: ast.expr) -> bool:
    text = ast.unparse(node)
    return "environ" in text or text in ("env", "environment")


@functools.cache
def environment_reads() -> frozenset[str]:
    """Every `TALLY_*` variable the SDK's code reads from the environment."""
    trees = [ast.parse(path.read_text()) for source in SOURCES for path in source.rglob("*.py")]
    constants = _constants(trees)

    def name_of(node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            value = node.value
        elif isinstance(node, ast.Name) and node.id in constants:
            value = constants[node.id]
        else:
            return None
        return value if ENV_NAME.fullmatch(value) else None

    read: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            key: ast.expr | None = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
                if node.func.attr == "getenv" or (
                    node.func.attr == "get" and _is_environment(node.func.value)
                ):
                    key = node.args[0]
            elif isinstance(node, ast.Subscript) and _is_environment(node.value):
                key = node.slice
            name = name_of(key) if key is not None else None
            if name:
                read.add(name)
    return frozenset(read)


def table() -> list[list[str]]:
    """The rows of the table under `## Configuration reference`, as cells."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def ticked(cell: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", cell))


def test_the_scan_finds_what_it_must() -> None:
    """The scanner itself works: these are read in several different ways (literal, constant, subscript)."""
    assert {"TALLY_API_KEY", "TALLY_MODE", "TALLY_LOG", "TALLY_SPOOL_DIR", "TALLY_FLUSH_TIMEOUT"} <= (
        environment_reads()
    )


def test_every_environment_variable_is_in_the_table_and_no_other() -> None:
    listed = {name for row in table() for name in ENV_NAME.findall(row[2])}
    assert listed == environment_reads()


def test_every_argument_is_in_the_table() -> None:
    arguments: set[str] = set()
    for row in table():
        for cell in ticked(row[0]):
            arguments.add(re.sub(r".*\((\w+)=\)$", r"\1", cell))
    for function in (Tally, AsyncTally, tally.configure):
        parameters = {
            name
            for name, parameter in inspect.signature(function).parameters.items()
            if parameter.kind is not inspect.Parameter.VAR_KEYWORD
        }
        assert parameters <= arguments, f"{function.__name__}: {sorted(parameters - arguments)}"
    fields = {
        field.name for field in dataclasses.fields(tally.ClientConfig) if not field.name.endswith("_source")
    }
    assert fields <= arguments, sorted(fields - arguments)
    assert "flush_timeout" in inspect.signature(Tally.run).parameters


def test_every_credentials_file_key_is_in_the_table() -> None:
    read_for = {field.name for field in dataclasses.fields(CredentialsFile)} - {"path", "state", "problem"}
    listed = {key for row in table() for key in ticked(row[3])}
    assert listed == read_for


def test_the_cli_options_exist() -> None:
    global_options = {option for parameter in cli.params for option in getattr(parameter, "opts", [])}
    for row in table():
        for option in ticked(row[1]):
            if option.startswith("--"):
                assert option in global_options, option
