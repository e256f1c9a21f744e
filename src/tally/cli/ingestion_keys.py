"""`tally ingestion-keys`: list, show, create (the token is shown once), revoke."""

from __future__ import annotations

import click

from tally._pagination import MAX_PAGE_SIZE
from tally.cli._app import settings
from tally.cli._output import Output, json_option

__all__ = ["ingestion_keys"]

_COLUMNS = ("id", "name", "token_hint", "created_at", "revoked_at")


@click.group("ingestion-keys")
def ingestion_keys() -> None:
    """Per-experiment keys that may ingest metrics and create annotations."""


@ingestion_keys.command("list")
@click.argument("experiment_id")
@json_option
@click.pass_context
def list_(ctx: click.Context, experiment_id: str, as_json: bool) -> None:
    """An experiment's ingestion keys, revoked ones included. Tokens are never listed.

    \b
    Examples:
      tally ingestion-keys list exp_...
      tally ingestion-keys list exp_... --json | jq -r 'select(.revoked_at == null) | .id'
    """
    out = Output(as_json)
    with settings(ctx).client() as client:
        keys = client.ingestion_keys.list(experiment_id, page_size=MAX_PAGE_SIZE)
        out.listing(keys, _COLUMNS, title="ingestion keys", empty="no ingestion keys")


@ingestion_keys.command("show")
@click.argument("key_id")
@json_option
@click.pass_context
def show(ctx: click.Context, key_id: str, as_json: bool) -> None:
    """One ingestion key (revoked or expired ones too); never its token.

    \b
    Examples:
      tally ingestion-keys show ik_...
      tally ingestion-keys show ik_... --json | jq .revoked_at
    """
    out = Output(as_json)
    with settings(ctx).client() as client:
        key = client.ingestion_keys.get(key_id)
    if as_json:
        out.document(key)
        return
    out.fields(
        [
            ("id", key.id),
            ("experiment", key.experiment_id),
            ("name", key.name),
            ("token hint", key.token_hint),
            ("created", key.created_at),
            ("revoked", key.revoked_at),
            ("expires", key.expires_at),
        ]
    )


@ingestion_keys.command("create")
@click.argument("experiment_id")
@click.option("--name", help="A name to recognise the key by.")
@json_option
@click.pass_context
def create(ctx: click.Context, experiment_id: str, name: str | None, as_json: bool) -> None:
    """Create an ingestion key and print its token: it is shown this once, never again.

    \b
    Examples:
      tally ingestion-keys create exp_... --name trainer-node-3
      TOKEN=$(tally ingestion-keys create exp_...)
    """
    with settings(ctx).client() as client:
        key = client.ingestion_keys.create(experiment_id, name=name)
    if as_json:
        Output(True).document({**key.to_dict(), "token": key.token})
        return
    click.echo(key.token)
    click.echo(f"ingestion key {key.id} created; the token above is shown only once", err=True)


@ingestion_keys.command("revoke")
@click.argument("key_id")
@json_option
@click.pass_context
def revoke(ctx: click.Context, key_id: str, as_json: bool) -> None:
    """Revoke an ingestion key (revoking it again changes nothing).

    \b
    Examples:
      tally ingestion-keys revoke ik_...
    """
    with settings(ctx).client() as client:
        key = client.ingestion_keys.revoke(key_id)
    if as_json:
        Output(True).document(key)
    else:
        click.echo(f"{key.id} revoked at {key.revoked_at}")
