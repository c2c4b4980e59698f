"""The documentation's generated tables, and the files that hold them.

Stage lists, routes, settings, tables, keys, roles and what a deleted stack retains are
stated once in the code (the stage registry, the routes ``create_app(stage)`` registers,
the HTTP contract, the environment variables, the base stack's template). The README and
the pages under ``docs/`` show them through `cog <https://cog.readthedocs.io>`_ blocks
that call the functions below, so a page says what the code does::

    <!-- [[[cog from tools.docs import routes; cog.out(routes()) ]]] -->
    | stage | route | ... |
    <!-- [[[end]]] -->

``python -m tools.docs`` rewrites the generated parts of every file in ``FILES``;
``--check`` fails when one is stale (the unit tests and ``make docs`` run it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def files() -> list[Path]:
    """Every Markdown file of the documentation: the README, SECURITY.md and the site's pages."""
    return [ROOT / "README.md", ROOT / "SECURITY.md", *sorted(DOCS.rglob("*.md"))]


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _code(items: Iterable[str]) -> str:
    return ", ".join(f"`{item}`" for item in items)


def stages() -> str:
    """Every stage of the registry: kind, functions (trigger), what it does."""
    from chalicelib.stages import STAGES

    return _table(
        ("stage", "kind", "functions (trigger)", "what it does"),
        (
            (
                f"`{s.name}`",
                s.kind,
                ", ".join(f"`{f.name}` ({f.trigger.value})" for f in s.functions),
                s.summary,
            )
            for s in STAGES
        ),
    )


def stage_names(kind: str | None = None) -> str:
    """The stage names as inline code, in registry order (``kind``: "api", "job" or all)."""
    from chalicelib.stages import STAGES

    return _code(s.name for s in STAGES if kind in (None, s.kind))


def app_routes(stage_name: str) -> list[tuple[str, str]]:
    """(METHOD, path) of every route ``create_app(stage)`` registers, in registration order."""
    from chalicelib.stages.app import create_app
    from chalicelib.support.config import Settings

    app = create_app(settings=Settings(role=stage_name))  # lazy clients: no AWS touched
    return [(method.upper(), path) for path, methods in app.routes.items() for method in methods]


def routes(stage_name: str | None = None) -> str:
    """Every route of every API stage (or of one): method and path, success status, summary."""
    from chalicelib.api import contract
    from chalicelib.stages import API_STAGE_NAMES

    rows = []
    for name in API_STAGE_NAMES if stage_name is None else (stage_name,):
        operations = contract.operations_of(name)
        for method, path in app_routes(name):
            op = operations[(path, method)]
            rows.append((name, f"`{method} {path}`", _code(p.name for p in op.query), str(op.ok), op.summary))
    return _table(("stage", "route", "query", "success", "what it does"), rows)


def variables() -> str:
    """Every PII_VAULT_* variable a stage reads: where its value comes from, which stages read it."""
    from chalicelib.stages import STAGES
    from chalicelib.support.environment import ROLE_VARIABLE, VARIABLES

    def source(variable: Any) -> str:
        kind = type(variable.source).__name__
        detail = getattr(variable.source, "table", None) or getattr(variable.source, "key", None)
        return f"{kind} ({detail.value})" if detail is not None else kind

    rows = [(f"`{ROLE_VARIABLE}`", "the stage's name", "every stage", "which stage this function is")]
    for variable in VARIABLES:
        readers = [s.name for s in STAGES if variable.field in s.settings]
        rows.append((f"`{variable.env}`", source(variable), ", ".join(readers) or "operator tools", variable.doc))
    return _table(("variable", "source", "read by", "what"), rows)


def tunables(*fields: str) -> str:
    """The tunable settings (all, or these ``Settings`` fields): stages, default, allowed values."""
    from chalicelib.stages import STAGES
    from chalicelib.support.config import default_text, setting_domain
    from chalicelib.support.environment import VARIABLE, Tunable

    rows = []
    for field_name in fields or tuple(VARIABLE):
        variable = VARIABLE[field_name]
        if not isinstance(variable.source, Tunable) and fields == ():
            continue
        kind, domain = setting_domain(field_name)
        if kind == "int":
            allowed = f"{domain[0]:,}-{domain[1]:,}"
        elif kind == "choice":
            allowed = " or ".join(map(str, domain))
        else:
            allowed = "comma-separated" if kind == "list" else "-"
        readers = ", ".join(s.name for s in STAGES if field_name in s.settings)
        rows.append((f"`{variable.env}`", readers, f"`{default_text(field_name) or '(unset)'}`", allowed, variable.doc))
    return _table(("variable", "read by", "default", "allowed", "what"), rows)


