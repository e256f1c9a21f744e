"""The headers that tell the server which SDK, runtime and platform sent a request, as the big SDKs send them
(stripe-python's `X-Stripe-Client-User-Agent`; openai-python's `X-Stainless-*` carry the same facts). Computed
once per process; nothing secret, nothing about the machine beyond OS family and CPU architecture."""

from __future__ import annotations

import functools
import json
import platform

__all__ = ["VERSION", "platform_headers", "user_agent"]

VERSION = "0.1.0"
"""The SDK's version (`tally.__version__`)."""

_OS_NAMES = {
    "linux": "Linux",
    "darwin": "MacOS",
    "windows": "Windows",
    "freebsd": "FreeBSD",
    "openbsd": "OpenBSD",
}
_ARCH_NAMES = {
    "x86_64": "x64",
    "amd64": "x64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "x32",
    "i686": "x32",
}


def user_agent() -> str:
    return f"tally-python/{VERSION}"


@functools.cache
def platform_headers(async_library: str | None) -> dict[str, str]:
    """`X-Tally-Client-User-Agent`: one JSON object with the language, package version, OS, architecture, Python
    implementation and version, and async library (`false` for the sync client).

    One header, as stripe-python sends `X-Stripe-Client-User-Agent`, rather than seven `X-Stainless-*` ones:
    httpx handles every header several times per request (merging, cookie extraction, HTTP/1.1 validation),
    and seven more cost about 3% of a small call's client CPU (measured with `scripts/bench.py`)."""
    system = platform.system()
    machine = platform.machine()
    described = {
        "lang": "python",
        "package_version": VERSION,
        "os": _OS_NAMES.get(system.lower(), f"Other:{system}" if system else "Unknown"),
        "arch": _ARCH_NAMES.get(machine.lower(), f"other:{machine}" if machine else "unknown"),
        "runtime": platform.python_implementation(),
        "runtime_version": platform.python_version(),
        "async_library": async_library or "false",
    }
    return {"X-Tally-Client-User-Agent": json.dumps(described, separators=(",", ":"))}
