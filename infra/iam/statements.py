"""Statement builders every policy shares: documents, principals, KMS encryption contexts,
MACs, log groups, checkpoints and key administration.

The encryption contexts are taken from the code that builds them (``chalicelib.envelope.format``), so
a policy and the contexts the code sends cannot drift apart.
"""

from __future__ import annotations

import re
from typing import Any

from chalicelib.envelope.format import (
    KIND_MASKED_POOL,
    KIND_MASKED_TENANT,
    KIND_POOL,
    KIND_TENANT,
    MASKED_VIEW,
    VIEW_KEY,
    encryption_context,
)
from chalicelib.stages import stage
from chalicelib.store.tables import ledger_partitions
from chalicelib.support.environment import Table
from infra.arns import Arns, InvalidResourceError
from infra.cfn import APP, Json

Statement = dict[str, Any]
Document = dict[str, Any]

# The two KMS encryption contexts a data key is wrapped under (format v2): the tenant's
# {"app", "customer_id"} and the writer pool's {"app", "scope": "pool"}; the masked view's
# add {"view": "masked"}.
_TENANT_CONTEXT = encryption_context(APP, "tenant", KIND_TENANT)
_POOL_CONTEXT = encryption_context(APP, "tenant", KIND_POOL)
ENCRYPTION_CONTEXT_KEYS = tuple(sorted(_TENANT_CONTEXT))  # ("app", "customer_id")
POOL_CONTEXT_KEYS = tuple(sorted(_POOL_CONTEXT))  # ("app", "scope")
(TENANT_KEY,) = set(_TENANT_CONTEXT) - {"app"}
(POOL_KEY,) = set(_POOL_CONTEXT) - {"app"}
POOL_SCOPE = _POOL_CONTEXT[POOL_KEY]
MASKED_TENANT_CONTEXT_KEYS = tuple(sorted(encryption_context(APP, "tenant", KIND_MASKED_TENANT)))
MASKED_POOL_CONTEXT_KEYS = tuple(sorted(encryption_context(APP, "tenant", KIND_MASKED_POOL)))
MAC_ALGORITHM = "HMAC_SHA_256"
LOG_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
CHECKPOINT_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem")
# Key administration without any cryptographic use and without kms:CreateGrant (a grant
# could hand Decrypt to anyone). Listed one by one: a wildcard such as kms:Create* would
# include CreateGrant. The admin can still rewrite the policy (kms:PutKeyPolicy): that
# power is inherent to administering a key and is audited by CloudTrail (SECURITY.md).
KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
KEY_POLICY_ADMIN_SID = "KeyAdministrationWithoutCryptographicUse"
PRINCIPAL_ARN = re.compile(
    r"^arn:(?:aws|aws-cn|aws-us-gov):iam::\d{12}:(?:role|user)/(?:[A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,128}$"
)


def document(*statements: Statement) -> Document:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def principal(arn: Json, name: str) -> Json:
    """An IAM role or user ARN (or the template's intrinsic for one)."""
    if isinstance(arn, dict):
        return arn
    if not isinstance(arn, str) or not PRINCIPAL_ARN.match(arn):
        raise InvalidResourceError(
            f"{name} {arn!r} is not an IAM role or user ARN (arn:aws:iam::<account>:role/<name>); "
            "wildcards, the account root and assumed-role session ARNs are refused"
        )
    return arn


def admin_statement(admin: Json) -> Statement:
    """Every key policy's first statement: administration without cryptographic use."""
    return {
        "Sid": KEY_POLICY_ADMIN_SID,
        "Effect": "Allow",
        "Principal": {"AWS": principal(admin, "admin_arn")},
        "Action": list(KEY_ADMIN_ACTIONS),
        "Resource": "*",
    }


def _statement(sid: str, action: str, resource: Json, condition: dict[str, Any]) -> Statement:
    return {"Sid": sid, "Effect": "Allow", "Action": action, "Resource": resource, "Condition": condition}


def kms_statements(sid: str, action: str, key: Json) -> list[Statement]:
    """One statement per allowed encryption context, and nothing else:

    - ``<sid>UnderTenantContext``: exactly {app, customer_id}, app fixed, customer_id present;
    - ``<sid>UnderPoolContext``: exactly {app, scope}, app fixed, scope "pool".

    ForAllValues alone is also true for an empty context, hence the StringEquals on app
    and the Null check on customer_id (the pool statement's StringEquals on scope does both).
    A mixed {app, customer_id, scope} context fails both key-set conditions.
    """
    return [
        _statement(
            f"{sid}UnderTenantContext",
            action,
            key,
            {
                "StringEquals": {"kms:EncryptionContext:app": APP},
                "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(ENCRYPTION_CONTEXT_KEYS)},
                "Null": {f"kms:EncryptionContext:{TENANT_KEY}": "false"},
            },
        ),
        _statement(
            f"{sid}UnderPoolContext",
            action,
            key,
            {
                "StringEquals": {"kms:EncryptionContext:app": APP, f"kms:EncryptionContext:{POOL_KEY}": POOL_SCOPE},
                "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(POOL_CONTEXT_KEYS)},
            },
        ),
    ]


