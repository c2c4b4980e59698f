"""The committed caller policies (``policies/callers/``): each API stage's caller identity
policies (``tenant`` and ``all-tenants`` scope) and the tenant roles' trust policy, generated
by ``infra.iam.callers`` (which also says what each document grants and refuses).

The committed files are written for the example environment of ``.chalice/resources.json``
with placeholder API ids (an API id exists only after deployment); ``--api-arn`` and
``--backend-arn`` render them for a real one.

    python -m tools.access [--check] [--out-dir DIR] [--api-arn writer=ARN] [--backend-arn ARN]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chalicelib.stages import API_STAGES
from infra.arns import InvalidResourceError
from infra.cfn import render
from infra.iam.callers import SCOPES, caller_policy, stage_methods, tenant_trust_policy
from tools.generated import write_or_check

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "policies" / "callers"
TRUST_POLICY_FILE = "tenant-role-trust.json"
STAGE_NAMES = tuple(stage.name for stage in API_STAGES)


def example_api_arn(stage: str, resources: Mapping[str, Any] | None = None, api_gateway_stage: str = "api") -> str:
    """The committed files' API ARN: partition, region and account of the example environment
    (``.chalice/resources.json``), a placeholder API id."""
    resources = resources if resources is not None else _resources()
    _, partition, _, region, account = str(resources["table_arn"]).split(":")[:5]
    return f"arn:{partition}:execute-api:{region}:{account}:<{stage}-api-id>/{api_gateway_stage}"


def example_backend_arn(resources: Mapping[str, Any] | None = None) -> str:
    resources = resources if resources is not None else _resources()
    _, partition, _, _, account = str(resources["table_arn"]).split(":")[:5]
    return f"arn:{partition}:iam::{account}:role/pii-vault-backend"


def generate(api_arns: Mapping[str, str], backend_principals: Sequence[str]) -> dict[str, str]:
    """File name -> content: four caller policies and the tenant roles' trust policy."""
    files = {}
    for stage in STAGE_NAMES:
        methods = stage_methods(stage)
        for scope in SCOPES:
            files[f"{stage}-caller-{scope}.json"] = render(caller_policy(stage, scope, api_arns[stage], methods))
    files[TRUST_POLICY_FILE] = render(tenant_trust_policy(backend_principals))
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.access", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the files differ from the generated ones"
    )
    parser.add_argument(
        "--api-arn",
        action="append",
        default=[],
        metavar="STAGE=ARN",
        help="a deployed stage's API, arn:aws:execute-api:<region>:<account>:<api-id>/api",
    )
    parser.add_argument(
        "--backend-arn",
        action="append",
        default=[],
        metavar="ARN",
        help="a role or user that may assume the tenant-scoped roles (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        api_arns = {stage: example_api_arn(stage, api_gateway_stage=_api_gateway_stage(stage)) for stage in STAGE_NAMES}
        for item in args.api_arn:
            stage, sep, arn = item.partition("=")
            if not sep or stage not in STAGE_NAMES:
                raise InvalidResourceError(f"--api-arn {item!r}: expected one of {', '.join(STAGE_NAMES)}=<arn>")
            api_arns[stage] = arn
        files = generate(api_arns, args.backend_arn or [example_backend_arn()])
    except (OSError, ValueError, KeyError) as exc:
        print(f"tools.access: error: {exc}", file=sys.stderr)
        return 2
    return write_or_check("tools.access", args.out_dir, files, check=args.check)


def _resources() -> dict[str, Any]:
    resources: dict[str, Any] = json.loads((ROOT / ".chalice" / "resources.json").read_text(encoding="utf-8"))
    return resources


def _api_gateway_stage(stage: str) -> str:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    name: str = config.get("stages", {}).get(stage, {}).get("api_gateway_stage", config.get("api_gateway_stage", "api"))
    return name


if __name__ == "__main__":
    sys.exit(main())
