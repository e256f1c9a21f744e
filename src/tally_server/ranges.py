"""`Range: bytes=...` for `downloadArtifact` (RFC 9110 section 14): one range of a content of known size.

Served: `bytes=first-last`, `bytes=first-` and `bytes=-suffix`. A header this server does not serve (another
unit, several ranges, a malformed one) is ignored, so the whole content is answered (RFC 9110 allows it); a
range that starts at or past the end is unsatisfiable (416).
"""

from __future__ import annotations

import re

__all__ = ["Unsatisfiable", "byte_range"]

_ONE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class Unsatisfiable(Exception):
    """The range starts at or past the content's end (or asks for the last 0 bytes)."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive of the range to answer, or None for the whole content."""
    if header is None:
        return None
    match = _ONE_RANGE.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # not a valid range: ignored
    if first >= size:
        raise Unsatisfiable
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)
