"""The HTTP contract's schemas as objects: request bodies, answers, errors, parameters and
headers of the API stages, each derived from the one place that states its rule.

- ``requests``: the bodies ``validation.parse_person/parse_search/parse_secret`` accept
  (fields, limits, country list, refused characters from ``chalicelib.domain.validation``);
- ``answers``: what the views of ``chalicelib.api.views`` build (fields, requiredness and
  types from the ``chalicelib.api.shapes`` each view returns; ``shaped``);
- ``errors``: the error body and, per status, the codes of ``contract.ERROR_STATUSES``;
- ``parameters``: path ids, the contract's query parameters, request and response headers;
- ``model``: the typed JSON Schema / OpenAPI objects, each rendering itself.

``tools/openapi.py`` renders them into docs/openapi-<stage>.json. The deployed functions
never import this package (import-linter: ``chalicelib.stages`` may not reach it), so it
adds nothing to a cold start.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.api.schemas.answers import answers, masked_answers
from chalicelib.api.schemas.errors import error_responses, error_schemas
from chalicelib.api.schemas.model import Header, Parameter, Response, Schema
from chalicelib.api.schemas.parameters import headers, parameters
from chalicelib.api.schemas.requests import requests
from chalicelib.api.schemas.shaped import check_references


@dataclass(frozen=True)
class Components:
    """The reusable parts of a stage's document, by component name."""

    schemas: dict[str, Schema]
    parameters: dict[str, Parameter]
    headers: dict[str, Header]
    responses: dict[str, Response]


def components() -> Components:
    """Every component of the API stages' documents (``tools/openapi.py`` keeps, per stage,
    those its document refers to)."""
    schemas: dict[str, Schema] = {**error_schemas(), **requests(), **answers(), **masked_answers()}
    check_references(schemas)
    return Components(schemas, parameters(), headers(), error_responses())


__all__ = ["Components", "components"]
