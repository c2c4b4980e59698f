"""Typed JSON Schema (the OpenAPI 3.0 dialect) and OpenAPI component objects.

Each object renders itself (``json()``) as an OpenAPI 3.0 document states it; the
modules beside this one build them from the rules of the service, and
``tools/openapi.py`` assembles the documents. Nothing here knows pii-vault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal


def full_match(regex: str) -> str:
    """A full-match regular expression as a JSON Schema ``pattern`` (which searches)."""
    return f"^{regex}$"


def _present(**items: Any) -> dict[str, Any]:
    """The keywords that are set (None and False mean absent), in the order given."""
    return {name: value for name, value in items.items() if value is not None and value is not False}


@dataclass(frozen=True)
class String:
    description: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    enum: tuple[str, ...] | None = None
    format: str | None = None
    nullable: bool = False

    def json(self) -> dict[str, Any]:
        return _present(
            type="string",
            format=self.format,
            nullable=self.nullable,
            minLength=self.min_length,
            maxLength=self.max_length,
            pattern=self.pattern,
            enum=None if self.enum is None else list(self.enum),
            description=self.description,
        )


@dataclass(frozen=True)
class Integer:
    description: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    default: int | None = None
    nullable: bool = False

    def json(self) -> dict[str, Any]:
        return _present(
            type="integer",
            nullable=self.nullable,
            minimum=self.minimum,
            maximum=self.maximum,
            default=self.default,
            description=self.description,
        )


@dataclass(frozen=True)
class Ref:
    """A named schema of the document's components."""

    name: str

    def json(self) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{self.name}"}


@dataclass(frozen=True)
class Array:
    items: Schema
    description: str | None = None
    min_items: int | None = None
    max_items: int | None = None
    unique_items: bool = False
    nullable: bool = False

    def json(self) -> dict[str, Any]:
        return _present(
            type="array",
            nullable=self.nullable,
            items=self.items.json(),
            minItems=self.min_items,
            maxItems=self.max_items,
            uniqueItems=self.unique_items,
            description=self.description,
        )


@dataclass(frozen=True)
class Object:
    """An object schema. ``additional`` None leaves ``additionalProperties`` unsaid (open).
    ``origin`` is the TypedDict the schema was derived from, if any (not rendered)."""

    properties: Mapping[str, Schema]
    required: tuple[str, ...] = ()
    description: str | None = None
    min_properties: int | None = None
    additional: bool | None = False
    nullable: bool = False
    origin: type | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        unknown = [name for name in self.required if name not in self.properties]
        if unknown:
            raise ValueError(f"required but not a property: {', '.join(unknown)}")

    def json(self) -> dict[str, Any]:
        return {
            **_present(type="object", nullable=self.nullable, description=self.description),
            "properties": {name: schema.json() for name, schema in self.properties.items()},
            **_present(required=list(self.required) or None, minProperties=self.min_properties),
            **({} if self.additional is None else {"additionalProperties": self.additional}),
        }


Schema = String | Integer | Array | Object | Ref


def refs(schema: Schema) -> set[str]:
    """The names of the component schemas ``schema`` refers to, directly."""
    if isinstance(schema, Ref):
        return {schema.name}
    if isinstance(schema, Array):
        return refs(schema.items)
    if isinstance(schema, Object):
        return set().union(*(refs(part) for part in schema.properties.values()))
    return set()


def json_content(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema.json()}}


@dataclass(frozen=True)
class Parameter:
    """A path, query or header parameter. A query array is comma-separated (form, not exploded)."""

    name: str
    location: Literal["path", "query", "header"]
    description: str
    schema: Schema
    required: bool = False

    def json(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "in": self.location,
            "required": self.required,
            "description": self.description,
            "schema": self.schema.json(),
        }
        if self.location == "query" and isinstance(self.schema, Array):
            out.update(style="form", explode=False)
        return out


@dataclass(frozen=True)
class Header:
    """A response header."""

    description: str
    schema: Schema
    required: bool = True

    def json(self) -> dict[str, Any]:
        return {"description": self.description, "required": self.required, "schema": self.schema.json()}


@dataclass(frozen=True)
class Response:
    """A response: its body's schema (a component's ``Ref``) and the names of its headers."""

    description: str
    schema: Schema | None = None
    headers: tuple[str, ...] = ()

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"description": self.description}
        if self.schema is not None:
            out["content"] = json_content(self.schema)
        if self.headers:
            out["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in self.headers}
        return out
