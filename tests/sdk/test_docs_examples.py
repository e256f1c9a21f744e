"""Every Python example of the SDK documentation runs, against the live reference server."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tally_server import RunningServer

DOC = Path(__file__).resolve().parents[2] / "README.md"
"""The document whose ```python blocks are run."""

pytestmark = [
    pytest.mark.integration,
    # The framework examples: the frameworks' own deprecation notices and advice are theirs, not the example's.
    *(
        pytest.mark.filterwarnings(f"ignore::Warning:{module}.*")
        for module in ("lightning", "torch", "transformers", "accelerate", "keras", "jax")
    ),
]

OPTIONAL = ("torch", "lightning", "transformers", "keras", "numpy")
"""Packages an example may need that the SDK's extras do not bring (the framework integrations' examples): an
example that imports one that is not installed is skipped, not failed (`uv sync --no-group frameworks`)."""


def examples() -> list[tuple[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    found: list[tuple[str, str]] = []
    heading = "top"
    for match in re.finditer(r"^(#+ [^\n]*)$|^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        if match.group(1):
            heading = match.group(1).lstrip("# ").strip()
        else:
            found.append((f"{heading}-{len(found)}", match.group(2)))
    return found


EXAMPLES = examples()


def test_the_document_has_examples() -> None:
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("code", [code for _, code in EXAMPLES], ids=[name for name, _ in EXAMPLES])
def test_example_runs(code: str, live_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    skip_without_its_framework(code)
    monkeypatch.setenv("TALLY_BASE_URL", live_server.url)
    monkeypatch.setenv("TALLY_API_KEY", live_server.api_key)
    exec(compile(code, str(DOC), "exec"), {"__name__": "__docs__"})  # noqa: S102 - our own documentation


def skip_without_its_framework(code: str) -> None:
    for module in re.findall(r"^(?:import|from) (\w+)", code, flags=re.MULTILINE):
        if module in OPTIONAL and importlib.util.find_spec(module) is None:
            pytest.skip(f"the example needs {module}, which is not installed")


CREDENTIALS = [code for name, code in EXAMPLES if name.startswith("Credentials-")]


@pytest.mark.parametrize("code", CREDENTIALS, ids=[f"Credentials-{i}" for i in range(len(CREDENTIALS))])
def test_credentials_examples_run_with_the_file_alone(
    code: str, live_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a user after `tally auth login`: no TALLY_API_KEY, no TALLY_BASE_URL, only the credentials file (in
    the temporary TALLY_CONFIG_DIR of the `isolated` fixture)."""
    from tally_credentials import write_credentials

    monkeypatch.delenv("TALLY_API_KEY", raising=False)
    monkeypatch.delenv("TALLY_BASE_URL", raising=False)
    write_credentials(live_server.api_key, live_server.url)
    exec(compile(code, str(DOC), "exec"), {"__name__": "__docs__"})  # noqa: S102 - our own documentation


def test_there_are_credentials_examples() -> None:
    assert len(CREDENTIALS) >= 3
