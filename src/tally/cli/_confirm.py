"""Asking before a command does what cannot be undone: `--yes` skips the question (for scripts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

__all__ = ["confirm_or_abort", "yes_option"]


def yes_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """The `--yes` flag of every command that deletes."""
    return click.option("--yes", "-y", "yes", is_flag=True, help="Do not ask for confirmation.")(command)


def confirm_or_abort(question: str, yes: bool) -> None:
    """Go on when `--yes` was given or the user answers yes; otherwise stop with click's Abort ("Aborted!",
    exit code 1) having done nothing. Without a terminal to ask (stdin at end of file) the answer is no, so a
    script that forgot `--yes` fails rather than deletes."""
    if not yes:
        click.confirm(question, abort=True, err=True)
