"""What a run records of where it ran: `client.run(..., capture=...)`, on by default.

Recorded, in the experiment's metadata under the reserved top-level key `capture` (so that `listExperiments`
filters on it: `metadata_key="capture.git.commit"`):

    capture.git.commit     the HEAD commit of the working directory's repository
    capture.git.branch     its branch (absent when HEAD is detached)
    capture.git.dirty      true when tracked files differ from HEAD (untracked files are not looked at)
    capture.git.remote     the URL of the branch's upstream remote (else `origin`, else the first), with no
                           credentials: the userinfo of a URL (`https://user:token@host/...`), its query and its
                           fragment are dropped, and token-shaped strings are masked
    capture.command        the command line (`sys.argv`, shell-quoted), with secrets masked: the value of an option
                           whose name says it holds one (`--api-key X`, `--token=X`, `db.password=X`), URL userinfo,
                           and token-shaped strings (`ghp_...`, `sk-...`, `hf_...`, Tally keys); at most 1,024
                           characters
    capture.python         the Python version (`3.12.3`)
    capture.platform       `platform.platform()` (`Linux-6.1.0-...-x86_64-with-glibc2.36`)
    capture.hostname       `socket.gethostname()`
    capture.packages       installed distributions' versions by normalised name (`{"numpy": "2.1.0"}`); bounded
                           (see `PACKAGES_MAX_BYTES`): the distributions of modules the process has imported come
                           first, then the others by name; what does not fit is counted in
                           `capture.packages_omitted`

Why in the background: git runs in two subprocesses (tens of milliseconds, seconds in a huge repository), which
the start of a run must not pay.
`collect` runs on a thread of its own; the run spools what it finds as one record (`KIND_CAPTURE`), so it
survives an outage like the config. Nothing here raises: a missing git binary, a directory that is no
repository, a git that takes longer than `GIT_TIMEOUT` seconds, each leaves its field out.

On resume, the capture replaces the experiment's earlier one: it describes the code that runs now. The
experiment's metadata holds at most 8 KiB in all (the contract's limit), shared with the config and the caller's
metadata: `fit` drops packages (from the end of the order above), then the command, until the capture fits.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tally._logging import logger
from tally._redact import is_secret_name

__all__ = [
    "CAPTURE_KEY",
    "GIT_TIMEOUT",
    "PACKAGES_MAX_BYTES",
    "Capture",
    "CaptureThread",
    "check_reserved",
    "clean_remote",
    "collect",
    "fit",
    "merged_metadata",
    "redact_argv",
    "resolve_capture",
]

CAPTURE_KEY = "capture"
"""The experiment metadata's reserved top-level key for what is captured: `metadata=` may not use it."""
GIT_TIMEOUT = 2.0
"""Seconds each git subprocess may take (a huge repository's `git status`): past it, the field is left out."""
PACKAGES_MAX_BYTES = 2048
"""At most this many bytes of JSON for `capture.packages` (about 100 packages): the experiment's metadata holds
8 KiB in all, and the config needs its share."""
COMMAND_MAX_CHARS = 1024
MASK = "***"


@dataclass(frozen=True)
class Capture:
    """Which items `client.run(..., capture=...)` records: all by default. `capture=False` records nothing;
    `capture=tally.Capture(packages=False)` all but the packages."""

    git: bool = True
    command: bool = True
    python: bool = True
    platform: bool = True
    hostname: bool = True
    packages: bool = True

    @classmethod
    def none(cls) -> Capture:
        return cls(**{field.name: False for field in fields(cls)})

    def any(self) -> bool:
        return any(getattr(self, field.name) for field in fields(self))


def resolve_capture(value: bool | Capture | None) -> Capture:
    """`capture=` as a `Capture`; raises TypeError naming the argument for anything else."""
    if value is None or value is True:
        return Capture()
    if value is False:
        return Capture.none()
    if isinstance(value, Capture):
        return value
    raise TypeError(f"capture must be True, False or a tally.Capture(...), not {type(value).__name__}")


