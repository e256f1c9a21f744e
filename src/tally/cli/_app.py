"""The root `tally` group: global options, the registry of command modules, and error translation.

Each entry of `COMMANDS` names a module and the click command in it; the module is imported only when its
command runs (or `--help` lists it), so `tally auth status` does not load plotting or the server. Adding a
command group is one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from tally.cli._failures import failure_for

if TYPE_CHECKING:
    from tally import Tally

__all__ = ["COMMANDS", "Settings", "cli"]

COMMANDS: dict[str, tuple[str, str]] = {
    "annotations": ("tally.cli.annotations", "annotations_group"),
    "artifacts": ("tally.cli.artifacts", "artifacts_group"),
    "auth": ("tally.cli.auth", "auth"),
    "completion": ("tally.cli.completion", "completion"),
    "experiments": ("tally.cli.experiments", "experiments"),
    "folders": ("tally.cli.folders", "folders"),
    "ingestion-keys": ("tally.cli.ingestion_keys", "ingestion_keys"),
    "metrics": ("tally.cli.metrics", "metrics"),
    "serve": ("tally_server.cli", "serve"),
    "sync": ("tally.cli.sync", "sync"),
    "ui": ("tally.cli.ui", "ui"),
}
"""`tally <name>` -> (module, attribute). `serve` is the reference server's command (the `[server]` extra)."""

_EXTRA_OF = {"tally_server.cli": "server"}


@dataclass(frozen=True)
class Settings:
    """The global options, handed to every command through the click context."""

    api_key: str | None
    base_url: str | None
    timeout: float

    def client(self) -> Tally:
        """A `Tally` with these settings; credentials resolve exactly as the SDK's do."""
        from tally import Tally

        return Tally(api_key=self.api_key, base_url=self.base_url, timeout=self.timeout)


class _Root(click.Group):
    """Loads commands from `COMMANDS` on demand, and turns SDK errors into one line and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = COMMANDS[cmd_name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            return _unavailable(cmd_name, _EXTRA_OF.get(module_name, "cli"), error)
        command: click.Command = getattr(module, attribute)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException:
            raise
        except Exception as error:
            failure = failure_for(error)
            if failure is None:
                raise
            raise failure from None


def _unavailable(name: str, extra: str, error: ModuleNotFoundError) -> click.Command:
    """A stand-in for a command whose extra is missing: listed in `--help` with the extra to install, and
    failing with that one line (exit code 3) whatever arguments it is given."""
    from tally._extras import missing_extra

    failure = failure_for(missing_extra(error, extra, f"`tally {name}`"))
    assert failure is not None

    def fail(**_: object) -> None:
        raise failure

    return click.Command(
        name,
        callback=fail,
        help=f"(not installed: pip install 'tally-metrics[{extra}]')",
        add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


@click.group(
    cls=_Root,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog="""\b
Examples:
  tally auth login --api-key tk_org_...      save a key (or set TALLY_API_KEY)
  tally folders tree                         the folder tree
  tally experiments list --status running    experiments still running
  tally metrics plot EXP1 EXP2 --name loss   loss curves in the terminal
  tally ui                                   the dashboard in your browser, logged in
  tally experiments list --json | jq -r .id  JSON lines for scripts

\b
Exit codes: 0 ok, 1 API error, 2 usage, 3 credentials or configuration, 4 not found, 5 server unreachable.
Shell completion: `tally completion bash` (or zsh, fish) prints the script to source.""",
)
@click.option("--api-key", metavar="KEY", help="API key (default: TALLY_API_KEY, then the credentials file).")
@click.option(
    "--base-url", metavar="URL", help="Server URL (default: TALLY_BASE_URL, the file, http://127.0.0.1:8787)."
)
@click.option(
    "--timeout", type=float, default=10.0, show_default=True, help="Seconds to wait for each request."
)
@click.version_option(package_name="tally-metrics", prog_name="tally")
@click.pass_context
def cli(ctx: click.Context, api_key: str | None, base_url: str | None, timeout: float) -> None:
    """Tally: experiment metrics from the command line.

    Credentials resolve as the SDK's do: --api-key, then TALLY_API_KEY, then the file `tally auth login` writes.
    """
    ctx.obj = Settings(api_key=api_key, base_url=base_url, timeout=timeout)


def settings(ctx: click.Context) -> Settings:
    """The global options of the running command."""
    root = ctx.find_root().obj
    if isinstance(root, Settings):
        return root
    return Settings(api_key=None, base_url=None, timeout=10.0)
