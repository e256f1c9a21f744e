"""Every Python example of the SDK documentation runs, against the live reference server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tally_server import RunningServer

DOC = Path(__file__).resolve().parents[2] / "README.md"
"""The document whose ```python blocks are run."""

pytestmark = pytest.mark.integration


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
    monkeypatch.setenv("TALLY_BASE_URL", live_server.url)
    monkeypatch.setenv("TALLY_API_KEY", live_server.api_key)
    exec(compile(code, str(DOC), "exec"), {"__name__": "__docs__"})  # noqa: S102 - our own documentation
