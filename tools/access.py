"""Who may call pii-vault: caller identity policies, the tenant roles' trust policy and
the per-stage API resource policy.

- **Caller policies** (``policies/callers/<stage>-caller-<scope>.json``): ``execute-api:Invoke``
  on one stage's API, for the HTTP methods that stage's app really registers. The
  ``tenant`` scope reaches only ``/customers/<tag>/...`` where ``<tag>`` is the caller's
  ``pii-vault-tenant`` principal (or session) tag, through the IAM policy variable
  ``${aws:PrincipalTag/pii-vault-tenant}``; without the tag the statement matches nothing.
  The ``all-tenants`` scope reaches every tenant of that stage.
- **Trust policy** of a tenant-scoped role (``policies/callers/tenant-role-trust.json``):
  the backend may assume it only with exactly one session tag, ``pii-vault-tenant``, whose
  value is refused when it holds anything the tenant-id alphabet lacks and IAM patterns
  can express (wildcards, ``/``, ``.``, ``:``, ``=``, ``+``, ``@``, space), is empty, or is
  longer than 64 characters.
- **API resource policy** (``api_resource_policy``): an explicit Deny for every principal
  whose ``aws:PrincipalArn`` is not on the stage's allow-list; an empty list denies everyone.
  It holds no Allow on purpose: in one account an Allow in the resource policy is enough
  on its own, so a stage-wide Allow for a listed tenant-scoped role would hand it every
  tenant. Callers get their routes from their identity policy only.

The committed files are written for the example environment of ``.chalice/resources.json``
with placeholder API ids (an API id exists only after deployment); ``--api-arn`` and
``--backend-arn`` render them for a real one. ``cfn_sub`` turns a document into
CloudFormation ``Fn::Sub`` form, escaping IAM's own variables as ``${!aws:...}``.

    python -m tools.access [--check] [--out-dir DIR] [--api-arn writer=ARN] [--backend-arn ARN]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chalicelib.stages import API_STAGE_NAMES
from chalicelib.support.config import TENANT_KEY_TAG
from tools.generated import write_or_check
from tools.policies import InvalidResourceError, _principal, render

ROLES = API_STAGE_NAMES  # the API stages, from the registry

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "policies" / "callers"
TENANT_TAG = TENANT_KEY_TAG  # one tag key names a tenant: on its callers' principals and on its own KMS key
TENANT_VARIABLE = "${aws:PrincipalTag/" + TENANT_TAG + "}"
SCOPES = ("tenant", "all-tenants")
TENANT_SEGMENT = "{customer_id}"
ROUTE_PREFIX = "/customers/" + TENANT_SEGMENT + "/"
TRUST_POLICY_FILE = "tenant-role-trust.json"
# The customer_id alphabet (chalicelib.domain.validation) is A-Z a-z 0-9 _ -, 1-64 characters. IAM
# patterns have no character classes, so the trust policy refuses what they can name:
# the characters STS allows in a tag value beyond that alphabet (letters and digits of
# other scripts excepted), the wildcards and '$' (which STS refuses already), empty, and
# more than 64 characters. A value that slips through (e.g. "é") is a tenant id the API
# refuses with a 400, never another tenant's.
TENANT_ID_MAX = 64
_REFUSED_TENANT_TAGS = (
    "",
    "?" * (TENANT_ID_MAX + 1) + "*",
    *(f"*{c}*" for c in ("${*}", "${?}", "${$}", " ", "/", ".", ":", "=", "+", "@")),
)
# Each part literal, a <placeholder> or a CloudFormation reference (${AWS::Region}, ${WriterApi}):
# no wildcards and no IAM policy variables.
_PART = r"(?:[\w-]+|<[\w-]+>|\$\{[A-Z][\w:]*\})"
_API_ARN = re.compile(rf"^arn:{_PART}:execute-api:{_PART}:{_PART}:{_PART}/{_PART}$")


def stage_methods(stage: str) -> list[str]:
    """The HTTP methods the stage's app registers, all under ``/customers/{customer_id}/``."""
    from chalicelib.stages.app import create_app
    from chalicelib.support.config import Settings

    app = create_app(settings=Settings(role=stage))  # lazy clients: no AWS touched
    methods: set[str] = set()
    for path, entries in app.routes.items():
        if not path.startswith(ROUTE_PREFIX):
            # The caller policies grant customers/<tenant>/*; a route elsewhere needs a decision here.
            raise InvalidResourceError(f"route {path} of the {stage} stage is not under {ROUTE_PREFIX}")
        methods.update(method.upper() for method in entries)
    return sorted(methods)


def caller_policy(stage: str, scope: str, api_arn: str, methods: Iterable[str] | None = None) -> dict[str, Any]:
    """Invoke on one stage's API (``arn:...:execute-api:<region>:<account>:<api-id>/<api-stage>``):
    its own methods, one tenant (``scope="tenant"``) or all (``"all-tenants"``)."""
    _check_stage(stage)
    if scope not in SCOPES:
        raise InvalidResourceError(f"scope must be one of {', '.join(SCOPES)}")
    if not _API_ARN.match(api_arn):
        raise InvalidResourceError(
            f"api_arn {api_arn!r} is not arn:<partition>:execute-api:<region>:"
            "<account>:<api-id>/<api-gateway-stage> (no wildcards)"
        )
    tenant = TENANT_VARIABLE if scope == "tenant" else "*"
    methods = sorted(methods) if methods is not None else stage_methods(stage)
    who = "OwnTenant" if scope == "tenant" else "AllTenants"
    return _document(
        {
            "Sid": f"Invoke{stage.title()}RoutesOf{who}",
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            # /METHOD/customers/T/people (a collection) is matched by customers/T/* as well.
            "Resource": [f"{api_arn}/{method}/customers/{tenant}/*" for method in methods],
        }
    )


