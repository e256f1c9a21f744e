"""Option types shared by the commands: `key=value` pairs for metadata."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

__all__ = ["metadata_option", "pairs"]


def pairs(values: tuple[str, ...], option: str = "--metadata") -> dict[str, str]:
    """`("split=train", "seed=1")` -> `{"split": "train", "seed": "1"}`; a value without `=` is a usage error."""
    result: dict[str, str] = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(
                f"{value!r} is not KEY=VALUE (for example split=train)", param_hint=option
            )
        result[key] = item
    return result


def metadata_option(help_text: str) -> Callable[[Any], Any]:
    return click.option("--metadata", "metadata", multiple=True, metavar="KEY=VALUE", help=help_text)
