"""Which API key and base URL a client uses: one pure resolver for the client and the CLI, plus a thin reader.

Order for the API key: the explicit argument, then `TALLY_API_KEY`, then the credentials file. The argument
`"local"` means: the credentials file alone, environment ignored. The base URL: the explicit `base_url`
argument, then the contract's server that the explicit `server_idx` argument names (`SERVERS`, generated from
`servers:` in `openapi/tally.yaml`), then `TALLY_BASE_URL`, then the file's `base_url`, then the contract's
first server, `DEFAULT_BASE_URL` (the local reference server). One rule for every setting: what the caller
passes wins over what the environment and the file say. (Until issue 19's follow-up a `base_url` from the
environment or the file beat an explicit `server_idx`, so the one argument the caller wrote was silently
ignored.)

The credentials file is `$TALLY_CONFIG_DIR/credentials.json` when TALLY_CONFIG_DIR is set, else
`credentials.json` in the platform's user config directory for `tally`; `tally serve` and `tally auth login`
write it as `{"api_key": "tk_org_...", "base_url": "http://..."}` with owner-only permissions. Where it is and its
one writer are `tally_credentials`, shared with the server; this module reads it and says what it found.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tally_api_types.servers import SERVERS

from tally._errors import ConfigurationError
from tally._redact import redact
from tally_credentials import credentials_path

__all__ = [
    "DEFAULT_BASE_URL",
    "LOCAL",
    "SERVERS",
    "CredentialsFile",
    "ResolvedConfig",
    "credentials_path",
    "offline_config",
    "offline_mode",
    "read_credentials_file",
    "resolve",
    "resolve_from_environment",
    "server_url",
]

DEFAULT_BASE_URL = SERVERS[0].url
"""The contract's first server: the local reference server, `http://127.0.0.1:8787`."""
LOCAL = "local"
API_KEY_ENV = "TALLY_API_KEY"
BASE_URL_ENV = "TALLY_BASE_URL"
MODE_ENV = "TALLY_MODE"


@dataclass(frozen=True)
class CredentialsFile:
    """What reading the credentials file found. `state` is `ok`, `missing`, `unreadable` or `no_api_key`."""

    path: Path
    state: Literal["ok", "missing", "unreadable", "no_api_key"]
    api_key: str | None = None
    base_url: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class ResolvedConfig:
    """The credentials a client uses, and where each came from. The repr never shows the key."""

    api_key: str
    base_url: str
    credential_source: str
    base_url_source: str

    def __repr__(self) -> str:
        return (
            f"ResolvedConfig(api_key={redact(self.api_key)!r}, base_url={self.base_url!r}, "
            f"credential_source={self.credential_source!r}, base_url_source={self.base_url_source!r})"
        )


def read_credentials_file(path: Path) -> CredentialsFile:
    """Read the credentials file; never raises."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return CredentialsFile(path, "missing")
    except OSError as exc:
        return CredentialsFile(path, "unreadable", problem=f"{type(exc).__name__}: {exc.strerror or exc}")
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        return CredentialsFile(path, "unreadable", problem=f"not JSON ({exc})")
    if not isinstance(data, dict):
        return CredentialsFile(path, "unreadable", problem="not a JSON object")
    api_key = data.get("api_key")
    base_url = data.get("base_url")
    base_url = base_url if isinstance(base_url, str) and base_url else None
    if not isinstance(api_key, str) or not api_key:
        return CredentialsFile(path, "no_api_key", base_url=base_url, problem="has no api_key")
    return CredentialsFile(path, "ok", api_key=api_key, base_url=base_url)


def _file_note(file: CredentialsFile) -> str:
    if file.state == "missing":
        return f"file {file.path}: does not exist"
    if file.state == "unreadable":
        return f"file {file.path}: unreadable ({file.problem})"
    if file.state == "no_api_key":
        return f"file {file.path}: has no api_key"
    return f"file {file.path}: found"


def server_url(server_idx: Any) -> str:
    """The URL of the contract's server number `server_idx`, or a `ConfigurationError` that lists them."""
    if isinstance(server_idx, bool) or not isinstance(server_idx, int) or not 0 <= server_idx < len(SERVERS):
        listed = ", ".join(f"{index}: {server.url}" for index, server in enumerate(SERVERS))
        raise ConfigurationError(
            f"server_idx must be an int from 0 to {len(SERVERS) - 1} (the contract's servers: {listed}), "
            f"not {server_idx!r}; pass base_url= for another server"
        )
    return SERVERS[server_idx].url


