"""How a failure becomes one line on stderr with the fix, and an exit code from `tally.cli._exit`.

The SDK's errors already read as one line (method, URL, status, code, message, request id); this module picks
the exit code and adds what to do about it.
"""

from __future__ import annotations

import click

from tally._errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    TallyError,
)
from tally._extras import MissingExtraError
from tally.cli import _exit

__all__ = ["CliFailure", "failure_for"]


class CliFailure(click.ClickException):
    """A one-line error with its exit code; click prints it as `Error: <message>` on stderr."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class; ours varies


def failure_for(error: Exception) -> CliFailure | None:
    """The CLI failure for an exception the SDK raised, or None when it is not one we know."""
    if isinstance(error, MissingExtraError):
        return CliFailure(str(error), _exit.CONFIG)
    if isinstance(error, ConfigurationError):
        return CliFailure(str(error), _exit.CONFIG)
    if isinstance(error, AuthenticationError):
        return CliFailure(
            f"{error} -- the API key was refused: run `tally auth login` or set TALLY_API_KEY", _exit.CONFIG
        )
    if isinstance(error, PermissionDeniedError):
        return CliFailure(
            f"{error} -- this key may not do that: use an organisation key (tk_org_...)", _exit.CONFIG
        )
    if isinstance(error, NotFoundError):
        return CliFailure(
            f"{error} -- check the id (`tally experiments list`, `tally folders tree`)", _exit.NOT_FOUND
        )
    if isinstance(error, APIConnectionError):
        return CliFailure(
            f"{error} -- is the server running? Set TALLY_BASE_URL or pass --base-url", _exit.UNREACHABLE
        )
    if isinstance(error, APIStatusError | TallyError):
        return CliFailure(str(error), _exit.API_ERROR)
    if isinstance(error, ValueError):  # the SDK's checks of arguments (a bad status, a bad page size, ...)
        return CliFailure(f"{error}", _exit.USAGE)
    return None
