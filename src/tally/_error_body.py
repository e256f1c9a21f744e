"""The spec's error envelope as msgspec Structs, for `tally._errors.error_from_response` and the retry
transport (which reads the code alone).

Apart from `tally._errors` so that `from tally import Tally` does not import msgspec: the first error answer (or
the first decoded answer) does (issue 21's import target)."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["CODE_DECODER", "ERROR_DECODER", "ErrorBody", "ErrorResponse"]


class ErrorBody(msgspec.Struct, kw_only=True):
    """The spec's `ErrorBody`; every field optional, so that a malformed envelope still gives an error."""

    code: str | None = None
    message: str | None = None
    request_id: str | None = None
    details: Any = None


class ErrorResponse(msgspec.Struct, kw_only=True):
    """The spec's `ErrorResponse`: `{"error": ErrorBody}`."""

    error: ErrorBody | None = None


ERROR_DECODER = msgspec.json.Decoder(ErrorResponse)


class _ErrorCode(msgspec.Struct):
    code: str | None = None


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorCode | None = None


CODE_DECODER = msgspec.json.Decoder(_ErrorEnvelope)
"""The error envelope's `code` alone, for the retry transport: a body whose other fields are odd still gives it."""
