"""The integrations cost nothing until used: `import tally` (and `tally.integrations`) loads no framework, and an
integration whose framework is missing says which extra to install, in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

FRAMEWORKS = ("torch", "lightning", "pytorch_lightning", "transformers", "keras", "jax", "tensorflow")


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_importing_tally_imports_no_framework() -> None:
    code = (
        "import sys\n"
        "import tally, tally.integrations, tally.run\n"
        "from tally import Tally\n"
        "Tally(api_key='tk_org_' + 'x' * 32, base_url='http://127.0.0.1:9').close()\n"
        f"print(sorted(name for name in {FRAMEWORKS!r} if name in sys.modules))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "blocked", "extra"),
    [
        ("lightning", ("lightning", "pytorch_lightning"), "lightning"),
        ("transformers", ("transformers",), "transformers"),
        ("keras", ("keras",), "keras"),
    ],
)
def test_a_missing_framework_names_its_extra(module: str, blocked: tuple[str, ...], extra: str) -> None:
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None  # as if not installed\n"
        "from tally._extras import MissingExtraError\n"
        "try:\n"
        f"    import tally.integrations.{module}\n"
        "except MissingExtraError as error:\n"
        "    print(error)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert f"pip install 'tally-metrics[{extra}]'" in result.stdout
    assert f"tally.integrations.{module}" in result.stdout
