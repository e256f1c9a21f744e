"""The `tally` command: `tally serve`, `tally auth login`, `tally auth status`.

`tally serve` is the reference server's command, imported only when it is run, so the SDK's CLI does not
load the server otherwise.
"""

from __future__ import annotations

import sys

import click

from tally._credentials import (
    DEFAULT_BASE_URL,
    credentials_path,
    redact,
    write_credentials_file,
)
from tally._errors import TallyError

__all__ = ["cli", "main"]


class _LazyGroup(click.Group):
    """A group whose `serve` command comes from `tally_server.cli` when it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), "serve"})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "serve" and cmd_name not in self.commands:
            try:
                from tally_server.cli import serve
            except ImportError as exc:  # pragma: no cover - only without the server's dependencies
                raise click.ClickException(f"`tally serve` needs the reference server: {exc}") from exc
            return serve
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup)
@click.version_option(package_name="tally-metrics")
def cli() -> None:
    """Tally: experiment metrics from the command line."""


@cli.group()
def auth() -> None:
    """Log in and check credentials."""


@auth.command("login")
@click.option("--api-key", prompt=True, hide_input=True, help="An organisation API key (tk_org_...).")
@click.option("--base-url", default=DEFAULT_BASE_URL, show_default=True, help="The server's URL.")
def login(api_key: str, base_url: str) -> None:
    """Check an API key against the server, then save it to the credentials file (mode 0600)."""
    from tally._sync._client import Tally

    try:
        with Tally(api_key=api_key, base_url=base_url, max_retries=1) as client:
            status = client.auth.status()
    except TallyError as error:
        raise click.ClickException(f"the key was not accepted, nothing saved: {error}") from error
    path = write_credentials_file(api_key, base_url.rstrip("/"), credentials_path())
    click.echo(
        f"Logged in to {base_url} as organisation {status.organization_name} ({status.key_kind} key "
        f"{redact(api_key)}); saved to {path}"
    )


@auth.command("status")
def status() -> None:
    """Show which credentials the SDK resolves and what the server says about them."""
    from tally._sync._client import Tally

    try:
        with Tally() as client:
            result = client.auth.status()
            base_url = client.base_url
    except TallyError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"server:       {base_url}")
    click.echo(f"source:       {result.credential_source}")
    click.echo(f"organisation: {result.organization_name} ({result.organization_id})")
    click.echo(f"key:          {result.key_id} ({result.key_kind})")
    click.echo(f"scopes:       {', '.join(result.scopes)}")


def main() -> None:
    """The console script's entry point."""
    sys.exit(cli.main(standalone_mode=True))


if __name__ == "__main__":
    main()