def resources() -> str:
    """The base stack's tables and keys: logical id, name, deletion policy, backups, stages using it."""
    from chalicelib.stages import STAGES
    from infra.base import base_template
    from infra.specs import KEYS, TABLES

    template = base_template().render()["Resources"]
    rows = []
    for table, spec in TABLES.items():
        resource = template[spec.logical_id]
        name = resource["Properties"]["TableName"]["Fn::Sub"].replace("${Environment}", "<env>")
        users = ", ".join(s.name for s in STAGES if table in s.tables)
        rows.append(
            (
                f"`{spec.logical_id}`",
                f"table `{name}`",
                resource.get("DeletionPolicy", "Delete"),
                "PITR" if spec.backups else "none",
                users,
            )
        )
    for key, key_spec in KEYS.items():
        resource = template[key_spec.logical_id]
        users = ", ".join(s.name for s in STAGES if key in s.keys)
        rows.append(
            (
                f"`{key_spec.logical_id}`",
                f"KMS key `{key_spec.alias('pii-vault-<env>')}`: {key_spec.purpose}",
                resource.get("DeletionPolicy", "Delete"),
                "-",
                users,
            )
        )
    return _table(("logical id", "resource", "on stack deletion", "backups", "configured in stages"), rows)


def retained() -> str:
    """The base stack's resources kept when the stack is deleted (``DeletionPolicy: Retain``), as a sentence."""
    from infra.base import base_template

    template = base_template().render()["Resources"]
    return _code(sorted(logical for logical, r in template.items() if r.get("DeletionPolicy") == "Retain"))


def roles() -> str:
    """One IAM role per stage, in the base stack."""
    from chalicelib.stages import STAGES
    from infra.arns import function_name
    from infra.base import base_template
    from infra.roles import role_id

    template = base_template().render()["Resources"]
    rows = []
    for s in STAGES:
        role = role_id(s.name)
        if template.get(role, {}).get("Type") != "AWS::IAM::Role":
            raise ValueError(f"the base stack has no role {role} for stage {s.name}")
        names = ", ".join(f"`{function_name(s.name, f.name, 'pii-vault-<env>')}`" for f in s.functions)
        rows.append((f"`{role}`", f"`{s.name}`", names))
    return _table(("role (base stack)", "stage", "its functions"), rows)


def stacks() -> str:
    """The stacks of one environment: the base stack and one per stage (``make package`` writes them)."""
    from chalicelib.stages import STAGES
    from infra.arns import function_name

    rows = [
        (
            "`pii-vault-<env>-base`",
            "`out/base.json`",
            "the KMS keys, tables, one role per stage, log groups, metric filters, alarms, the dashboard",
        )
    ]
    for s in STAGES:
        names = ", ".join(f"`{function_name(s.name, f.name, 'pii-vault-<env>')}`" for f in s.functions)
        api = "and its REST API (stage `api`)" if s.kind == "api" else "(no API)"
        rows.append((f"`pii-vault-<env>-{s.name}`", f"`out/{s.name}/sam.json`", f"{names} {api}: {s.summary}"))
    return _table(("stack", "template", "holds"), rows)


def caller_policies() -> str:
    """The committed caller policies (``tools.access``): one tenant-scoped and one all-tenants
    policy per API stage, and the tenant roles' trust policy."""
    from chalicelib.stages import API_STAGE_NAMES
    from tools.access import OUT_DIR, TRUST_POLICY_FILE, example_api_arn, example_backend_arn, generate

    names = generate({s: example_api_arn(s) for s in API_STAGE_NAMES}, [example_backend_arn()])
    rows = []
    for name in names:
        if not (OUT_DIR / name).is_file():
            raise ValueError(f"{OUT_DIR / name} is not committed: run `make policies`")
        if name == TRUST_POLICY_FILE:
            rows.append((f"`{name}`", "trust policy of the tenant-scoped caller roles (below)"))
            continue
        stage_name, _, scope = name.removesuffix(".json").partition("-caller-")
        tenants = "`customers/<caller's tenant>/*` only" if scope == "tenant" else "every tenant"
        rows.append((f"`{name}`", f"`execute-api:Invoke` on the {stage_name} API's routes, {tenants}"))
    return _table(("file (`policies/callers/`)", "grants"), rows)


def run_cog(paths: Sequence[Path], *, check: bool) -> int:
    """Rewrite (or, with ``check``, verify) the cog blocks of ``paths``; 0 when nothing is stale."""
    from cogapp import Cog  # type: ignore[import-untyped]  # cog ships no type information

    paths = [p for p in paths if "[[[cog" in p.read_text(encoding="utf-8")]
    args = ["cog", "-I", str(ROOT), "--check" if check else "-r"]
    if check:
        args.append("--check-fail-msg=run `python -m tools.docs` and commit the result")
    return int(Cog().main([*args, *map(str, paths)]) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.docs", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a generated part is stale; write nothing")
    parser.add_argument("paths", nargs="*", type=Path, help="default: the README, SECURITY.md, docs/**/*.md")
    args = parser.parse_args(argv)
    return run_cog(args.paths or files(), check=args.check)


if __name__ == "__main__":
    sys.exit(main())
