"""Content negotiation: which of an operation's media types answers a request's `Accept` (RFC 9110, 12.5.1).

Only operations whose 200 answer offers more than one media type negotiate (today `exportMetrics`: NDJSON or
CSV); every other operation answers JSON whatever `Accept` says, as it always has. No `Accept`, an empty one, or
`*/*` gets the first type the contract lists; otherwise each offered type takes the quality of the most specific
range that matches it (`text/csv` over `text/*` over `*/*`), `q=0` refuses it, and the highest quality wins (ties:
the contract's order). Nothing acceptable: 406 `not_acceptable`, naming what is offered.
"""

from __future__ import annotations

from collections.abc import Sequence

from tally_server.errors import ApiError

__all__ = ["choose_media_type"]


def _ranges(accept: str) -> list[tuple[str, str, float]]:
    """The media ranges of an `Accept` value as (type, subtype, quality); malformed parts are skipped."""
    found = []
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        kind, slash, sub = media.lower().partition("/")
        if not slash or not kind or not sub:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        found.append((kind, sub, quality))
    return found


def _quality(offered: str, ranges: list[tuple[str, str, float]]) -> float:
    kind, _, sub = offered.partition("/")
    best, specificity = 0.0, -1
    for range_kind, range_sub, quality in ranges:
        if range_kind == kind and range_sub == sub:
            rank = 2
        elif range_kind == kind and range_sub == "*":
            rank = 1
        elif range_kind == "*" and range_sub == "*":
            rank = 0
        else:
            continue
        if rank > specificity:
            best, specificity = quality, rank
    return best


def choose_media_type(accept: str | None, offered: Sequence[str]) -> str:
    """The media type of `offered` to answer in, or a 406 `ApiError` when `accept` admits none of them."""
    if accept is None or not accept.strip():
        return offered[0]
    ranges = _ranges(accept)
    if not ranges:  # nothing parsable: as if no preference was given
        return offered[0]
    chosen, best = None, 0.0
    for media in offered:
        quality = _quality(media, ranges)
        if quality > best:
            chosen, best = media, quality
    if chosen is None:
        listed = " or ".join(offered)
        raise ApiError(
            406,
            "not_acceptable",
            f"This answer comes as {listed}: send one of them in Accept (got {accept.strip()[:200]}).",
            {"accept": accept.strip()[:200], "offered": list(offered)},
        )
    return chosen
