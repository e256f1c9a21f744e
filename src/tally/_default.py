"""The module-level default client: `tally.configure(...)`, then `tally.experiments.list()` and friends.

    import tally

    tally.configure(api_key="tk_org_...", base_url="https://tally.example.com")
    for experiment in tally.experiments.list(status="running"):
        print(experiment.name)

For scripts and notebooks, where one client per process is all there is (Tilde's `tilde.configure`, openai's
module client). `tally.folders`, `tally.experiments`, `tally.metrics`, `tally.metric_catalog`,
`tally.ingestion_keys`, `tally.annotations`, `tally.auth` and `tally.health()` are those of one sync `Tally`,
made on first use from what `configure` was given (nothing: `Tally()`, credentials from the environment or the
credentials file). Nothing is resolved before that use: `import tally` and `tally.configure()` never fail for a
missing key; the first use does, with the usual message that lists where it looked.

Creation is thread-safe (one client, however many threads get there first). `configure()` again replaces it:
the next use makes a new client, and the previous one is closed (a call still running on it from another thread
then fails; configure first, then start threads). At exit the default client is closed. Code that needs its own
settings, an async client or several servers should hold a `Tally` / `AsyncTally` of its own.
"""

# No `from __future__ import annotations`: it binds the name `annotations`, which is a resource here. The
# annotations that name types imported for type checking only are strings instead.
import atexit
import threading
from typing import TYPE_CHECKING, Any, cast

from tally._types import NOT_GIVEN, NotGiven

if TYPE_CHECKING:
    from tally._config import ClientConfig
    from tally._options import TimeoutArg
    from tally._retry_policy import RetryPolicy
    from tally._sync._resources import (
        Annotations,
        Auth,
        Experiments,
        Folders,
        IngestionKeys,
        MetricCatalog,
        Metrics,
    )
    from tally._sync_client import Tally
    from tally._types import Health

__all__ = [
    "annotations",
    "auth",
    "close",
    "configure",
    "default_client",
    "experiments",
    "folders",
    "health",
    "ingestion_keys",
    "metric_catalog",
    "metrics",
]

_lock = threading.Lock()
_settings: dict[str, Any] = {}
_client: "Tally | None" = None


def configure(
    api_key: str | None = None,
    *,
    base_url: str | None = None,
    timeout: "TimeoutArg | NotGiven" = NOT_GIVEN,
    ingest_timeout: "TimeoutArg | NotGiven" = NOT_GIVEN,
    max_retries: int | None = None,
    retry: "RetryPolicy | None" = None,
    offline: bool | None = None,
    config: "ClientConfig | None" = None,
    **client_options: Any,
) -> None:
    """Set what the default client is made with: `Tally(...)`'s arguments (`client_options` are its others:
    `transport=`, `proxy=`, `logger=`, ...). Resolves nothing now, so a missing key fails on first use, not here.
    Replaces (and closes) a default client made before."""
    settings: dict[str, Any] = {
        "api_key": api_key,
        "base_url": base_url,
        "timeout": timeout,
        "ingest_timeout": ingest_timeout,
        "max_retries": max_retries,
        "retry": retry,
        "offline": offline,
        "config": config,
        **client_options,
    }
    if config is not None:  # config= with a keyword it holds: say so now, not at the first call
        from tally._config import client_config

        held = (
            "api_key",
            "base_url",
            "server_idx",
            "timeout",
            "ingest_timeout",
            "max_retries",
            "retry",
            "offline",
            "telemetry",
        )
        client_config(config, **{name: settings.get(name) for name in held})
    global _client, _settings
    with _lock:
        previous, _client = _client, None
        _settings = {
            name: value
            for name, value in settings.items()
            if value is not None and not isinstance(value, NotGiven)
        }
        if timeout is None:  # None is a value here: no timeout
            _settings["timeout"] = None
        if ingest_timeout is None:
            _settings["ingest_timeout"] = None
    if previous is not None:
        previous.close()


def default_client() -> "Tally":
    """The default client, made on first use from `configure`'s arguments (thread-safe: one, however many
    threads ask at once)."""
    global _client
    client = _client
    if client is not None:
        return client
    with _lock:
        if _client is None:
            from tally._lazy import load

            tally_class = load("tally._sync_client").Tally
            _client = tally_class(**_settings)
        return _client


def close() -> None:
    """Close the default client, if one was made; the next use makes a new one (from the same settings)."""
    global _client
    with _lock:
        previous, _client = _client, None
    if previous is not None:
        previous.close()


atexit.register(close)


class _DefaultResource:
    """`tally.<resource>`: reads the resource of the default client on each attribute access, so that the client
    is made (and the key looked for) at the first call, and `configure()` later takes effect."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(getattr(default_client(), self._name), attribute)

    def __dir__(self) -> list[str]:
        from tally._sync import _resources

        kind = {"metric_catalog": "MetricCatalog", "ingestion_keys": "IngestionKeys"}.get(
            self._name, self._name.capitalize()
        )
        return [name for name in dir(getattr(_resources, kind)) if not name.startswith("_")]

    def __repr__(self) -> str:
        return f"<tally.{self._name} of the default client (tally.configure)>"


def health() -> "Health":
    """`Tally.health()` of the default client."""
    return default_client().health()


# Typed as the resources they stand for: `tally.experiments.list(...)` type-checks as `Tally.experiments.list`.
folders = cast("Folders", _DefaultResource("folders"))
experiments = cast("Experiments", _DefaultResource("experiments"))
metrics = cast("Metrics", _DefaultResource("metrics"))
metric_catalog = cast("MetricCatalog", _DefaultResource("metric_catalog"))
ingestion_keys = cast("IngestionKeys", _DefaultResource("ingestion_keys"))
annotations = cast("Annotations", _DefaultResource("annotations"))
auth = cast("Auth", _DefaultResource("auth"))
