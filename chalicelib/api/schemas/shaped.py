"""Object schemas derived from the TypedDicts of ``chalicelib.api.shapes``.

A view's schema names the view function (``of_view(views.person, ...)``); its fields,
which of them are required, which nullable and each one's JSON type come from the shape
the function is typed to return (mypy holds the function to it). The caller gives each
field's constraints (a pattern, a range, a component reference). A field given that the
shape lacks, or a shape field not given, or a constraint of another JSON type than the
shape's, is a ``ShapeMismatch``: the documents cannot be built until the schema follows.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args, get_origin

from chalicelib.api import shapes
from chalicelib.api.schemas.model import Array, Integer, Object, Ref, Schema, String


class ShapeMismatch(LookupError):
    """A schema and the shape it documents disagree."""


def shape_of(view: Callable[..., Any]) -> type:
    """The TypedDict a view function is annotated to return."""
    returned = typing.get_type_hints(view, localns={"shapes": shapes}).get("return")
    if not (isinstance(returned, type) and typing.is_typeddict(returned)):
        raise ShapeMismatch(f"{view.__qualname__} does not return a TypedDict of chalicelib.api.shapes")
    return returned


def _fields(shape: type) -> dict[str, Any]:
    return typing.get_type_hints(shape)


def _nullable(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (it, False)."""
    if get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in get_args(annotation):
        rest = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(rest) != 1:
            raise ShapeMismatch(f"{annotation} is a union of more than one type and None")
        return rest[0], True
    return annotation, False


def _typed(where: str, annotation: Any, schema: Schema) -> Schema:
    """``schema`` checked against the field's annotation, with what the annotation states
    filled in: nullability, a Literal's values as the enum, a list's item type."""
    annotation, nullable = _nullable(annotation)
    origin = get_origin(annotation)
    expected: type[Schema] | tuple[type[Schema], ...]
    if origin is Literal or annotation is str:
        expected = String
    elif annotation is int:
        expected = Integer
    elif origin is list:
        expected = Array
    elif origin is dict or typing.is_typeddict(annotation):
        expected = (Object, Ref)
    else:
        raise ShapeMismatch(f"{where}: no JSON type for {annotation}")
    if not isinstance(schema, expected):
        raise ShapeMismatch(f"{where}: the shape says {annotation}, the schema is a {type(schema).__name__}")
    if isinstance(schema, Ref):
        if nullable:
            raise ShapeMismatch(f"{where}: OpenAPI 3.0 cannot make a $ref nullable")
        return schema
    if isinstance(schema, Object) and typing.is_typeddict(annotation) and schema.origin is not annotation:
        raise ShapeMismatch(f"{where}: the schema is not derived from {annotation.__name__}")
    if isinstance(schema, String) and origin is Literal:
        values = tuple(str(value) for value in get_args(annotation))
        if schema.enum is not None and schema.enum != values:
            raise ShapeMismatch(f"{where}: the schema's enum differs from the shape's Literal")
        schema = dataclasses.replace(schema, enum=values)
    if isinstance(schema, Array):
        (item,) = get_args(annotation)
        schema = dataclasses.replace(schema, items=_typed(f"{where}[]", item, schema.items))
    return dataclasses.replace(schema, nullable=True) if nullable else schema


def of_shape(shape: type, description: str | None = None, **fields: Schema) -> Object:
    """The object schema of a TypedDict; ``fields``: each field's constraints.
    ``description`` defaults to the TypedDict's docstring."""
    declared = _fields(shape)
    missing, extra = sorted(set(declared) - set(fields)), sorted(set(fields) - set(declared))
    if missing or extra:
        raise ShapeMismatch(
            f"the schema of {shape.__name__} lacks {', '.join(missing) or 'nothing'} "
            f"and has {', '.join(extra) or 'nothing'} more than the shape"
        )
    required: frozenset[str] = getattr(shape, "__required_keys__", frozenset())
    return Object(
        description=description if description is not None else " ".join((shape.__doc__ or "").split()) or None,
        properties={name: _typed(f"{shape.__name__}.{name}", declared[name], fields[name]) for name in declared},
        required=tuple(name for name in declared if name in required),
        origin=shape,
    )


def of_view(
    views: Callable[..., Any] | tuple[Callable[..., Any], ...], description: str | None = None, **fields: Schema
) -> Object:
    """The object schema of what the view functions answer (all of one shape)."""
    functions = views if isinstance(views, tuple) else (views,)
    found = {shape_of(view) for view in functions}
    if len(found) != 1:
        raise ShapeMismatch(f"{', '.join(f.__qualname__ for f in functions)} answer different shapes")
    return of_shape(found.pop(), description, **fields)


def check_references(schemas: Mapping[str, Schema]) -> None:
    """Every reference from a shaped field to a component is to the component derived from
    that field's TypedDict (``items: list[PersonView]`` -> a schema of ``PersonView``)."""
    for name, schema in schemas.items():
        if not isinstance(schema, Object) or schema.origin is None:
            continue
        for field, annotation in _fields(schema.origin).items():
            part: Schema = schema.properties[field]
            annotation, _ = _nullable(annotation)
            while isinstance(part, Array):
                part, (annotation,) = part.items, get_args(annotation)
            if isinstance(part, Ref) and typing.is_typeddict(annotation):
                target = schemas.get(part.name)
                if not isinstance(target, Object) or target.origin is not annotation:
                    raise ShapeMismatch(f"{name}.{field} refers to {part.name}, not a schema of {annotation.__name__}")
