"""Per-tenant keys (chalicelib/keys/tenants.py): what each stage may do with a tenant's own key,
in its identity policy (any key **tagged** with a tenant, under that tenant's context only)
and in the key's own policy (tools.tenants writes it when it creates the key)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.envelope.format import FULL_VIEW, MASKED_VIEW, VIEW_KEY
from chalicelib.stages import stage
from chalicelib.support.config import TENANT_KEY_TAG
from chalicelib.support.environment import Table
from infra.arns import Arns, InvalidResourceError
from infra.cfn import APP, Json
from infra.iam.statements import (
    ENCRYPTION_CONTEXT_KEYS,
    MASKED_TENANT_CONTEXT_KEYS,
    TENANT_KEY,
    Document,
    Statement,
    admin_statement,
    document,
    principal,
)

# Which KMS actions each stage may use on a tenant's own key (always under that tenant's context).
TENANT_KEY_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "writer": ("kms:Encrypt",),
    "reader": ("kms:Decrypt",),
    "indexer": ("kms:Decrypt",),
    "masked": ("kms:Decrypt",),
    "rewrap": ("kms:ReEncryptFrom", "kms:ReEncryptTo"),
}
# Under which views' contexts each stage uses a tenant key, as on the shared key: the writer
# encrypts both, the reader and indexer decrypt the full view only (``view`` absent), the masked
# stage the masked view only, the rewrap job moves both.
TENANT_KEY_VIEWS: Mapping[str, tuple[str, ...]] = {
    "writer": (FULL_VIEW, MASKED_VIEW),
    "reader": (FULL_VIEW,),
    "indexer": (FULL_VIEW,),
    "masked": (MASKED_VIEW,),
    "rewrap": (FULL_VIEW, MASKED_VIEW),
}
_TAG_CONDITION_KEY = f"aws:ResourceTag/{TENANT_KEY_TAG}"


def _tenant_context_condition(customer_id: str, view: str = FULL_VIEW) -> dict[str, Any]:
    """Exactly {app, customer_id} (full view: ``view`` must be absent) or exactly {app, customer_id,
    view} with view "masked"; app fixed, customer_id = ``customer_id`` (may be a policy variable)."""
    equals = {"kms:EncryptionContext:app": APP, f"kms:EncryptionContext:{TENANT_KEY}": customer_id}
    if view == MASKED_VIEW:
        return {
            "StringEquals": {**equals, f"kms:EncryptionContext:{VIEW_KEY}": MASKED_VIEW},
            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(MASKED_TENANT_CONTEXT_KEYS)},
        }
    return {
        "StringEquals": equals,
        "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(ENCRYPTION_CONTEXT_KEYS)},
        "Null": {f"kms:EncryptionContext:{VIEW_KEY}": "true"},
    }


def _view_sid(view: str) -> str:
    return "Masked" if view == MASKED_VIEW else ""


def tenant_key_statements(stage_name: str, arns: Arns) -> list[Statement]:
    """What a stage's identity policy adds for per-tenant keys: its ``TENANT_KEY_ACTIONS`` on any
    key of the account (and of the customer accounts) **tagged** with a tenant, only when the
    context's customer_id equals the key's tag; and GetItem on the registry, if the stage reads
    it. ``aws:ResourceTag`` works for KMS in IAM policies (not in key policies); a tag change
    takes up to five minutes to apply."""
    statements: list[Statement] = []
    for view in TENANT_KEY_VIEWS[stage_name]:
        condition = _tenant_context_condition("${" + _TAG_CONDITION_KEY + "}", view)
        condition["Null"] = {
            **condition.get("Null", {}),
            _TAG_CONDITION_KEY: "false",
            f"kms:EncryptionContext:{TENANT_KEY}": "false",
        }
        statements.append(
            {
                "Sid": f"TenantKeysByTagUnderOwn{_view_sid(view)}TenantContext",
                "Effect": "Allow",
                "Action": list(TENANT_KEY_ACTIONS[stage_name]),
                "Resource": arns.tenant_keys(),
                "Condition": condition,
            }
        )
    if Table.TENANTS in stage(stage_name).tables:
        statements.append(
            {
                "Sid": "ReadTenantKeyRegistry",
                "Effect": "Allow",
                "Action": "dynamodb:GetItem",
                "Resource": arns.table(Table.TENANTS),
            }
        )
    return statements


def tenant_key_policy(admin: Json, customer_id: str, roles: Mapping[str, Json]) -> Document:
    """The key policy of one tenant's own key: administration for ``admin`` (no cryptographic
    use), and for each stage role in ``roles`` (stage -> role ARN) only its actions of
    ``TENANT_KEY_ACTIONS``, only under the context naming ``customer_id``. No account root: IAM
    policies alone never reach this key. A customer-owned key in another account gets the same
    statements from the customer (docs/tenant-keys.md)."""
    statements: list[Statement] = [admin_statement(admin)]
    for stage_name, arn in sorted(roles.items()):
        if stage_name not in TENANT_KEY_ACTIONS:
            raise InvalidResourceError(f"no tenant key use for stage {stage_name!r}")
        if arn == admin:
            raise InvalidResourceError(f"the {stage_name} role must differ from the admin")
        statements += [
            {
                "Sid": f"{stage_name.capitalize()}RoleUnder{_view_sid(view)}TenantContextOnly",
                "Effect": "Allow",
                "Principal": {"AWS": principal(arn, f"{stage_name}_role_arn")},
                "Action": list(TENANT_KEY_ACTIONS[stage_name]),
                "Resource": "*",
                "Condition": _tenant_context_condition(customer_id, view),
            }
            for view in TENANT_KEY_VIEWS[stage_name]
        ]
    return document(*statements)