# ---- secrets ------------------------------------------------------------------------------------------------------
_TOKEN_SHAPED = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{8,}|github_pat_[A-Za-z0-9_]{8,}|glpat-[A-Za-z0-9_\-]{8,}|sk-[A-Za-z0-9_\-]{8,}"
    r"|hf_[A-Za-z0-9]{8,}|xox[abprs]-[A-Za-z0-9\-]{8,}|AKIA[A-Z0-9]{12,}|tk_(?:org|ing)_[A-Za-z0-9_\-]+"
    r"|t[ls]_[A-Za-z0-9_\-]{16,})"
)
"""Strings that are secrets whatever their place: GitHub, GitLab, OpenAI, Hugging Face, Slack, AWS and Tally keys."""
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)[^/@\s]*@")


def _mask_text(text: str) -> str:
    """`text` with URL userinfo dropped and token-shaped strings masked."""
    return _TOKEN_SHAPED.sub(MASK, _URL_USERINFO.sub(r"\g<scheme>", text))


def redact_argv(argv: Sequence[str]) -> list[str]:
    """`argv` with secrets masked: the value of `--name value` / `--name=value` / `name=value` (Hydra overrides,
    the last dotted part is the name) when the name says it holds a secret (`tally._redact.is_secret_name`), URL
    userinfo, and token-shaped strings anywhere."""
    shown: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            hide_next = False
            if not arg.startswith("--"):
                shown.append(MASK)
                continue
        name, equals, _ = arg.partition("=")
        if arg.startswith("-") and len(arg) > 1:
            if is_secret_name(name.lstrip("-")):
                if equals:
                    shown.append(f"{name}={MASK}")
                else:
                    shown.append(arg)
                    hide_next = True
                continue
        elif equals and name and is_secret_name(name.rsplit(".", 1)[-1].lstrip("+~")):
            shown.append(f"{name}={MASK}")
            continue
        shown.append(_mask_text(arg))
    return shown


def clean_remote(url: str) -> str:
    """A git remote URL with no credentials: a URL's userinfo, query and fragment dropped (an ssh URL's bare user
    name, such as `git`, is no secret and stays); an scp-like `git@host:owner/repo.git` is kept as it is; any
    token-shaped string is masked."""
    url = url.strip()
    if "://" in url:
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            if parts.port is not None:
                host = f"{host}:{parts.port}"
        except ValueError:
            return MASK
        ssh = parts.scheme in ("ssh", "git+ssh", "ssh+git")
        if ssh and parts.username and parts.password is None and not _TOKEN_SHAPED.search(parts.username):
            host = f"{parts.username}@{host}"
        return _TOKEN_SHAPED.sub(MASK, urlunsplit((parts.scheme, host, parts.path, "", "")))
    return _TOKEN_SHAPED.sub(MASK, url)


