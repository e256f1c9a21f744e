"""Edge values for property tests of what the server accepts: date-times at and past the contract's timestamp rule,
integers and doubles at the limits of int64 and of doubles, and strings with the characters that break naive
handling of text (astral planes, combining marks, right-to-left text, NUL, lone surrogates)."""

from __future__ import annotations

from hypothesis import strategies as st

__all__ = ["EDGE_DATE_TIMES", "EDGE_INTEGERS", "EDGE_NUMBERS", "EDGE_TEXT", "edge_date_times"]

EDGE_TEXT = [
    "\U0001f600",  # an astral character (a surrogate pair in UTF-16)
    "\U0010ffff",  # the last code point
    "e\u0301",  # a combining acute accent
    "\u0301",  # a combining mark with nothing to combine with
    "\u05e9\u05dc\u05d5\u05dd",  # right-to-left text
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\u200d",  # zero-width joiner
    "\ufeff",  # byte order mark
    "\u2028",  # line separator
    "\x7f",
    "\uffff",  # a noncharacter
    "\x00",  # NUL
    "\ud800",  # a lone high surrogate
    "\udfff",  # a lone low surrogate
]
EDGE_INTEGERS = [
    *(sign * 2**53 + delta for sign in (1, -1) for delta in (-1, 0, 1)),
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**64 - 1,
    2**64,
    10**30,
    -(10**30),
    10**400,  # no double holds it
    0,
    -1,
]
EDGE_NUMBERS = [5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1.7976931348623157e308, -0.0, 1e-7]


# The limits themselves, drawn as they are one time in four.
EDGE_DATE_TIMES = [
    "2016-12-31T23:59:60Z",  # a leap second
    "0000-01-01T00:00:00Z",  # year 0
    "0001-01-01T00:00:00Z",  # the first instant a datetime holds
    "0001-01-01T00:00:00+23:59",  # year 0 in UTC, year 1 as written
    "9999-12-31T23:59:59.999999Z",  # the last one
    "9999-12-31T23:59:59.9999995Z",  # rounds (as msgspec rounds) into year 10000
    "9999-12-31T23:59:59-23:59",  # year 10000 in UTC
    "2026-11-23T10:00:00.0000005Z",  # rounds up to the next microsecond
    "2016-12-31T23:59:59.9999999999999999999999999999999999999999+05:30",  # 40 digits, rounding up
]


def edge_date_times() -> st.SearchStrategy[str]:
    """RFC 3339-shaped text at and past the contract's limits: seconds 60, years 0 and 9999, offsets up to
    +-23:59, fractions of up to 40 digits (some rounding into year 10000), lowercase separators, invalid days."""
    return (
        st.sampled_from(EDGE_DATE_TIMES)
        | _composed_date_times()
        | _composed_date_times()
        | _composed_date_times()
    )


@st.composite
def _composed_date_times(draw: st.DrawFn) -> str:
    year = draw(st.sampled_from([0, 1, 2, 1969, 1970, 2016, 9998, 9999]) | st.integers(0, 9999))
    month = draw(st.sampled_from([1, 2, 12]) | st.integers(1, 12))
    day = draw(st.sampled_from([1, 28, 29, 31]) | st.integers(1, 31))
    hour, minute = draw(
        st.sampled_from([(0, 0), (23, 59)]) | st.tuples(st.integers(0, 23), st.integers(0, 59))
    )
    second = draw(st.sampled_from([0, 59, 60]) | st.integers(0, 60))
    digits = draw(st.sampled_from(["", "9999995", "999999", "0000005"]) | st.text("0123456789", max_size=40))
    offset = draw(
        st.sampled_from(["Z", "z", "+00:00", "-00:00", "+23:59", "-23:59"])
        | st.builds(
            lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
            st.sampled_from("+-"),
            st.integers(0, 23),
            st.integers(0, 59),
        )
    )
    separator = draw(st.sampled_from("Tt"))
    fraction = f".{digits}" if digits else ""
    return (
        f"{year:04d}-{month:02d}-{day:02d}{separator}{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"
    )
