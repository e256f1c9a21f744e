"""The `tally` logger: one line per HTTP attempt (method, URL, status, elapsed, request id, attempt) at INFO; at
DEBUG also each attempt's request and response, headers and bodies, redacted and cut (`tally._debug_log`).

`TALLY_LOG=debug` or `TALLY_LOG=info` in the environment adds a stderr handler when a client is created.
Tokens are never logged: what the SDK logs is redacted before it is formatted (`tally._redact`), and a filter
masks anything shaped like a token that reaches this logger all the same.
"""

from __future__ import annotations

import logging
import os
import re
import sys

__all__ = ["RedactingFilter", "logger", "setup_from_env"]

logger = logging.getLogger("tally")

_MASKED_SHAPES = (
    r"\btk_(org|ing)_[A-Za-z0-9_-]+|\bt[ls]_[A-Za-z0-9_-]{16,}"  # compiled on first use (`re`'s cache)
)


class RedactingFilter(logging.Filter):
    """Replaces anything shaped like a Tally key in a record's message with `tk_<kind>_…<last 4>`, and a
    dashboard login-link or session token (`tl_...`, `ts_...`) with `tl_…` / `ts_…`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "tk_" in message or "tl_" in message or "ts_" in message:
            record.msg = re.sub(_MASKED_SHAPES, _masked, message)
            record.args = None
        return True


def _masked(found: re.Match[str]) -> str:
    token = found.group(0)
    return f"tk_{found.group(1)}_…{token[-4:]}" if found.group(1) else f"{token[:3]}…"


_configured: list[logging.Handler] = []


def setup_from_env() -> None:
    """Honour TALLY_LOG=debug|info once per process: a stderr handler on the `tally` logger."""
    level_name = os.environ.get("TALLY_LOG", "").strip().lower()
    if level_name not in ("debug", "info") or _configured:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if level_name == "debug" else logging.INFO)
    _configured.append(handler)


logger.addFilter(RedactingFilter())
