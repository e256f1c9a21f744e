"""Request ids on returned objects, without a field on any type: a side table keyed by object identity.

`tally.request_id(obj)` (or `obj._request_id` on every public type) is the `X-Request-Id` of the response the
object was decoded from. The table lives beside the generated public types (`tally_api_types`), whose
`_request_id` property reads it; it holds a weak reference to each object, so an entry lives exactly as long as
its object.
"""

from __future__ import annotations

from tally_api_types.request_ids import remember, request_id

__all__ = ["remember", "request_id"]