def full_view_only(statements: list[Statement]) -> list[Statement]:
    """``statements`` refusing any context that names a view: the full view's data keys only.

    The exact key sets of ``kms_statements`` already leave ``view`` out; the explicit Null
    check says so where a reader of the policy looks, and survives a widened key set.
    """
    for statement in statements:
        statement["Condition"]["Null"] = {
            **statement["Condition"].get("Null", {}),
            f"kms:EncryptionContext:{VIEW_KEY}": "true",
        }
    return statements


def masked_kms_statements(sid: str, action: str, key: Json) -> list[Statement]:
    """The masked view's contexts: exactly {app, customer_id, view} or {app, scope, view}, view "masked".

    ``view`` must equal "masked" (StringEquals: absent is false), so no full-view data key
    (whose context has no ``view``) ever matches.
    """
    view = {"kms:EncryptionContext:app": APP, f"kms:EncryptionContext:{VIEW_KEY}": MASKED_VIEW}
    return [
        _statement(
            f"{sid}UnderMaskedTenantContext",
            action,
            key,
            {
                "StringEquals": view,
                "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(MASKED_TENANT_CONTEXT_KEYS)},
                "Null": {f"kms:EncryptionContext:{TENANT_KEY}": "false"},
            },
        ),
        _statement(
            f"{sid}UnderMaskedPoolContext",
            action,
            key,
            {
                "StringEquals": {**view, f"kms:EncryptionContext:{POOL_KEY}": POOL_SCOPE},
                "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(MASKED_POOL_CONTEXT_KEYS)},
            },
        ),
    ]


def both_views(sid: str, action: str, key: Json) -> list[Statement]:
    """The full view's two contexts (``view`` absent) and the masked view's two."""
    return [*full_view_only(kms_statements(sid, action, key)), *masked_kms_statements(sid, action, key)]


def mac_statement(sid: str, key: Json) -> Statement:
    """GenerateMac only (no VerifyMac: keys are derived, MACs never checked), HMAC-SHA-256 only."""
    return _statement(sid, "kms:GenerateMac", key, {"StringEquals": {"kms:MacAlgorithm": MAC_ALGORITHM}})


def log_statements(arns: Arns, stage_name: str) -> list[Statement]:
    """Chalice's autogen grants these three on arn:*:logs:*:*:*; here: each function's own group.

    CloudWatch Logs authorizes these actions against the ``...:*`` form of the group ARN; both are listed.
    The Lambda service writes the function's logs with them; the code never calls CloudWatch Logs
    (the recorded-request proof, tests/request_proof.py, reports them unused by design).
    """
    return [
        {
            "Sid": "WriteOwnLogs" if index == 0 else "WriteOwnLogs" + function.name.title().replace("_", ""),
            "Effect": "Allow",
            "Action": list(LOG_ACTIONS),
            "Resource": arns.log_group(stage_name, function.name),
        }
        for index, function in enumerate(stage(stage_name).functions)
    ]


def ledger_statement(arns: Arns, kinds: tuple[str, ...]) -> Statement:
    """Append-only (PutItem) on the erasure ledger, and only to the partitions of ``kinds``
    (``chalicelib/store/tables.py``): the partition key names who appends, and
    ``dynamodb:LeadingKeys`` holds each role to its own (the writer cannot plant a tenant-wide
    entry). ``Null``: a request naming no partition key is refused too."""
    return {
        "Sid": "AppendErasureLedger",
        "Effect": "Allow",
        "Action": "dynamodb:PutItem",
        "Resource": arns.table(Table.LEDGER),
        "Condition": {
            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ledger_partitions(kinds)},
            "Null": {"dynamodb:LeadingKeys": "false"},
        },
    }


def checkpoint_statement(arns: Arns) -> Statement:
    """A bulk job's checkpoints (chalicelib/service/jobs.py): read and write its own segments' entries."""
    return {
        "Sid": "JobCheckpoints",
        "Effect": "Allow",
        "Action": list(CHECKPOINT_ACTIONS),
        "Resource": arns.table(Table.JOBS),
    }
