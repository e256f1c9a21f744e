"""`tally auth login`, `tally auth logout` and `tally auth status`."""

from __future__ import annotations

import click

from tally._credentials import API_KEY_ENV, DEFAULT_BASE_URL
from tally._errors import TallyError
from tally._redact import redact
from tally.cli import _exit
from tally.cli._app import settings
from tally.cli._failures import CliFailure
from tally.cli._output import Output, json_option
from tally_credentials import credentials_path, remove_credentials, write_credentials

__all__ = ["auth"]


@click.group()
def auth() -> None:
    """Log in and check credentials."""


@auth.command("login")
@click.option("--api-key", prompt=True, hide_input=True, help="An organisation API key (tk_org_...).")
@click.option("--base-url", default=DEFAULT_BASE_URL, show_default=True, help="The server's URL.")
def login(api_key: str, base_url: str) -> None:
    """Check an API key against the server, then save it to the credentials file (mode 0600).

    \b
    Examples:
      tally auth login --api-key tk_org_... --base-url https://tally.example.com
      tally auth login                     # prompts for the key, without echo
    """
    from tally import Tally

    try:
        with Tally(api_key=api_key, base_url=base_url, max_retries=1) as client:
            status = client.auth.status()
    except TallyError as error:
        raise CliFailure(f"the key was not accepted, nothing saved: {error}", _exit.CONFIG) from None
    path = write_credentials(api_key, base_url.rstrip("/"))
    click.echo(
        f"Logged in to {base_url} as organisation {status.organization_name} ({status.key_kind} key "
        f"{redact(api_key)}); saved to {path}"
    )


@auth.command("logout")
def logout() -> None:
    """Remove the credentials file that `tally auth login` (or `tally serve`) wrote. The key stays valid on the
    server: revoke it there to end it. Nothing to remove is not an error.

    \b
    Examples:
      tally auth logout
      TALLY_CONFIG_DIR=~/.config/tally-staging tally auth logout
    """
    import os

    path = credentials_path()
    removed = remove_credentials(path)
    if removed is None:
        click.echo(f"Not logged in: {path} does not exist, nothing to remove.")
    else:
        key = removed.get("api_key")
        url = removed.get("base_url")
        what = f"key {redact(key)}" if isinstance(key, str) and key else "no key"
        where = f" for {url}" if isinstance(url, str) and url else ""
        click.echo(f"Logged out: removed {path} ({what}{where}).")
    if os.environ.get(API_KEY_ENV):
        click.echo(
            f"Note: {API_KEY_ENV} is still set in this environment; clients and commands still use it."
        )


@auth.command("status")
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show which credentials the SDK resolves and what the server says about them.

    \b
    Examples:
      tally auth status
      tally auth status --json | jq -r .credential_source
    """
    out = Output(as_json)
    with settings(ctx).client() as client:
        result = client.auth.status()
        base_url = client.base_url
    if as_json:
        out.document({**result.to_dict(), "base_url": base_url})
        return
    out.fields(
        [
            ("server", base_url),
            ("source", result.credential_source),
            ("organisation", f"{result.organization_name} ({result.organization_id})"),
            ("key", f"{result.key_id} ({result.key_kind})"),
            ("scopes", result.scopes),
        ]
    )
