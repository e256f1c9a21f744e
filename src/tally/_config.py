"""`tally.ClientConfig`: a client's connection settings as one frozen value, printable without its key.

It is what `Tally(...)` and `AsyncTally(...)` would resolve from their keyword arguments, held still: build it
once (from arguments, the environment or the credentials file, by the one resolver in `tally._credentials`,
with the same precedence), print it, pass it around, and open clients with `Tally(config=...)`. Settings that are
objects rather than values (`transport`, `http_client`, `proxy`, `limits`, `event_hooks`, `logger`) stay keyword
arguments of the client, and combine with `config=`.

`Tally(config=...)` together with one of the keywords the config holds (`api_key`, `base_url` or `server_idx`,
`timeout`, `ingest_timeout`, `max_retries`, `retry`, `offline`, `telemetry`) is a `ConfigurationError`: two
answers to one question is a bug to point at, not one to settle silently. `config.replace(timeout=30.0)` makes
the variant you meant.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tally._base import DEFAULT_INGEST_TIMEOUT, DEFAULT_TIMEOUT
from tally._credentials import (
    LOCAL,
    ResolvedConfig,
    offline_config,
    offline_mode,
    read_credentials_file,
    resolve,
    resolve_from_environment,
)
from tally._options import Settings, TimeoutArg
from tally._redact import redact
from tally._retry_policy import RetryPolicy
from tally._telemetry import telemetry_enabled

__all__ = ["ClientConfig", "client_config"]


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """A client's connection settings, frozen; `repr()` and `str()` show the key masked (`tk_org_…abcd`).

        config = tally.ClientConfig.resolve(timeout=30.0)     # argument, then TALLY_API_KEY, then the file
        print(config)                                          # ClientConfig(base_url=..., api_key='tk_org_…abcd', ...)
        with Tally(config=config) as client: ...

    Built directly, `ClientConfig(api_key=..., base_url=...)` takes the values as given (nothing is looked up).
    `ClientConfig.resolve(...)` looks them up as `Tally(...)` does, `from_env()` from the environment and then
    the file, `from_file()` from the credentials file alone (`Tally("local")`). `credential_source` and
    `base_url_source` say where the key and the URL came from."""

    api_key: str
    base_url: str
    timeout: TimeoutArg = DEFAULT_TIMEOUT
    ingest_timeout: TimeoutArg = DEFAULT_INGEST_TIMEOUT
    max_retries: int | None = None
    retry: RetryPolicy | None = None
    offline: bool = False
    telemetry: bool = False
    credential_source: str = "argument"
    base_url_source: str = "argument"

    def __post_init__(self) -> None:
        """Refuse a bad value now, naming the field, rather than at the first client."""
        if not isinstance(self.api_key, str):
            raise TypeError(
                f"ClientConfig.api_key must be a str (tk_org_...), not {type(self.api_key).__name__}"
            )
        if not isinstance(self.base_url, str) or not self.base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"ClientConfig.base_url must be an http:// or https:// URL, not {self.base_url!r}"
            )
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if not isinstance(self.telemetry, bool):
            raise TypeError(f"ClientConfig.telemetry must be True or False, not {self.telemetry!r}")
        self.settings()  # validates timeout, ingest_timeout, max_retries and retry

    # ---- constructors ----------------------------------------------------------------------------------------
    @classmethod
    def resolve(
        cls,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: TimeoutArg = DEFAULT_TIMEOUT,
        ingest_timeout: TimeoutArg = DEFAULT_INGEST_TIMEOUT,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        offline: bool | None = None,
        server_idx: int | None = None,
        telemetry: bool | None = None,
    ) -> ClientConfig:
        """What `Tally(api_key, base_url=..., ...)` resolves: the argument, then `TALLY_API_KEY` / `TALLY_BASE_URL`,
        then the credentials file, then the default URL (`"local"`: the file alone); for the URL, an explicit
        `server_idx` (the contract's server) counts as an argument, after `base_url`. `offline` defaults to
        `TALLY_MODE`, `telemetry` to `TALLY_TELEMETRY` (off). Raises `ConfigurationError` listing every place looked
        at when no key is found (offline needs none)."""
        is_offline = offline_mode(offline)
        found = (
            offline_config(api_key, base_url, server_idx)
            if is_offline
            else resolve_from_environment(api_key, base_url, server_idx)
        )
        return cls._from(
            found,
            timeout=timeout,
            ingest_timeout=ingest_timeout,
            max_retries=max_retries,
            retry=retry,
            offline=is_offline,
            telemetry=telemetry_enabled(telemetry),
        )

    @classmethod
    def from_env(cls, **settings: Any) -> ClientConfig:
        """From `TALLY_API_KEY`, `TALLY_BASE_URL` and `TALLY_MODE`, then the credentials file: `resolve()` with no
        key or URL given. `settings` are `resolve()`'s other keywords (`timeout=`, ...)."""
        return cls.resolve(**settings)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str] | None = None, **settings: Any) -> ClientConfig:
        """From the credentials file alone (what `tally auth login` wrote; `Tally("local")`), the environment's
        key and URL ignored: the default file, or `path`. `settings` as for `resolve()` (`base_url=` wins over
        the file's)."""
        if path is None:
            return cls.resolve(LOCAL, **settings)
        file = read_credentials_file(Path(path))
        found = resolve(
            api_key=LOCAL,
            base_url=settings.pop("base_url", None),
            env=os.environ,
            file=file,
            server_idx=settings.pop("server_idx", None),
        )
        settings["offline"] = offline_mode(settings.get("offline"))
        settings["telemetry"] = telemetry_enabled(settings.get("telemetry"))
        return cls._from(found, **settings)

    @classmethod
    def _from(cls, found: ResolvedConfig, **settings: Any) -> ClientConfig:
        return cls(
            api_key=found.api_key,
            base_url=found.base_url,
            credential_source=found.credential_source,
            base_url_source=found.base_url_source,
            **settings,
        )

    @classmethod
    def of(
        cls, found: ResolvedConfig, settings: Settings, *, offline: bool, telemetry: bool = False
    ) -> ClientConfig:
        """The config of a client that holds `found` and `settings` (`client.config`)."""
        return cls._from(
            found,
            timeout=settings.timeout,
            ingest_timeout=settings.ingest_timeout,
            retry=settings.retry,
            offline=offline,
            telemetry=telemetry,
        )

    # ---- use -------------------------------------------------------------------------------------------------
    def replace(self, **changes: Any) -> ClientConfig:
        """A copy with `changes` (a new `api_key` or `base_url` counts as an argument)."""
        if "api_key" in changes:
            changes.setdefault("credential_source", "argument")
        if "base_url" in changes:
            changes.setdefault("base_url_source", "argument")
        return dataclasses.replace(self, **changes)

    def settings(self) -> Settings:
        """The per-call settings a client made from this config starts with."""
        return Settings.build(
            timeout=self.timeout,
            ingest_timeout=self.ingest_timeout,
            max_retries=self.max_retries,
            retry=self.retry,
        )

    def credentials(self) -> ResolvedConfig:
        """The resolver's view of this config: key, URL and where each came from."""
        return ResolvedConfig(
            api_key=self.api_key,
            base_url=self.base_url,
            credential_source=self.credential_source,
            base_url_source=self.base_url_source,
        )

    def __repr__(self) -> str:
        shown = [
            f"api_key={redact(self.api_key)!r}"
            if field.name == "api_key"
            else f"{field.name}={getattr(self, field.name)!r}"
            for field in dataclasses.fields(self)
        ]
        return f"ClientConfig({', '.join(shown)})"

    __str__ = __repr__


def client_config(config: ClientConfig | None, **keywords: Any) -> ClientConfig:
    """The config a client is made with: `config` as given, or one resolved from the client's keywords (those
    left unset, None or NOT_GIVEN, take their defaults). Both at once is a `ConfigurationError` naming the
    keywords, because one of the two answers would be dropped without a word."""
    from tally._errors import ConfigurationError
    from tally._not_given import NotGiven

    given = {
        name: value
        for name, value in keywords.items()
        if value is not None and not isinstance(value, NotGiven)
    }
    if config is None:
        return ClientConfig.resolve(**given)
    if not isinstance(config, ClientConfig):
        raise TypeError(f"config must be a tally.ClientConfig, not {type(config).__name__}")
    if given:
        names = ", ".join(sorted(given))
        raise ConfigurationError(
            f"pass config= or {names}, not both: the config already holds them. To change a setting, pass "
            f"config=config.replace({sorted(given)[0]}=...)"
        )
    return config
