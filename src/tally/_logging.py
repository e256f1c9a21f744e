"""The `tally` logger: one line per HTTP attempt (method, URL, status, elapsed, request id, attempt).

`TALLY_LOG=debug` or `TALLY_LOG=info` in the environment adds a stderr handler when a client is created.
Tokens are never logged: the Authorization header is left out, and a filter redacts anything that looks like a
token.
"""

from __future__ import annotations

import logging
import os
import re
import sys

__all__ = ["RedactingFilter", "logger", "setup_from_env"]

logger = logging.getLogger("tally")

_TOKEN = re.compile(r"\btk_(org|ing)_[A-Za-z0-9_-]+")


class RedactingFilter(logging.Filter):
    """Replaces anything shaped like a Tally token in a record's message with `tk_<kind>_…<last 4>`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "tk_" in message:
            record.msg = _TOKEN.sub(lambda m: f"tk_{m.group(1)}_…{m.group(0)[-4:]}", message)
            record.args = None
        return True


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
