"""Ids, tokens and timestamps.

The timestamps a request may carry follow one rule, written in openapi/tally.yaml (the `pattern` and the
description of every date-time a request carries) and enforced by the request validation (`_spec`): RFC 3339
with an offset, year 0001 to 9999, seconds 00 to 59, its instant in UTC in years 0001 to 9999 as well, and a
Python aware datetime once its fraction is rounded to the microsecond, as the SDK's decoder (msgspec) rounds it.
So the SDK decodes every timestamp the server accepts, and can convert it to UTC (its frames do). RFC 3339's
grammar allows more (leap seconds, year 0, which no `datetime` holds), and an earlier release stored such text as
sent; `readable_timestamp` answers those rows in a form every reader decodes, without rewriting them.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from datetime import UTC, datetime, timedelta

__all__ = [
    "TIMESTAMP_PATTERN",
    "TIMESTAMP_RULE",
    "format_us",
    "hash_token",
    "new_id",
    "new_token",
    "now",
    "parse_timestamp",
    "readable_timestamp",
]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)  # format_us writes the "Z" itself
_ONE_US = timedelta(microseconds=1)
# The instants a `datetime` holds, as microseconds since the epoch.
_FIRST_US = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _ONE_US
_LAST_US = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // _ONE_US

TIMESTAMP_PATTERN = (
    r"^(?!0000|0001-01-01[Tt][0-9:.]+\+(?!00:00)|9999-12-31[Tt][0-9:.]+-(?!00:00)"
    r"|9999-12-31[Tt]23:59:59\.999999[5-9])[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-5][0-9]"
)
"""The `pattern` of every date-time a request carries in openapi/tally.yaml (tests/server/test_timestamps.py checks
they are the same): on top of `format: date-time`, it refuses year 0, a leap second, an offset that puts the
instant outside years 0001-9999 in UTC, and a fraction that rounds (as msgspec rounds: half up at the seventh
digit) into year 10000."""
_FOLLOWS_RULE = re.compile(TIMESTAMP_PATTERN)
# Every RFC 3339 text the pattern refuses starts so, or has seconds "60".
_NEAR_THE_LIMITS = ("0000", "0001-01-01", "9999-12-31")

TIMESTAMP_RULE = (
    "an RFC 3339 date-time with an offset (Z or +HH:MM/-HH:MM), year 0001 to 9999 and seconds 00 to 59 "
    "(a leap second :60 is refused: send the next second), e.g. 2026-11-23T10:00:00Z; its instant in UTC must "
    "fall in years 0001 to 9999 too, and fractional seconds may have any number of digits but must not round "
    "past 9999-12-31T23:59:59.999999"
)
"""What a request's date-time must be, for the error that refuses one (the contract's description says the same)."""

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def new_id(prefix: str) -> str:
    """`prefix` + a 26-character ULID-like id: 48 bits of milliseconds, then 80 random bits (Crockford
    base32)."""
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return prefix + "".join(reversed(chars))


def new_token(prefix: str) -> str:
    """`prefix` + 32 URL-safe random characters (192 bits)."""
    return prefix + secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    """What the server stores in place of a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def format_us(us: int) -> str:
    """Microseconds since the epoch as RFC 3339 UTC with microseconds: `2026-11-23T10:00:00.000000Z`."""
    # Not strftime: its %Y writes year 1 as "1" (glibc), which is no RFC 3339.
    return (_NAIVE_EPOCH + timedelta(microseconds=us)).isoformat(timespec="microseconds") + "Z"


def now() -> tuple[int, str]:
    """The server's clock: microseconds since the epoch, and the same instant as RFC 3339 text."""
    us = time.time_ns() // 1000
    return us, format_us(us)


def _days_from_civil(year: int, month: int, day: int) -> int:
    year -= month <= 2
    era = (year if year >= 0 else year - 399) // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_timestamp(text: str) -> int:
    """An RFC 3339 date-time as microseconds since the epoch, its fraction truncated.

    Lenient on purpose: it also reads the leap seconds (the instant of the next second) and the years 0 that an
    earlier release stored, so that stored rows keep their instant (the duplicate check and the catalog's first
    and last compare instants). What a request may carry is the contract's business (see the module's
    docstring). Raises ValueError when `text` is not RFC 3339.
    """
    try:
        return (datetime.fromisoformat(text) - _EPOCH) // _ONE_US
    except (ValueError, TypeError, OverflowError):
        pass
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 date-time: {text[:64]!r}")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60):
        raise ValueError(f"not an RFC 3339 date-time: {text[:64]!r}")
    fraction = (match.group(7) or "")[:6].ljust(6, "0")
    offset = 0
    if match.group(9):
        offset = (int(match.group(10)) * 60 + int(match.group(11))) * 60
        if match.group(9) == "-":
            offset = -offset
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset
    return seconds * 1_000_000 + int(fraction)


def readable_timestamp(text: str) -> str:
    """A stored timestamp as the server answers it: `text` itself when it follows the rule (every timestamp
    stored since the rule), else (a leap second, year 0, an instant outside years 0001-9999 in UTC or a fraction
    rounding into year 10000, which an earlier release accepted) its instant in UTC, clamped into years
    0001-9999: the leap second 23:59:60 is the next second, year 0 is the first microsecond of year 1. The stored
    row keeps what was sent; only the answer changes, so every reader (the SDK decodes date-times into
    `datetime`) can read every row back.

    `text` must be RFC 3339 (the server stores nothing else); it costs one slice and one prefix test when it
    follows the rule, since the listings call it for every row.
    """
    if text[17:19] != "60" and not text.startswith(_NEAR_THE_LIMITS):
        return text
    if _FOLLOWS_RULE.match(text):
        return text
    return format_us(min(max(parse_timestamp(text), _FIRST_US), _LAST_US))
