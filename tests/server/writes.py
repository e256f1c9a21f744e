"""The spec's create and update operations, and how to read back what each one stored, derived from
openapi/tally.yaml alone (no list of operations or fields), for tests/server/test_keeps_what_it_accepts.py.

- A *resource* is a schema that a GET answers, whole (a get: `getFolder` answers `Folder`) or as the items of a page
  (a list: `listAnnotations` answers `AnnotationPage` of `Annotation`).
- A *write* is a POST or PATCH with a JSON body whose success answer is a resource (or an `allOf` extension of one,
  as `CreatedIngestionKey` extends `IngestionKey`). `compareMetrics` (a read that travels as POST) and
  `ingestMetrics` (answers a count) answer no resource, so they are no writes.
- What a write must keep: every property of its request body that the resource also has.
- Its read-back: the get of the resource if there is one, else its list; the get's path parameters come from the
  write's own path, then from the answer's property of the same name, then from the answer's `id`.
- A path parameter `{x_id}` of a write is filled with a new resource made by its *creator*: the POST on the get's
  path without its last segment, answering the same resource (`{experiment_id}`: `getExperiment` is
  `/v1/experiments/{experiment_id}`, so `createExperiment`, POST `/v1/experiments`).
- A write secured by ingestion keys alone gets a key from the POST under the same path parameters that answers a
  `token` (`createIngestionKey`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi" / "tally.yaml"
METHODS = ("get", "put", "post", "patch", "delete")


@dataclass(frozen=True)
class Op:
    operation_id: str
    method: str
    path: str
    raw: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.operation_id} ({self.method.upper()} {self.path})"

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    @property
    def schemes(self) -> set[str]:
        return {name for requirement in self.raw.get("security", []) for name in requirement}


@dataclass(frozen=True)
class Write:
    op: Op
    resource: str  # the schema name of the resource it answers
    kept: tuple[str, ...]  # request properties the resource also has
    read_back: Op
    read_back_is_list: bool


class Contract:
    """The parts of the spec the keeps-what-it-accepts check needs."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.ops = [
            Op(item[m]["operationId"], m, path, item[m])
            for path, item in spec["paths"].items()
            for m in METHODS
            if m in item
        ]
        self.gets: dict[str, Op] = {}
        self.lists: dict[str, Op] = {}
        for op in self.ops:
            if op.method != "get":
                continue
            schema = self._success_schema(op)
            if schema is None:
                continue
            items = self.resolve(schema).get("properties", {}).get("data", {}).get("items", {})
            if "next_cursor" in self.resolve(schema).get("properties", {}) and "$ref" in items:
                self.lists.setdefault(_ref_name(items), op)
            elif "$ref" in schema:
                self.gets.setdefault(_ref_name(schema), op)

    @classmethod
    def load(cls, path: Path = SPEC_PATH) -> Contract:
        return cls(yaml.safe_load(path.read_text(encoding="utf-8")))

    def resolve(self, node: Any) -> Any:
        """Follow `$ref`s and merge `allOf` parts into one object schema."""
        while isinstance(node, dict) and "$ref" in node:
            target: Any = self.spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        if isinstance(node, dict) and "allOf" in node:
            merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
            for part in node["allOf"]:
                resolved = self.resolve(part)
                merged["properties"].update(resolved.get("properties", {}))
                merged["required"] += resolved.get("required", [])
            return merged
        return node

    def by_id(self, operation_id: str) -> Op:
        return next(op for op in self.ops if op.operation_id == operation_id)

    def _success_schema(self, op: Op) -> dict[str, Any] | None:
        for status in sorted(op.raw.get("responses", {})):
            if str(status).startswith("2"):
                response = self.resolve(op.raw["responses"][status])
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if schema is not None:
                    return dict(schema)
        return None

    def body_schema(self, op: Op) -> dict[str, Any] | None:
        body = self.resolve(op.raw.get("requestBody", {}))
        schema = body.get("content", {}).get("application/json", {}).get("schema")
        return None if schema is None else dict(self.resolve(schema))

    def body_example(self, op: Op) -> dict[str, Any]:
        """The example of `op`'s request body (tests/spec checks that every body has one that validates)."""
        body = self.resolve(op.raw.get("requestBody", {}))
        media = body.get("content", {}).get("application/json", {})
        example = media.get("example", self.resolve(media.get("schema", {})).get("examples", [{}])[0])
        return dict(example)

    def resource_of(self, op: Op) -> str | None:
        """The resource schema `op` answers on success (the one a get or a list also answers), if any."""
        schema = self._success_schema(op)
        if schema is None:
            return None
        names = [_ref_name(schema)] if "$ref" in schema else []
        if names:
            names += [
                _ref_name(part) for part in self.spec_schema(names[0]).get("allOf", []) if "$ref" in part
            ]
        return next((name for name in names if name in self.gets or name in self.lists), None)

    def spec_schema(self, name: str) -> dict[str, Any]:
        return dict(self.spec["components"]["schemas"][name])

    def writes(self) -> list[Write]:
        found: list[Write] = []
        for op in self.ops:
            if op.method not in ("post", "patch"):
                continue
            body, resource = self.body_schema(op), self.resource_of(op)
            if body is None or resource is None:
                continue
            answered = self.resolve({"$ref": f"#/components/schemas/{resource}"}).get("properties", {})
            kept = tuple(name for name in body.get("properties", {}) if name in answered)
            if not kept:
                continue
            read_back = self.gets.get(resource) or self.lists[resource]
            found.append(Write(op, resource, kept, read_back, read_back_is_list=resource not in self.gets))
        return found

    def creator_of(self, param: str) -> Op:
        """The operation that makes a new resource for path parameter `param` (see the module's docstring)."""
        for resource, get in self.gets.items():
            if get.path.endswith("/{" + param + "}"):
                collection = get.path.removesuffix("/{" + param + "}")
                for op in self.ops:
                    if op.method == "post" and op.path == collection and self.resource_of(op) == resource:
                        return op
        raise LookupError(
            f"no operation creates what path parameter {{{param}}} names: the check needs a GET .../{{{param}}} "
            "and a POST on its collection answering the same schema (see tests/server/writes.py)"
        )

    def token_minter(self, write: Op) -> Op:
        """The POST that answers a `token` under the same path parameters as `write` (an ingestion key)."""
        for op in self.ops:
            schema = self._success_schema(op)
            if (
                op.method == "post"
                and schema is not None
                and "token" in self.resolve(schema).get("properties", {})
                and set(op.path_params) <= set(write.path_params)
            ):
                return op
        raise LookupError(f"{write.label} needs an ingestion key, and no operation answers a `token`")

    def property_schema(self, resource: str, name: str) -> dict[str, Any]:
        schema = self.resolve({"$ref": f"#/components/schemas/{resource}"})
        return dict(self.resolve(schema["properties"][name]))

    def is_id_reference(self, schema: dict[str, Any]) -> bool:
        """A request property that names a resource: a string with the pattern of the resources' `id`s."""
        patterns = {
            self.resolve(self.resolve({"$ref": f"#/components/schemas/{name}"})["properties"]["id"]).get(
                "pattern"
            )
            for name in self.gets
            if "id" in self.resolve({"$ref": f"#/components/schemas/{name}"}).get("properties", {})
        } - {None}
        return schema.get("pattern") in patterns


def _ref_name(node: dict[str, Any]) -> str:
    return str(node["$ref"]).rsplit("/", 1)[-1]
