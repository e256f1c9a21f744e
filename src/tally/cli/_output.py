"""What commands print: JSON for scripts, rich tables for people at a terminal, plain tab-separated text when
piped.

- `--json` on a command that shows one thing prints one JSON document; on a list it prints JSON lines, one
  object per line, as pages arrive (stream it with `jq -c`). Field names are the API's (openapi/tally.yaml),
  so they are stable.
- Without `--json`: a rich table when stdout is a terminal (rich decides; `FORCE_COLOR=1` forces it), else
  tab-separated columns with a header line, for `cut`, `sort` and `awk`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import click
import msgspec

__all__ = ["Output", "cell", "json_option"]

_encoder = msgspec.json.Encoder()
_ID_WIDTH = 30  # `exp_` and a 26-character ULID


def json_option(command: Any) -> Any:
    """The `--json` flag every read command takes."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for scripts (one object per line for lists)."
    )(command)


def cell(value: Any) -> str:
    """A value as a table cell: short timestamps, `-` for nothing, `k=v` pairs for metadata."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dict):
        return ", ".join(f"{key}={item}" for key, item in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) or "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class Output:
    """Where one command's answer goes."""

    def __init__(self, as_json: bool) -> None:
        from rich.console import Console

        self.as_json = as_json
        self.console = Console(highlight=False, soft_wrap=False)

    @property
    def for_people(self) -> bool:
        """True when stdout is a terminal (or forced to be one): tables and colour."""
        return self.console.is_terminal

    def document(self, value: Any) -> None:
        """One JSON document."""
        sys.stdout.write(_encoder.encode(value).decode() + "\n")

    def lines(self, values: Iterable[Any]) -> int:
        """JSON lines, flushed as they come; returns how many."""
        count = 0
        for value in values:
            sys.stdout.write(_encoder.encode(value).decode() + "\n")
            count += 1
        sys.stdout.flush()
        return count

    def table(
        self, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
    ) -> int:
        """A rich table for people, tab-separated lines when piped; returns the number of rows."""
        count = 0
        if self.for_people:
            from rich.table import Table

            table = Table(title=title, title_justify="left")
            for name in columns:  # ids are copied into the next command: never cut them short
                is_id = name == "id" or name.endswith("_id")
                table.add_column(name, no_wrap=is_id, min_width=_ID_WIDTH if is_id else None)
            for row in rows:
                table.add_row(*(cell(value) for value in row))
                count += 1
            self.console.print(table)
            return count
        sys.stdout.write("\t".join(columns) + "\n")
        for row in rows:
            sys.stdout.write("\t".join(cell(value) for value in row) + "\n")
            count += 1
        sys.stdout.flush()
        return count

    def listing(
        self, items: Iterable[Any], columns: Sequence[str], *, title: str | None = None, empty: str
    ) -> None:
        """A list command's answer: the objects as JSON lines, or a table of their `columns` attributes with
        `empty` said (on stderr) when there are none. Items are read as they are listed, page by page."""
        if self.as_json:
            self.lines(items)
        elif self.table(columns, ([getattr(item, c) for c in columns] for item in items), title=title) == 0:
            self.note(empty)

    def fields(self, pairs: Sequence[tuple[str, Any]]) -> None:
        """One object as `field: value` lines."""
        width = max(len(name) for name, _ in pairs)
        for name, value in pairs:
            click.echo(f"{name + ':':<{width + 1}} {cell(value)}")

    def note(self, message: str) -> None:
        """A remark for people (stderr, so that stdout stays parseable)."""
        click.echo(message, err=True)
