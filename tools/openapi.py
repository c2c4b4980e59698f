"""Write the OpenAPI 3 documents of the API stages: docs/openapi-{writer,reader,masked}.json.

Why files rather than a ``GET /openapi.json`` route: the deployed functions keep exactly
the documented routes (the writer stays without any GET, nothing needs an anonymous
route or an exception to SigV4), and an API change shows up as a reviewable diff.

A document is derived, never written by hand: its paths are the routes ``create_app(role)``
registers (``app.routes``, as Chalice's own swagger generator walks them; operationId =
the view function's name), and each operation's parameters, body, size limit and statuses
are that route's row in ``chalicelib.api.contract``. A route without a row is an error.
``--check`` (run by the unit tests) fails when the committed files are stale.

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
from chalicelib.stages import API_STAGE_NAMES
from tools import openapi_schemas as components
from tools.generated import write_or_check

ROLES = API_STAGE_NAMES  # the API stages, from the registry

OPENAPI_VERSION = "3.0.3"
API_VERSION = "1"
DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
FILES = {role: f"openapi-{role}.json" for role in ROLES}
_WHAT = {
    "writer": "encrypt-only: creates, replaces, patches and deletes; never returns plaintext",
    "reader": "decrypt-only: reads; has no write route",
    "masked": "masked projections of people only (an initial, a year, a city); read-only, no secrets, no search",
}


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
        "responses": {str(op.ok): ok, **{str(status): components.error_ref(status) for status in op.statuses}},
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
    used = {p["$ref"].rsplit("/", 1)[1] for item in paths.values() for op in item.values() for p in op["parameters"]}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": f"pii-vault {role}",
            "version": API_VERSION,
            "description": (
                f"The {role} endpoint of pii-vault ({_WHAT[role]}). Field-level envelope encryption under KMS. "
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
            "schemas": {**components.schemas(), **(components.masked_schemas() if role == "masked" else {})},
            "parameters": {name: spec for name, spec in components.parameters().items() if name in used},
            "headers": components.headers(),
            "responses": components.responses(),
        },
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
