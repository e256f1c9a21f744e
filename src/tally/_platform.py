"""The headers that tell the server which SDK, runtime and platform sent a request, as Stainless-generated SDKs
(openai-python, anthropic-sdk-python) send them. Computed once per process; nothing secret, nothing about the
machine beyond OS family and CPU architecture."""

from __future__ import annotations

import functools
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
    """`X-Tally-*` headers: language, package version, OS, architecture, Python implementation and version, and
    the async library (`false` for the sync client)."""
    system = platform.system()
    machine = platform.machine()
    return {
        "X-Tally-Lang": "python",
        "X-Tally-Package-Version": VERSION,
        "X-Tally-OS": _OS_NAMES.get(system.lower(), f"Other:{system}" if system else "Unknown"),
        "X-Tally-Arch": _ARCH_NAMES.get(machine.lower(), f"other:{machine}" if machine else "unknown"),
        "X-Tally-Runtime": platform.python_implementation(),
        "X-Tally-Runtime-Version": platform.python_version(),
        "X-Tally-Async": async_library or "false",
    }
