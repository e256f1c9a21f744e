"""The server's version: the installed distribution's, else the source tree's."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["VERSION"]

try:
    VERSION = version("tally-metrics")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
    VERSION = "0.0.0+local"
