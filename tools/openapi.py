"""Write the OpenAPI 3 documents of both stages: docs/openapi-writer.json, docs/openapi-reader.json.

Why files rather than a ``GET /openapi.json`` route: the deployed functions keep exactly
the documented routes (the writer stays without any GET, nothing needs an anonymous
route or an exception to SigV4), and an API change shows up as a reviewable diff.
The documents are built by ``chalicelib.api.openapi``; before writing, the paths and
methods are compared with the routes ``create_app(role)`` really registers, and
``--check`` (run by the unit tests) fails when the committed files are stale.

    python -m tools.openapi [--out-dir docs] [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from chalicelib.api.openapi import build_document
from chalicelib.config import ROLES

from tools.generated import write_or_check

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
FILES = {role: f"openapi-{role}.json" for role in ROLES}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def app_operations(role: str) -> set[tuple[str, str, str]]:
    """(path, METHOD, view name) of every route the stage's app registers."""
    from chalicelib.api import create_app
    from chalicelib.config import Settings

    app = create_app(settings=Settings(role=role))  # lazy clients: no AWS touched
    return {
        (path, method.upper(), entry.view_name)
        for path, methods in app.routes.items()
        for method, entry in methods.items()
    }


def document_operations(document: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (path, method.upper(), op["operationId"])
        for path, item in document["paths"].items()
        for method, op in item.items()
    }


def route_mismatch(role: str, document: dict[str, Any]) -> list[str]:
    """Differences between the document and the app, one line each; empty when they agree."""
    real, documented = app_operations(role), document_operations(document)
    return [f"route not documented: {' '.join(op)}" for op in sorted(real - documented)] + [
        f"documented but no such route: {' '.join(op)}" for op in sorted(documented - real)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.openapi", description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", type=Path, default=DOCS_DIR)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the files differ from the generated ones")
    args = parser.parse_args(argv)
    texts = {}
    for role, name in FILES.items():
        document = build_document(role)
        problems = route_mismatch(role, document)
        if problems:
            print(f"tools.openapi: {role}: " + "; ".join(problems), file=sys.stderr)
            return 2
        texts[name] = render(document)
    return write_or_check("tools.openapi", args.out_dir, texts, check=args.check)


if __name__ == "__main__":
    sys.exit(main())
