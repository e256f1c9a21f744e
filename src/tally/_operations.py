"""`client.request(...)`'s decisions, with no I/O: which operation, which arguments, which options, which type.

    client.request("getExperiment", experiment_id=experiment.id)               # by operationId
    from tally_api.api.experiments import get_experiment
    client.request(get_experiment, experiment_id=experiment.id, timeout=2.0)   # or by generated module

Every operation of the spec is in the generated table `tally_api_types.operations.OPERATIONS` (module, method,
path, response schema, credential), so nothing here lists operations, and a new one in the spec is reachable
after `make generate`. Keyword arguments are split by name: the generated `_get_kwargs`'s parameters (path,
query, `body`) go to the operation, the per-call options (`timeout`, `max_retries`, `retry`, `extra_headers`,
`extra_query`, `extra_body`, `idempotency_key`) to the client; anything else is a `TypeError` naming both lists.
The answer is decoded into the public type the spec names for the 2xx response (the SDK's subclass where there is
one, so `request("compareMetrics", ...)` gives a `tally.CompareResult`, and `request("getExperiment", ...)` the
calling client's `tally.Experiment` or `tally.AsyncExperiment`, bound to it), or None for an answer without a body.
"""

from __future__ import annotations

import difflib
import enum
import functools
import inspect
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from tally._lazy import load
from tally._options import KEYED_METHODS, WriteOptions
from tally._types import public_type

__all__ = ["OperationCall", "prepare_call"]

_OPTION_NAMES = frozenset(WriteOptions.__optional_keys__)
_DECODERS: dict[tuple[str, int], msgspec.json.Decoder[Any] | None] = {}


@dataclass(frozen=True, slots=True)
class OperationCall:
    """One `client.request(...)` call, ready for the core."""

    operation_id: str
    kwargs: dict[str, Any]
    """The generated `_get_kwargs(...)` result: method, url, params, json."""
    decoder: msgspec.json.Decoder[Any] | None
    options: dict[str, Any]
    auth: str
    """`org` (the client's key), `ingestion` (the experiment's ingestion key) or `none`."""
    experiment_id: str | None


class _Body:
    """A request body given as a mapping or a public Struct, shaped as the generated models (`to_dict()`)."""

    __slots__ = ("_value",)

    def __init__(self, value: Mapping[str, Any] | msgspec.Struct) -> None:
        self._value = value

    def to_dict(self) -> dict[str, Any]:
        if isinstance(self._value, msgspec.Struct):
            result: dict[str, Any] = msgspec.to_builtins(self._value)
            return result
        return dict(self._value)


def _operations() -> dict[str, Any]:
    from tally_api_types.operations import OPERATIONS

    return OPERATIONS


def _find(operation: str | types.ModuleType) -> Any:
    table = _operations()
    if isinstance(operation, types.ModuleType):
        for row in table.values():
            if row.module == operation.__name__:
                return row
        raise ValueError(
            f"{operation.__name__} is not a generated operation module (tally_api.api.<tag>.<name>)"
        )
    if not isinstance(operation, str):
        raise TypeError(
            "operation must be an operationId such as 'getExperiment' or a generated module such as "
            f"tally_api.api.experiments.get_experiment, not {type(operation).__name__}"
        )
    row = table.get(operation)
    if row is None:
        close = difflib.get_close_matches(operation, table, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"no operation {operation!r} in the spec{hint} (see tally_api_types.operations)")
    return row


def _enum_class(annotation: Any) -> type[enum.Enum] | None:
    for candidate in typing.get_args(annotation) or (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
            return candidate
    return None


@functools.cache
def _generated(module_name: str) -> tuple[Any, inspect.Signature]:
    """The operation's `_get_kwargs` and its signature (annotations evaluated), once per operation, its module
    loaded here one thread at a time (`tally._lazy`)."""
    get_kwargs = load(module_name)._get_kwargs
    return get_kwargs, inspect.signature(get_kwargs, eval_str=True)


def _operation_arguments(
    operation_id: str, signature: inspect.Signature, arguments: Mapping[str, Any]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in arguments.items():
        parameter = signature.parameters[name]
        if name == "body" and (isinstance(value, Mapping | msgspec.Struct)):
            value = _Body(value)
        elif isinstance(value, str) and not isinstance(value, enum.Enum):
            enum_class = _enum_class(parameter.annotation)
            if enum_class is not None:
                try:
                    value = enum_class(value)
                except ValueError:
                    known = ", ".join(str(item.value) for item in enum_class)
                    raise ValueError(
                        f"{operation_id}: {name} must be one of {known}, not {value!r}"
                    ) from None
        values[name] = value
    try:
        signature.bind(**values)
    except TypeError as exc:
        described = ", ".join(
            name + ("" if parameter.default is inspect.Parameter.empty else "=...")
            for name, parameter in signature.parameters.items()
        )
        raise TypeError(f"{operation_id}({described}): {exc}") from None
    return values


def _decoder(
    operation_id: str, response: Any, acting: Mapping[type[Any], type[Any]]
) -> msgspec.json.Decoder[Any] | None:
    key = (operation_id, id(acting))
    if key not in _DECODERS:
        sdk_type = public_type(response, acting)
        _DECODERS[key] = None if sdk_type is None else msgspec.json.Decoder(sdk_type)
    return _DECODERS[key]


def prepare_call(
    operation: str | types.ModuleType,
    arguments: Mapping[str, Any],
    acting: Mapping[type[Any], type[Any]],
) -> OperationCall:
    """Resolve `operation`, split `arguments` into the operation's and the call's options, and build the request
    with the generated `_get_kwargs`; the answer decodes into the calling client's objects that act (`acting`:
    generated type -> sync or async class, one constant map per client kind). Raises `ValueError` / `TypeError`
    naming the operation and the fix."""
    row = _find(operation)
    get_kwargs, signature = _generated(row.module)
    # The spec's Idempotency-Key header parameter is the client's to set (one key per call, resent on retries):
    # the caller's `idempotency_key=` is the per-call option, never the generated header argument.
    accepted = set(signature.parameters) - {"idempotency_key"}
    operation_arguments = {k: v for k, v in arguments.items() if k in accepted}
    options = {k: v for k, v in arguments.items() if k not in accepted}
    unknown = set(options) - _OPTION_NAMES
    if unknown:
        raise TypeError(
            f"{row.operation_id} takes no argument {', '.join(sorted(unknown))}; its parameters are "
            f"{', '.join(sorted(accepted)) or '(none)'}, and every call takes {', '.join(sorted(_OPTION_NAMES))}"
        )
    if "idempotency_key" in options and row.method not in KEYED_METHODS:
        raise ValueError(
            f"idempotency_key applies to POST, PATCH and DELETE only; {row.operation_id} is {row.method}"
        )
    values = _operation_arguments(row.operation_id, signature, operation_arguments)
    experiment_id = values.get("experiment_id")
    if row.auth == "ingestion" and not isinstance(experiment_id, str):
        raise TypeError(f"{row.operation_id} needs experiment_id= (its ingestion key is the experiment's)")
    return OperationCall(
        operation_id=row.operation_id,
        kwargs=get_kwargs(**values),
        decoder=_decoder(row.operation_id, row.response, acting),
        options=options,
        auth=row.auth,
        experiment_id=experiment_id if isinstance(experiment_id, str) else None,
    )
