"""`decoder(T)`: a class attribute that is `msgspec.json.Decoder(T)`, built the first time it is read.

`tally._base.Decoders` and the objects' decoders hold one decoder per response type (21 of them). Building one
walks its type's fields, so building them all when the client is imported cost about 2-3 ms of
`from tally import Tally`, for decoders a given program mostly never uses (a training job decodes an experiment,
an ingestion key and ingest results). Each is now built on first read, then stored on the class in the
descriptor's place, so every later read is a plain class-attribute read, as before. Two threads reading it first
at once may each build one: both are equal, and either may stay.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

__all__ = ["decoder"]

T = TypeVar("T")


class decoder(Generic[T]):
    """Lower case: it reads as the function it stands for, `health = decoder(Health)`."""

    __slots__ = ("name", "type")

    def __init__(self, type_: type[T]) -> None:
        self.type = type_
        self.name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type[Any]) -> msgspec.json.Decoder[T]:
        built = msgspec.json.Decoder(self.type)
        setattr(owner, self.name, built)
        return built
