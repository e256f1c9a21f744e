"""The one place that turns request data into log text: what a client sent is escaped and stripped of secrets
before it reaches the log.

- Only the query parameters the matched operation declares are logged (`?api_key=tk_org_...` is not one of them),
  none when no operation matched.
- Anything that looks like a credential is redacted wherever it appears: Tally keys (`tk_org_...`, `tk_ing_...`,
  any `tk_<kind>_...`), `Bearer <token>`, and JSON Web Tokens.
- The path and the parameters are percent-encoded as in a URL, so a line feed (`%0A`) cannot start a forged log
  line, a NUL (`%00`) never reaches the log, and no byte is ambiguous; the method is escaped the same way.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Collection

__all__ = ["redact", "request_target"]

_SAFE = "/:@!$'()*,;=-._~"  # kept as they are in a path (RFC 3986 pchar); everything else is %XX
_SECRETS = (
    (re.compile(r"(tk_[A-Za-z]+_)[A-Za-z0-9_-]*"), r"\1***"),
    (re.compile(r"(?i)\b(bearer\s+)\S+"), r"\1***"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "eyJ***"),
)


def redact(text: str) -> str:
    """`text` with every credential-looking part replaced by its prefix and `***`."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def _escape(text: str) -> str:
    return urllib.parse.quote(redact(text), safe=_SAFE, errors="backslashreplace")


def request_target(method: str, path: str, query_string: str, declared: Collection[str] | None) -> str:
    """`METHOD /path?declared=params` for the log: escaped, redacted, undeclared parameters left out (all of
    them when `declared` is None: no operation matched)."""
    target = _escape(path)
    if declared:
        pairs = urllib.parse.parse_qsl(query_string, keep_blank_values=True)
        kept = [f"{_escape(name)}={_escape(value)}" for name, value in pairs if name in declared]
        if kept:
            target += "?" + "&".join(kept)
    return f"{_escape(method)} {target}"
