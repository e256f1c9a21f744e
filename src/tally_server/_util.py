"""Ids, tokens and timestamps."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from datetime import UTC, datetime, timedelta

__all__ = [
    "format_us",
    "hash_token",
    "new_id",
    "new_token",
    "now",
    "parse_timestamp",
]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
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
    return (_EPOCH + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    """An RFC 3339 date-time as microseconds since the epoch (leap seconds and year 0 included).

    Raises ValueError when `text` is not RFC 3339.
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
