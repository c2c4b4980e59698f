"""Write the OpenAPI 3 documents of the API stages: docs/openapi-{writer,reader,masked}.json.

Why files rather than a ``GET /openapi.json`` route: the deployed functions keep exactly
the documented routes (the writer stays without any GET, nothing needs an anonymous
route or an exception to SigV4), and an API change shows up as a reviewable diff.

A document is derived, never written by hand: its paths are the routes ``create_app(role)``
registers (``app.routes``, as Chalice's own swagger generator walks them; operationId =
the view function's name), each operation's parameters, body, size limit and statuses
are that route's row in ``chalicelib.api.contract``, and its components are the schema
objects of ``chalicelib.api.schemas`` the operations refer to, rendered. A route without
a row, or a row naming a component that does not exist, is an error. ``--check`` (run by
the unit tests) fails when the committed files are stale.

    python -m tools.openapi [--out-dir docs] [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chalicelib.api import contract
from chalicelib.api.schemas import Components, components
from chalicelib.api.schemas.errors import response_name
from chalicelib.api.schemas.model import refs
from chalicelib.stages import API_STAGE_NAMES, stage
from tools.generated import write_or_check

ROLES = API_STAGE_NAMES  # the API stages, from the registry

OPENAPI_VERSION = "3.0.3"
API_VERSION = "1"
DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
FILES = {role: f"openapi-{role}.json" for role in ROLES}


def app_routes(role: str) -> list[tuple[str, str, str]]:
    """(path, METHOD, view name) of every route the stage's app registers, in registration order."""
    from chalicelib.stages.app import create_app
    from chalicelib.support.config import Settings

    app = create_app(settings=Settings(role=role))  # lazy clients: no AWS touched
    return [
        (path, method.upper(), entry.view_name)
        for path, methods in app.routes.items()
        for method, entry in methods.items()
    ]


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def operation_object(path: str, view: str, op: contract.Operation) -> dict[str, Any]:
    names = [*re.findall(r"\{(\w+)\}", path), *(param.name for param in op.query), *op.headers]
    ok: dict[str, Any] = {"description": op.ok_description}
    if op.ok_schema is not None:
        ok["content"] = {"application/json": {"schema": _ref("schemas", op.ok_schema)}}
    if op.ok_headers:
        ok["headers"] = {name: _ref("headers", name) for name in op.ok_headers}
    out: dict[str, Any] = {
        "operationId": view,
        "summary": op.summary,
        "parameters": [_ref("parameters", name) for name in names],
        "responses": {
            str(op.ok): ok,
            **{str(status): _ref("responses", response_name(status)) for status in op.statuses},
        },
    }
    if op.accepted_schema is not None:
        out["responses"]["202"] = {
            "description": "Accepted: under way; repeat the same request after Retry-After seconds.",
            "headers": {"Retry-After": _ref("headers", "Retry-After")},
            "content": {"application/json": {"schema": _ref("schemas", op.accepted_schema)}},
        }
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "description": f"JSON, UTF-8, at most {op.max_body_bytes} bytes (413 beyond).",
            "content": {"application/json": {"schema": _ref("schemas", op.body)}},
        }
    return out


def build_document(role: str) -> dict[str, Any]:
    """The OpenAPI document of an API stage (``ROLES``), from its app's routes."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    operations = contract.operations_of(role)
    paths: dict[str, dict[str, Any]] = {}
    for path, method, view in app_routes(role):
        if (path, method) not in operations:
            raise LookupError(f"{role}: route {method} {path} ({view}) has no row in chalicelib.api.contract")
        paths.setdefault(path, {})[method.lower()] = operation_object(path, view, operations[(path, method)])
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": f"pii-vault {role}",
            "version": API_VERSION,
            "description": (
                f"The {role} endpoint of pii-vault: it {stage(role).summary}. Field-level envelope encryption under "
                "KMS. "
                "Deployed stages require SigV4 (IAM); `chalice local` does not enforce it."
            ),
        },
        "security": [{"sigv4": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "description": "AWS Signature Version 4 (API Gateway IAM authorization).",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                }
            },
            **used_components(paths, components()),
        },
    }


def _refs_in(node: Any, kind: str) -> set[str]:
    """The names of the ``kind`` components (``schemas``, ``headers``, ...) a JSON node refers to."""
    prefix = f"#/components/{kind}/"
    if isinstance(node, dict):
        ref = node.get("$ref")
        own = {ref.removeprefix(prefix)} if isinstance(ref, str) and ref.startswith(prefix) else set()
        return own.union(*(_refs_in(value, kind) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs_in(value, kind) for value in node))
    return set()


def _pick(kind: str, available: dict[str, Any], wanted: set[str]) -> dict[str, Any]:
    missing = sorted(wanted - set(available))
    if missing:
        raise LookupError(f"no {kind} component named {', '.join(missing)} in chalicelib.api.schemas")
    return {name: part for name, part in available.items() if name in wanted}


def used_components(paths: dict[str, Any], parts: Components) -> dict[str, Any]:
    """The components the paths refer to, directly or through other components, rendered."""
    responses = _pick("responses", parts.responses, _refs_in(paths, "responses"))
    schemas = _pick(
        "schemas",
        parts.schemas,
        _refs_in(paths, "schemas")
        | {ref for response in responses.values() if response.schema is not None for ref in refs(response.schema)},
    )
    pending = set(schemas)
    while pending:
        found = set().union(*(refs(schemas[name]) for name in pending)) - set(schemas)
        schemas.update(_pick("schemas", parts.schemas, found))
        pending = found
    headers = _pick(
        "headers",
        parts.headers,
        _refs_in(paths, "headers") | {name for response in responses.values() for name in response.headers},
    )
    return {
        "schemas": {name: schema.json() for name, schema in parts.schemas.items() if name in schemas},
        "parameters": {
            name: param.json()
            for name, param in _pick("parameters", parts.parameters, _refs_in(paths, "parameters")).items()
        },
        "headers": {name: header.json() for name, header in headers.items()},
        "responses": {name: response.json() for name, response in responses.items()},
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.openapi", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--out-dir", type=Path, default=DOCS_DIR)
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the files differ from the generated ones"
    )
    args = parser.parse_args(argv)
    texts = {name: render(build_document(role)) for role, name in FILES.items()}
    return write_or_check("tools.openapi", args.out_dir, texts, check=args.check)


if __name__ == "__main__":
    sys.exit(main())
