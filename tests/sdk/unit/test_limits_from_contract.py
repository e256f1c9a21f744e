"""The SDK and the CLI take the contract's limits from `tally_api_types.limits` (generated from
openapi/tally.yaml), never restated by hand (issue 22: 10,000 events per request was written in three places).

The scan reads src/tally with `ast`: no `page_size=` passed as a literal number, no `limit=` that is one of the
contract's limits (a display cap such as "the first 50 names" is the CLI's own), and no constant whose
value is one of the contract's limits under a name that says it is one. What is not a limit of the contract but
of this SDK (a default page size, the run's read chunk) is listed with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import yaml
from tally_api_types import limits

SRC = Path(__file__).resolve().parents[3] / "src" / "tally"
SPEC = yaml.safe_load((Path(__file__).resolve().parents[3] / "openapi" / "tally.yaml").read_text())
LIMIT_WORDS = ("BATCH", "PAGE", "MAX", "LIMIT", "SERIES", "EVENTS", "BYTES")
CONTRACT_VALUES = {
    value for name, value in vars(limits).items() if name.isupper() and type(value) is int and value > 1
}
"""The contract's numeric limits (0 and 1, the minimums, say nothing when they appear in code)."""
NOT_CONTRACT = {
    "DEFAULT_PAGE_SIZE": "the spec's default page size (a default, not a constraint: limits.py holds constraints); "
    "tests/sdk/unit/test_types_match_spec.py checks it against the spec",
}


def _int_literal(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int


def test_no_page_size_or_contract_limit_is_a_literal() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.keyword) and _int_literal(node.value)):
                continue
            value = node.value.value  # type: ignore[attr-defined]
            if node.arg == "page_size" or (node.arg == "limit" and value in CONTRACT_VALUES):
                found.append(
                    f"{path.relative_to(SRC)}:{node.value.lineno}: {node.arg}={ast.unparse(node.value)}"
                )
    assert not found, "use the contract's limit (tally_api_types.limits): " + "; ".join(found)


def test_no_contract_limit_is_restated() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None:
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            value = node.value
            if not (_int_literal(value) and value.value in CONTRACT_VALUES):  # type: ignore[attr-defined]
                continue
            for name in names:
                if any(word in name.upper() for word in LIMIT_WORDS) and name not in NOT_CONTRACT:
                    found.append(f"{path.relative_to(SRC)}:{node.lineno}: {name} = {ast.unparse(value)}")
    assert not found, "read it from tally_api_types.limits: " + "; ".join(found)


def test_the_sdks_limits_are_the_contracts() -> None:
    from tally._events import MAX_BATCH_BYTES, MAX_BATCH_EVENTS
    from tally._pagination import MAX_PAGE_SIZE, MIN_PAGE_SIZE
    from tally.run._sender import BATCH_EVENTS

    assert BATCH_EVENTS == MAX_BATCH_EVENTS == limits.INGEST_METRICS_REQUEST_EVENTS_MAX_ITEMS
    assert (MIN_PAGE_SIZE, MAX_PAGE_SIZE) == (limits.PAGE_SIZE_MINIMUM, limits.PAGE_SIZE_MAXIMUM)
    too_large = SPEC["components"]["responses"]["PayloadTooLarge"]["content"]["application/json"]
    details = too_large["example"]["error"]["details"]
    assert details == {"max_events": MAX_BATCH_EVENTS, "max_bytes": MAX_BATCH_BYTES}
