"""Requests built from openapi/tally.yaml alone: an operation's parameters (its path item's included) and a URL
with every path parameter set to its schema's example, for tests that cover every operation of a kind."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from .writes import Contract, Op

__all__ = ["example_of", "parameters", "url_of"]


def parameters(contract: Contract, op: Op) -> list[dict[str, Any]]:
    """The operation's parameters with those of its path item, resolved."""
    item = contract.spec["paths"][op.path]
    return [contract.resolve(p) for p in [*item.get("parameters", []), *op.raw.get("parameters", [])]]


def example_of(contract: Contract, parameter: dict[str, Any]) -> str:
    """The parameter's example (or default) as it travels in a URL."""
    schema = contract.resolve(parameter["schema"])
    value = (schema.get("examples") or [schema.get("example", schema.get("default", "x"))])[0]
    return str(value).lower() if isinstance(value, bool) else str(value)


def url_of(contract: Contract, op: Op, **replaced: str) -> str:
    """`op`'s path with every path parameter set to its example, or to `replaced[name]`, percent-encoded."""
    values = {p["name"]: example_of(contract, p) for p in parameters(contract, op) if p["in"] == "path"}
    values.update(replaced)
    return re.sub(r"{(\w+)}", lambda m: quote(values[m.group(1)], safe=""), op.path)