def resolve(
    *,
    api_key: str | None,
    base_url: str | None,
    env: Mapping[str, str],
    file: CredentialsFile,
    server_idx: int | None = None,
) -> ResolvedConfig:
    """Pick the API key and base URL from the argument, the environment and the file; pure, no I/O."""
    chosen_server = None if server_idx is None else server_url(server_idx)
    local = api_key == LOCAL
    looked: list[str] = []
    key: str | None = None
    source = ""
    if local:
        looked.append('argument: "local" (the credentials file alone; environment ignored)')
    elif api_key:
        key, source = api_key, "argument"
    else:
        looked.append("argument: api_key not given")
        env_key = env.get(API_KEY_ENV)
        if env_key:
            key, source = env_key, f"env:{API_KEY_ENV}"
        else:
            looked.append(f"env {API_KEY_ENV}: not set")
    if key is None:
        if file.state == "ok" and file.api_key:
            key, source = file.api_key, f"file:{file.path}"
        else:
            looked.append(_file_note(file))
            raise ConfigurationError(
                "No Tally API key found. Looked at: "
                + "; ".join(looked)
                + f". Set {API_KEY_ENV}=tk_org_..., run `tally auth login --api-key tk_org_...`, "
                "pass Tally(api_key=...), or run `tally serve` to start a local server that writes the file."
            )

    if base_url:
        url, url_source = base_url, "argument"
    elif chosen_server is not None:
        url, url_source = chosen_server, f"server_idx={server_idx}"
    elif not local and env.get(BASE_URL_ENV):
        url, url_source = env[BASE_URL_ENV], f"env:{BASE_URL_ENV}"
    elif file.base_url:
        url, url_source = file.base_url, f"file:{file.path}"
    else:
        url, url_source = DEFAULT_BASE_URL, "default"
    return ResolvedConfig(
        api_key=key, base_url=url.rstrip("/"), credential_source=source, base_url_source=url_source
    )


def resolve_from_environment(
    api_key: str | None, base_url: str | None, server_idx: int | None = None
) -> ResolvedConfig:
    """`resolve` over the real environment and file; the file is read only when it may be needed."""
    env = os.environ
    needs_file = (api_key == LOCAL or not (api_key or env.get(API_KEY_ENV))) or not (
        base_url or server_idx is not None or env.get(BASE_URL_ENV)
    )
    path = credentials_path(env)
    file = read_credentials_file(path) if needs_file else CredentialsFile(path, "missing")
    return resolve(api_key=api_key, base_url=base_url, env=env, file=file, server_idx=server_idx)


def offline_mode(offline: bool | None, env: Mapping[str, str] | None = None) -> bool:
    """The argument when given, else `TALLY_MODE` (`offline` or `online`, default online)."""
    if offline is not None:
        return offline
    mode = (os.environ if env is None else env).get(MODE_ENV, "").strip().lower()
    if mode not in ("", "online", "offline"):
        raise ConfigurationError(f"{MODE_ENV}={mode!r} is not a mode: set it to 'offline' or 'online'")
    return mode == "offline"


def offline_config(
    api_key: str | None, base_url: str | None, server_idx: int | None = None
) -> ResolvedConfig:
    """An offline client's configuration: the credentials when they resolve (no key is needed offline)."""
    chosen_server = None if server_idx is None else server_url(server_idx)
    try:
        return resolve_from_environment(api_key, base_url, server_idx)
    except ConfigurationError:
        if base_url:
            url, source = base_url, "argument"
        elif chosen_server is not None:
            url, source = chosen_server, f"server_idx={server_idx}"
        else:
            url, source = DEFAULT_BASE_URL, "default"
        return ResolvedConfig(
            api_key="", base_url=url.rstrip("/"), credential_source="offline", base_url_source=source
        )
