"""A client, as a run's sender process rebuilds it (`client.run(..., sender="process")`, `tally.run._sender_process`):
its credentials, base URL, settings, proxy and limits, in a form that crosses to another process (pickled, over a
private pipe); and the client made from that form there.

What belongs to the caller's process cannot cross: a `transport` or `http_client` (connections, and often a test
double or an in-process app), `event_hooks` and `hooks` (callables that may close over anything). A run that
would need them is refused at `client.run()`, with the fix, rather than sending without them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tally._errors import ConfigurationError

if TYPE_CHECKING:
    from tally._connection import Connection
    from tally._credentials import ResolvedConfig
    from tally._options import Settings
    from tally._sync._client import Tally

__all__ = ["client_from_spec", "process_spec"]


def process_spec(config: ResolvedConfig, settings: Settings, connection: Connection) -> dict[str, Any]:
    """What a sender process needs to send as this client does; raises `ConfigurationError` naming what cannot
    cross and the fix."""
    refused = [
        name
        for name, present in (
            ("transport/http_client", connection.custom_transport),
            ("event_hooks", bool(connection.event_hooks)),
            ("hooks", bool(settings.hooks)),
        )
        if present
    ]
    if refused:
        raise ConfigurationError(
            f"sender='process' sends from a process of its own, which cannot use this client's "
            f"{' or '.join(refused)} (objects of this process): drop them from the client that starts the run, "
            "or use sender='thread'"
        )
    return {
        "api_key": config.api_key,
        "base_url": config.base_url,
        "timeout": settings.timeout,
        "ingest_timeout": settings.ingest_timeout,
        "retry": settings.retry,
        "extra_headers": dict(settings.extra_headers) if settings.extra_headers else None,
        "extra_query": dict(settings.extra_query) if settings.extra_query else None,
        "extra_body": dict(settings.extra_body) if settings.extra_body else None,
        "proxy": connection.proxy,
        "limits": connection.limits,
    }


def client_from_spec(spec: dict[str, Any]) -> Tally:
    """The sender process's client, made from `process_spec`'s form."""
    from tally._sync._client import Tally

    client = Tally(
        spec["api_key"],
        base_url=spec["base_url"],
        timeout=spec["timeout"],
        ingest_timeout=spec["ingest_timeout"],
        retry=spec["retry"],
        proxy=spec["proxy"],
        limits=spec["limits"],
        offline=False,
        telemetry=False,
    )
    extras = {name: spec[name] for name in ("extra_headers", "extra_query", "extra_body") if spec[name]}
    return client.with_options(**extras) if extras else client
