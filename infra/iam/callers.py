"""Who may call pii-vault: caller identity policies, the tenant roles' trust policy and the
per-stage API resource policy (``tools.access`` writes the committed caller files).

- **Caller policies**: ``execute-api:Invoke`` on one stage's API, for the HTTP methods that
  stage serves (its OpenAPI document, docs/openapi-<stage>.json, generated from the routes).
  The ``tenant`` scope reaches only ``/customers/<tag>/...`` where ``<tag>`` is the caller's
  ``pii-vault-tenant`` principal (or session) tag, through the IAM policy variable
  ``${aws:PrincipalTag/pii-vault-tenant}``; without the tag the statement matches nothing.
  The ``all-tenants`` scope reaches every tenant of that stage.
- **Trust policy** of a tenant-scoped role: the backend may assume it only with exactly one
  session tag, ``pii-vault-tenant``, whose value is refused when it holds anything the
  tenant-id alphabet lacks and IAM patterns can express (wildcards, ``/``, ``.``, ``:``, ``=``,
  ``+``, ``@``, space), is empty, or is longer than 64 characters.
- **API resource policy**: an explicit Deny for every principal whose ``aws:PrincipalArn`` is
  not on the stage's allow-list; an empty list denies everyone. It holds no Allow on purpose:
  in one account an Allow in the resource policy is enough on its own, so a stage-wide Allow
  for a listed tenant-scoped role would hand it every tenant. Callers get their routes from
  their identity policy only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from chalicelib.stages import API_STAGES
from chalicelib.support.config import TENANT_KEY_TAG
from infra.arns import InvalidResourceError
from infra.cfn import Json
from infra.iam.statements import Document, document, principal

ROOT = Path(__file__).resolve().parents[2]
TENANT_TAG = TENANT_KEY_TAG  # one tag key names a tenant: on its callers' principals and on its own KMS key
TENANT_VARIABLE = "${aws:PrincipalTag/" + TENANT_TAG + "}"
SCOPES = ("tenant", "all-tenants")
ROUTE_PREFIX = "/customers/{customer_id}/"
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
_HTTP_METHODS = ("delete", "get", "head", "options", "patch", "post", "put")


def _check_stage(stage_name: str) -> None:
    names = [s.name for s in API_STAGES]
    if stage_name not in names:
        raise InvalidResourceError(f"stage must be one of {', '.join(names)}; got {stage_name!r}")


def stage_methods(stage_name: str) -> list[str]:
    """The HTTP methods the stage serves, all under ``/customers/{customer_id}/``: from its
    OpenAPI document (generated from the routes; tests/unit/test_openapi.py holds them equal)."""
    _check_stage(stage_name)
    contract = json.loads((ROOT / "docs" / f"openapi-{stage_name}.json").read_text(encoding="utf-8"))
    methods: set[str] = set()
    for path, item in contract["paths"].items():
        if not path.startswith(ROUTE_PREFIX):
            # The caller policies grant customers/<tenant>/*; a route elsewhere needs a decision here.
            raise InvalidResourceError(f"route {path} of the {stage_name} stage is not under {ROUTE_PREFIX}")
        methods.update(method.upper() for method in item if method in _HTTP_METHODS)
    return sorted(methods)


def caller_policy(stage_name: str, scope: str, api_arn: str, methods: Iterable[str] | None = None) -> Document:
    """Invoke on one stage's API (``arn:...:execute-api:<region>:<account>:<api-id>/<api-stage>``):
    its own methods, one tenant (``scope="tenant"``) or all (``"all-tenants"``)."""
    _check_stage(stage_name)
    if scope not in SCOPES:
        raise InvalidResourceError(f"scope must be one of {', '.join(SCOPES)}")
    if not _API_ARN.match(api_arn):
        raise InvalidResourceError(
            f"api_arn {api_arn!r} is not arn:<partition>:execute-api:<region>:"
            "<account>:<api-id>/<api-gateway-stage> (no wildcards)"
        )
    tenant = TENANT_VARIABLE if scope == "tenant" else "*"
    methods = sorted(methods) if methods is not None else stage_methods(stage_name)
    who = "OwnTenant" if scope == "tenant" else "AllTenants"
    return document(
        {
            "Sid": f"Invoke{stage_name.title()}RoutesOf{who}",
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            # /METHOD/customers/T/people (a collection) is matched by customers/T/* as well.
            "Resource": [f"{api_arn}/{method}/customers/{tenant}/*" for method in methods],
        }
    )


def tenant_trust_policy(backend_principals: Sequence[str]) -> Document:
    """Trust policy of a tenant-scoped caller role: the listed backends may assume it only
    with a ``pii-vault-tenant`` session tag (the only tag, only it transitive) of a tenant id."""
    backends = sorted({principal(arn, "backend principal") for arn in backend_principals})
    if not backends:
        raise InvalidResourceError("a trust policy needs at least one backend principal")
    required = {"StringLike": {f"aws:RequestTag/{TENANT_TAG}": "?*"}}
    return document(
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


def api_resource_policy(stage_name: str, allowed: Sequence[str] | Json, api_arn: str = "execute-api:/*") -> Document:
    """The stage's API resource policy: Deny ``execute-api:Invoke`` on ``api_arn`` to every
    principal whose ``aws:PrincipalArn`` is not in ``allowed`` (role or user ARNs; sessions of a
    listed role match; or the template's ``!Ref AllowedCallers``). An empty list denies everyone.

    There is deliberately no Allow: for a caller in the API's account an Allow here would
    suffice without any identity policy, so a stage-wide Allow for a tenant-scoped role
    would reach every tenant. Callers get their routes from their identity policy
    (``caller_policy``); callers from other accounts would need an Allow and are not served.
    """
    _check_stage(stage_name)
    if not re.match(r"^(execute-api:/|arn:[\w-]+:execute-api:[\w-]+:\d{12}:[\w*]+/)", api_arn):
        raise InvalidResourceError(f"api_arn {api_arn!r} is neither execute-api:/... nor an execute-api ARN")
    principals: Json = (
        allowed if isinstance(allowed, dict) else sorted({principal(a, "allowed principal") for a in allowed})
    )
    statement: dict[str, Any] = {
        "Sid": f"DenyCallersNotOnThe{stage_name.title()}AllowList",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": api_arn,
    }
    if principals:
        # Absent (an anonymous caller): a negated operator is true, so the Deny applies.
        statement["Condition"] = {"ArnNotEquals": {"aws:PrincipalArn": principals}}
    else:
        statement["Sid"] = f"DenyEveryoneTheEmpty{stage_name.title()}AllowList"
    return document(statement)


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