def tenant_trust_policy(backend_principals: Sequence[str]) -> dict[str, Any]:
    """Trust policy of a tenant-scoped caller role: the listed backends may assume it only
    with a ``pii-vault-tenant`` session tag (the only tag, only it transitive) of a tenant id."""
    backends = sorted({_principal(arn, "backend principal") for arn in backend_principals})
    if not backends:
        raise InvalidResourceError("a trust policy needs at least one backend principal")
    required = {"StringLike": {f"aws:RequestTag/{TENANT_TAG}": "?*"}}
    return _document(
        {
            "Sid": "AssumeOnlyWithATenantTag",
            "Effect": "Allow",
            "Principal": {"AWS": backends},
            "Action": "sts:AssumeRole",
            "Condition": required,
        },
        {
            "Sid": "TagTheSessionWithTheTenantOnly",
            "Effect": "Allow",
            "Principal": {"AWS": backends},
            "Action": "sts:TagSession",
            "Condition": {
                **required,
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": [TENANT_TAG],
                    "sts:TransitiveTagKeys": [TENANT_TAG],
                },
            },
        },
        {
            "Sid": "RefuseTenantTagsOutsideTheTenantIdAlphabet",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {"StringLike": {f"aws:RequestTag/{TENANT_TAG}": list(_REFUSED_TENANT_TAGS)}},
        },
    )


def api_resource_policy(stage: str, allowed_principals: list[str], api_arn: str = "execute-api:/*") -> dict[str, Any]:
    """The stage's API resource policy: Deny ``execute-api:Invoke`` on ``api_arn`` to every
    principal whose ``aws:PrincipalArn`` is not in ``allowed_principals`` (role or user ARNs;
    sessions of a listed role match). An empty list denies everyone.

    There is deliberately no Allow: for a caller in the API's account an Allow here would
    suffice without any identity policy, so a stage-wide Allow for a tenant-scoped role
    would reach every tenant. Callers get their routes from their identity policy
    (``caller_policy``); callers from other accounts would need an Allow and are not served.
    """
    _check_stage(stage)
    if not re.match(r"^(execute-api:/|arn:[\w-]+:execute-api:[\w-]+:\d{12}:[\w*]+/)", api_arn):
        raise InvalidResourceError(f"api_arn {api_arn!r} is neither execute-api:/... nor an execute-api ARN")
    principals = sorted({_principal(arn, "allowed principal") for arn in allowed_principals})
    statement: dict[str, Any] = {
        "Sid": f"DenyCallersNotOnThe{stage.title()}AllowList",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": api_arn,
    }
    if principals:
        # Absent (an anonymous caller): a negated operator is true, so the Deny applies.
        statement["Condition"] = {"ArnNotEquals": {"aws:PrincipalArn": principals}}
    else:
        statement["Sid"] = f"DenyEveryoneTheEmpty{stage.title()}AllowList"
    return _document(statement)


def cfn_sub(value: Any) -> Any:
    """A policy document for a CloudFormation template: every string holding ``${...}`` becomes
    ``{"Fn::Sub": ...}``, with IAM's policy variables escaped (``${!aws:...}``, ``${!*}``) so
    that CloudFormation substitutes only its own (``${AWS::Region}``, ``${WriterApi}``)."""
    if isinstance(value, dict):
        return {k: cfn_sub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [cfn_sub(v) for v in value]
    if isinstance(value, str) and "${" in value:
        return {"Fn::Sub": re.sub(r"\$\{(aws:[^}]*|[*?$])\}", r"${!\1}", value)}
    return value


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
    for stage in ROLES:
        methods = stage_methods(stage)
        for scope in SCOPES:
            files[f"{stage}-caller-{scope}.json"] = render(caller_policy(stage, scope, api_arns[stage], methods))
    files[TRUST_POLICY_FILE] = render(tenant_trust_policy(backend_principals))
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.access", description=__doc__.split("\n")[0])
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
        api_arns = {stage: example_api_arn(stage, api_gateway_stage=_api_gateway_stage(stage)) for stage in ROLES}
        for item in args.api_arn:
            stage, sep, arn = item.partition("=")
            if not sep or stage not in ROLES:
                raise InvalidResourceError(f"--api-arn {item!r}: expected one of {', '.join(ROLES)}=<arn>")
            api_arns[stage] = arn
        files = generate(api_arns, args.backend_arn or [example_backend_arn()])
    except (OSError, ValueError, KeyError) as exc:
        print(f"tools.access: error: {exc}", file=sys.stderr)
        return 2
    return write_or_check("tools.access", args.out_dir, files, check=args.check)


def _check_stage(stage: str) -> None:
    if stage not in ROLES:
        raise InvalidResourceError(f"stage must be one of {', '.join(ROLES)}; got {stage!r}")


def _resources() -> dict[str, Any]:
    resources: dict[str, Any] = json.loads((ROOT / ".chalice" / "resources.json").read_text(encoding="utf-8"))
    return resources


def _api_gateway_stage(stage: str) -> str:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    name: str = config.get("stages", {}).get(stage, {}).get("api_gateway_stage", config.get("api_gateway_stage", "api"))
    return name


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


if __name__ == "__main__":
    sys.exit(main())