# ---- the items ----------------------------------------------------------------------------------------------------
def _git(args: Sequence[str], cwd: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    env = {
        **os.environ,
        "GIT_OPTIONAL_LOCKS": "0",  # `git status` must not take the index lock from the user's own git
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
    }
    try:
        done = subprocess.run(
            [git, *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        logger.debug("tally: capture: git %s failed: %s", args[0], error)
        return None
    return done.stdout if done.returncode == 0 else None


def git_info(cwd: str | None = None) -> dict[str, Any] | None:
    """Commit, branch, dirty flag and remote of the repository at `cwd` (the working directory), or None when
    there is no git or no repository."""
    where = cwd or os.getcwd()
    status = _git(["status", "--porcelain=v2", "--branch", "--untracked-files=no"], where)
    if status is None:
        return None
    info: dict[str, Any] = {}
    upstream_remote: str | None = None
    dirty = False
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2]
            if oid != "(initial)":
                info["commit"] = oid
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2]
            if head != "(detached)":
                info["branch"] = head
        elif line.startswith("# branch.upstream "):
            upstream_remote = line.split(" ", 2)[2].split("/", 1)[0]
        elif line and not line.startswith("#"):
            dirty = True
    info["dirty"] = dirty
    remotes: dict[str, str] = {}
    for line in (_git(["config", "--get-regexp", r"^remote\..*\.url$"], where) or "").splitlines():
        key, _, value = line.partition(" ")
        remotes[key[len("remote.") : -len(".url")]] = value
    chosen = remotes.get(upstream_remote or "") or remotes.get("origin") or next(iter(remotes.values()), None)
    if chosen:
        info["remote"] = clean_remote(chosen)
    return info


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.lru_cache(maxsize=1)
def _installed() -> tuple[dict[str, str], dict[str, list[str]]]:
    """Every installed distribution's version by normalised name, and the distributions of each top-level module,
    read once per process. From the names of the `<name>-<version>.dist-info` (and `.egg-info`) directories on
    `sys.path` and their `top_level.txt` where there is one (else the module is the name with `_` for `-`): about
    1 ms for 100 packages, where `importlib.metadata` parses every METADATA and RECORD file (about 100 ms, most
    of it holding the GIL that the training loop needs). The first directory on `sys.path` wins, as for imports."""
    versions: dict[str, str] = {}
    by_module: dict[str, list[str]] = {}
    for entry in sys.path:
        try:
            items = [
                item for item in os.scandir(entry or ".") if item.name.endswith((".dist-info", ".egg-info"))
            ]
        except OSError:
            continue
        for item in items:
            stem = item.name.rsplit(".", 1)[0]
            name, _, rest = stem.partition("-")
            version = rest.split("-py", 1)[0]  # an egg's `-py3.12` tag
            normalised = _normalise(name)
            if not name or not version or len(normalised) > 64 or normalised in versions:
                continue
            versions[normalised] = version
            try:
                modules = Path(item.path, "top_level.txt").read_text(encoding="utf-8").split()
            except (OSError, UnicodeDecodeError):
                modules = [normalised.replace("-", "_")]
            for module in modules:
                by_module.setdefault(module, []).append(normalised)
    return versions, by_module


def packages() -> tuple[dict[str, str], int]:
    """The installed distributions' versions, bounded by `PACKAGES_MAX_BYTES`, and how many were left out: the
    distributions of the modules imported so far first, then the others by name."""
    versions, by_module = _installed()
    imported: set[str] = {"tally-metrics"}
    for module in list(sys.modules):
        if "." not in module:
            imported.update(by_module.get(module, ()))
    order = sorted(versions, key=lambda name: (name not in imported, name))
    return _bounded({name: versions[name] for name in order}, PACKAGES_MAX_BYTES)


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _bounded(versions: Mapping[str, str], budget: int) -> tuple[dict[str, str], int]:
    """The first entries of `versions` whose JSON fits in `budget` bytes, and how many are left out."""
    kept: dict[str, str] = {}
    used = 2  # {}
    for name, version in versions.items():
        cost = _size(name) + _size(version) + 2  # "name":"version",
        if used + cost > budget:
            break
        kept[name] = version
        used += cost
    return kept, len(versions) - len(kept)


def collect(capture: Capture, argv: Sequence[str] | None = None, cwd: str | None = None) -> dict[str, Any]:
    """What `capture` asks for, as the value of the metadata's `capture` key. Never raises: an item that cannot
    be read is left out (and said in the debug log)."""
    found: dict[str, Any] = {}
    items: list[tuple[str, Any]] = [
        ("git", lambda: git_info(cwd)),
        ("command", lambda: _command(sys.argv if argv is None else argv)),
        ("python", platform.python_version),
        ("platform", platform.platform),
        ("hostname", socket.gethostname),
    ]
    for name, read in items:
        if getattr(capture, name):
            try:
                value = read()
            except Exception as error:
                logger.debug("tally: capture: %s failed: %s", name, error)
                continue
            if value is not None:
                found[name] = value
    if capture.packages:
        try:
            versions, omitted = packages()
        except Exception as error:
            logger.debug("tally: capture: packages failed: %s", error)
        else:
            found["packages"] = versions
            if omitted:
                found["packages_omitted"] = omitted
    return found


def _command(argv: Sequence[str]) -> str | None:
    if not argv:
        return None
    command = shlex.join(redact_argv(argv))
    return command if len(command) <= COMMAND_MAX_CHARS else command[: COMMAND_MAX_CHARS - 3] + "..."


def fit(captured: Mapping[str, Any], budget: int) -> dict[str, Any] | None:
    """`captured` made to fit in `budget` bytes of JSON: packages dropped from the end (counted in
    `packages_omitted`), then the command; None when even the rest does not fit."""
    value = dict(captured)
    if _size(value) <= budget:
        return value
    versions = dict(value.pop("packages", None) or {})
    omitted = int(value.pop("packages_omitted", 0) or 0)
    base = _size({**value, "packages": {}, "packages_omitted": omitted + len(versions)})
    if base <= budget and versions:
        kept, dropped = _bounded(versions, budget - base + 2)
        value["packages"] = kept
        value["packages_omitted"] = omitted + dropped
        if _size(value) <= budget:
            return value
        value.pop("packages")
    value.pop("packages_omitted", None)
    if _size(value) > budget:
        value.pop("command", None)
    return value if value and _size(value) <= budget else None


def merged_metadata(current: Mapping[str, Any], captured: Mapping[str, Any]) -> dict[str, Any] | None:
    """The experiment's metadata with `captured` under `capture` (replacing an earlier capture, of a resumed
    experiment), fitted into what is left of the contract's 8 KiB and 64 entries; None when nothing changes or
    nothing fits (then a warning says so: the run goes on)."""
    from tally._limits import MAX_METADATA_BYTES, MAX_METADATA_ENTRIES

    others = {key: value for key, value in current.items() if key != CAPTURE_KEY}
    value: dict[str, Any] | None = None
    if len(others) < MAX_METADATA_ENTRIES:
        budget = MAX_METADATA_BYTES - _size(others) - _size(CAPTURE_KEY) - 2  # the key, its colon and a comma
        value = fit(captured, budget)
    if value is None:
        logger.warning(
            "tally: the run's capture does not fit in the experiment's metadata (at most %d entries, %d bytes): "
            "it is not stored; store less metadata, or pass capture=tally.Capture(packages=False)",
            MAX_METADATA_ENTRIES,
            MAX_METADATA_BYTES,
        )
        return None
    if current.get(CAPTURE_KEY) == value:
        return None
    return {**others, CAPTURE_KEY: value}


def check_reserved(metadata: Mapping[str, Any] | None) -> None:
    """Raise ValueError when the caller's `metadata=` uses the reserved `capture` key."""
    if metadata and CAPTURE_KEY in metadata:
        raise ValueError(
            f"metadata key {CAPTURE_KEY!r} is reserved for what the run captures (git, command, packages...): "
            "rename your key; to record nothing, pass capture=False"
        )


class CaptureThread:
    """Runs `collect` on a daemon thread and hands the result to `deliver` (the run's spool), unless the run has
    closed first: `join(timeout)` waits for it at most that long."""

    def __init__(self, capture: Capture, deliver: Any) -> None:
        self._capture = capture
        self._deliver = deliver
        self._thread = threading.Thread(target=self._work, name="tally-capture", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _work(self) -> None:
        try:
            captured = collect(self._capture)
            if captured:
                self._deliver(captured)
        except Exception as error:  # capture must never fail a run
            logger.debug("tally: capture failed: %s", error)

    def join(self, timeout: float) -> bool:
        """Wait at most `timeout` seconds; True when the capture is done (delivered or left out)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()
