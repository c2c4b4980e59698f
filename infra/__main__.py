"""CloudFormation for one pii-vault environment: a base stack and one stack per stage.

- ``out/base.json``: KMS keys, tables, the stages' roles with their generated policies, log
  groups, metric filters, alarms and the dashboard (``infra.base``);
- ``out/<stage>/sam.json`` (+ ``deployment.zip``): ``chalice package`` of the stage with
  ``out/merge-<stage>.json`` merged in (``infra.merge``).

Per-environment values are template parameters, kept in ``deploy/params/<env>.json``
(``infra.params``); nothing generated holds an account id. The other deploy path, ``chalice
deploy`` on the same base stack, deploys from a project generated for one environment
(``infra.chalice_project``), then runs the post-deploy step (``infra.postdeploy``); docs/deploy.md.

    python -m infra templates [--out out]                # base.json + merge-<stage>.json
    python -m infra package [--out out] [--no-bytecode]  # templates + chalice package + bytecode
    python -m infra params --env dev --stack writer      # Key=Value for --parameter-overrides
    python -m infra policies DIR                         # every policy for example ARNs (parliament)
    python -m infra coldstart [--out out]                # import time of app per packaged stage
    python -m infra chalice-config [--check]             # .chalice/config.json from the registry
    python -m infra chalice-project --env dev            # .deploy/dev/ from the base stack (AWS)
    python -m infra post-deploy --env dev --stage writer # after chalice deploy --stage dev-writer (AWS)
    python -m infra guard --env dev --path package       # refuse if the other path deployed dev (AWS)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from chalicelib.stages import API_STAGES, STAGES
from infra.cfn import TemplateError, render
from infra.chalice_config import render as render_config
from infra.chalice_config import tracked_config
from infra.examples import example_policies
from infra.package import ROOT, import_ms, package, write_templates
from infra.params import PARAMS_DIR, load_params, parameter_overrides

CHALICE_CONFIG = ROOT / ".chalice" / "config.json"


def _coldstart(out: Path, runs: int) -> list[dict[str, object]]:
    return [
        {
            "stage": stage.name,
            "import_ms_no_bytecode": import_ms(
                out / stage.name / "deployment.zip", stage.name, bytecode=False, runs=runs
            ),
            "import_ms_shipped_bytecode": import_ms(
                out / stage.name / "deployment.zip", stage.name, bytecode=True, runs=runs
            ),
            "runs": runs,
        }
        for stage in API_STAGES
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra", description=(__doc__ or "").split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("templates", "package"):
        commands.add_parser(name).add_argument("--out", type=Path, default=ROOT / "out")
    commands.choices["package"].add_argument("--no-bytecode", action="store_true")
    params = commands.add_parser("params", help="print Key=Value parameter overrides of one stack")
    params.add_argument("--env", required=True)
    params.add_argument("--stack", required=True, choices=["base", *(s.name for s in STAGES)])
    cold = commands.add_parser("coldstart", help="median import time of app per packaged stage, with/without .pyc")
    cold.add_argument("--out", type=Path, default=ROOT / "out")
    cold.add_argument("--runs", type=int, default=9)
    example = commands.add_parser("policies", help="write every policy document, for example ARNs (linters)")
    example.add_argument("dir", type=Path)
    config = commands.add_parser("chalice-config", help="write .chalice/config.json from the registry")
    config.add_argument("--check", action="store_true", help="only compare; exit 1 if it is stale")
    _aws_commands(commands)
    args = parser.parse_args(argv)
    if args.command in ("chalice-project", "post-deploy", "guard"):
        from infra.commands import run

        return run(args)
    try:
        if args.command == "chalice-config":
            return _chalice_config(check=args.check)
        if args.command == "templates":
            for path in write_templates(args.out):
                print(f"wrote {path}")
        elif args.command == "package":
            package(args.out, bytecode=not args.no_bytecode)
        elif args.command == "coldstart":
            print(json.dumps(_coldstart(args.out, args.runs), indent=2))
        elif args.command == "params":
            print(" ".join(parameter_overrides(load_params(args.env)[args.stack])))
        else:
            args.dir.mkdir(parents=True, exist_ok=True)
            for name, document in example_policies().items():
                (args.dir / name).write_text(render(document), encoding="utf-8")
    except (OSError, ValueError, TemplateError, subprocess.CalledProcessError) as exc:
        print(f"infra: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _chalice_config(*, check: bool) -> int:
    text = render_config(tracked_config())
    current = CHALICE_CONFIG.read_text(encoding="utf-8") if CHALICE_CONFIG.exists() else None
    if check:
        if current != text:
            print(f"infra: {CHALICE_CONFIG} is out of date; run `python -m infra chalice-config`", file=sys.stderr)
            return 1
        return 0
    CHALICE_CONFIG.write_text(text, encoding="utf-8")
    print(f"wrote {CHALICE_CONFIG}")
    return 0


def _aws_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The commands that talk to AWS (credentials and region from the environment, as the AWS CLI's)."""
    project = commands.add_parser("chalice-project", help="write .deploy/<env>/ for chalice deploy (guards first)")
    post = commands.add_parser("post-deploy", help="what chalice cannot set; after chalice deploy")
    post.add_argument("--stage", required=True, choices=["all", *(s.name for s in STAGES)])
    guard = commands.add_parser("guard", help="refuse if the environment is deployed by the other path")
    guard.add_argument("--path", required=True, choices=["chalice", "package"])
    for command in (project, post, guard):
        command.add_argument("--env", required=True)
    for command in (project, post):
        command.add_argument("--params-dir", type=Path, default=PARAMS_DIR)
        command.add_argument("--out", type=Path, default=ROOT / ".deploy", help="where projects live (.deploy)")


if __name__ == "__main__":
    sys.exit(main())
