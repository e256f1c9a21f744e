"""The `tally` command line (the `[cli]` extra): the API for people at a terminal, and for scripts.

The console script's entry point is `main`. It imports click only after checking that the extra is installed,
so a bare install answers `tally` with one line naming `tally-metrics[cli]` instead of a traceback. The commands
live in one module per group (`tally.cli.experiments`, ...), listed in `tally.cli._app.COMMANDS` and imported
only when run. Exit codes: see `tally.cli._errors`.
"""

from __future__ import annotations

import sys

__all__ = ["cli", "main"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tally.cli._app import cli


def main() -> None:
    """The console script's entry point."""
    from tally._extras import MissingExtraError, require

    try:
        require("click", "cli")
        require("rich", "cli")
    except MissingExtraError as error:
        from tally.cli._exit import CONFIG

        print(f"Error: {error}", file=sys.stderr)
        sys.exit(CONFIG)
    from tally.cli._app import cli

    sys.exit(cli.main(prog_name="tally", standalone_mode=True))


def __getattr__(name: str) -> object:
    if name == "cli":
        from tally.cli._app import cli

        return cli
    raise AttributeError(f"module 'tally.cli' has no attribute {name!r}")
