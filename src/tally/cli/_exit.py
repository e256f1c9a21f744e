"""The exit codes of `tally`, one meaning each, so that scripts can trust them. Imports nothing.

| code | meaning |
| --- | --- |
| 0 | success |
| 1 | the API answered with an error (conflict, invalid transition, validation, server error, ...) |
| 2 | usage: a bad option or argument (click's own code) |
| 3 | configuration or credentials: no API key, key refused (401) or not allowed (403), a missing extra |
| 4 | not found: the id does not exist in your organisation (404) |
| 5 | the server could not be reached (connection refused, timeout) |
| 6 | `tally sync`: some records could never be stored; they are kept in the run's dead-letter file |
"""

from __future__ import annotations

__all__ = ["API_ERROR", "CONFIG", "NOT_FOUND", "OK", "REJECTED", "UNREACHABLE", "USAGE"]

OK = 0
API_ERROR = 1
USAGE = 2
CONFIG = 3
NOT_FOUND = 4
UNREACHABLE = 5
REJECTED = 6
