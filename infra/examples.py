"""Every IAM, key and resource policy the templates hold, for example ARNs: what
tools/checks.sh gives parliament (which needs ARNs, not intrinsics)."""

from __future__ import annotations

from typing import Any

from chalicelib.stages import API_STAGES, STAGES
from chalicelib.support.environment import Key
from infra.arns import AccountArns
from infra.iam import key_policy, rewrap_policy, stage_policy, tenant_key_policy, tracing_policy
from infra.iam.callers import api_resource_policy
from infra.iam.tenants import TENANT_KEY_ACTIONS
from infra.specs import KEYS

REGION, ACCOUNT = "us-east-1", "123456789012"
_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f6c2a1e-8b3d-4c7a-9e52-7d1b4a6f3c80"
EXAMPLE_KEYS = {
    Key.DATA: _KEY,
    Key.FLEET_MAC: _KEY.replace("0f6c2a1e", "1a2b3c4d"),
    Key.BEACON_MAC: _KEY.replace("0f6c2a1e", "2b3c4d5e"),
}
EXAMPLE_TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/pii-vault-dev"
# As API Gateway stores it: it expands the template's "execute-api:/*" to the API's ARN.
EXAMPLE_API = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:a1b2c3d4e5/*"


def role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def example_policies() -> dict[str, dict[str, Any]]:
    """File name -> document: each stage role's policy as deployed, each key's policy naming
    every stage role, a tenant key's, the tracing policy and the API resource policies."""
    arns = AccountArns.of(EXAMPLE_TABLE, EXAMPLE_KEYS, functions="pii-vault-dev")
    roles = {stage.name: role(f"pii-vault-dev-{stage.name}") for stage in STAGES}
    admin = role("pii-vault-admin")
    documents = {f"{stage.name}-role-policy.json": stage_policy(stage.name, arns) for stage in STAGES}
    documents.update(
        {
            f"{spec.key.value.replace('_', '-')}-key-policy.json": key_policy(spec.key, admin, roles)
            for spec in KEYS.values()
        }
    )
    documents["rewrap-to-new-key-policy.json"] = rewrap_policy(arns, _KEY.replace("0f6c2a1e", "3c4d5e6f"))
    tenant_roles = {name: arn for name, arn in roles.items() if name in TENANT_KEY_ACTIONS}
    documents["tenant-key-policy.json"] = tenant_key_policy(admin, "acme", tenant_roles)
    documents["tracing-policy.json"] = tracing_policy()
    for stage in API_STAGES:
        documents[f"api-resource-policy-{stage.name}.json"] = api_resource_policy(
            stage.name, [role("app-backend")], EXAMPLE_API
        )
    documents["api-resource-policy-empty.json"] = api_resource_policy("reader", [], EXAMPLE_API)
    return documents
