"""The IAM policies of pii-vault, generated from one source for every consumer: the base
template (``infra.base``), the policy evaluator's proofs (tests/), parliament
(tools/checks.sh) and the request recorder.

- ``stage_policy(stage, arns)``: the identity policy of a stage's role for the ARNs of one
  environment (``AccountArns``) or of the base stack (``StackArns``): the stage's own grants
  (``api_stages``, ``jobs``), its functions' log groups, and (if the stage uses tenant keys)
  its tag-scoped tenant-key statements (``tenants``);
- ``key_policy(key, admin, roles)``: a KMS key's policy (``keys``);
- ``tenant_key_policy``, ``tracing_policy``, and the callers' documents (``callers``).

Each grant is stated once, keyed by stage name; the stage list itself is the registry's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from infra.arns import AccountArns, Arns, InvalidResourceError, StackArns
from infra.cfn import Json
from infra.iam import api_stages, jobs
from infra.iam.keys import key_policy, key_users
from infra.iam.statements import KEY_POLICY_ADMIN_SID, Document, Statement, document, log_statements
from infra.iam.tenants import TENANT_KEY_ACTIONS, tenant_key_policy, tenant_key_statements

__all__ = [
    "KEY_POLICY_ADMIN_SID",
    "STAGE_GRANTS",
    "AccountArns",
    "Arns",
    "InvalidResourceError",
    "StackArns",
    "key_policy",
    "key_users",
    "rewrap_policy",
    "stage_policy",
    "tenant_key_policy",
    "tracing_policy",
]

# Each stage's own grants (its tables, keys and streams); log groups and tenant keys are added
# by ``stage_policy`` for every stage alike.
STAGE_GRANTS: Mapping[str, Callable[[Arns], list[Statement]]] = {
    "writer": api_stages.writer,
    "reader": api_stages.reader,
    "masked": api_stages.masked,
    "indexer": jobs.indexer,
    "offboard": jobs.offboard,
    "rewrap": jobs.rewrap,
}
# X-Ray accepts no resource-level permissions: "*" is the only Resource these two take.
TRACING_ACTIONS = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")


def _policy(stage_name: str, arns: Arns, own: list[Statement]) -> Document:
    tenant = tenant_key_statements(stage_name, arns) if stage_name in TENANT_KEY_ACTIONS else []
    return document(*own, *log_statements(arns, stage_name), *tenant)


def stage_policy(stage_name: str, arns: Arns) -> Document:
    """The identity policy of ``stage_name``'s role, scoped to ``arns``."""
    if stage_name not in STAGE_GRANTS:
        raise InvalidResourceError(f"no policy for stage {stage_name!r}")
    return _policy(stage_name, arns, STAGE_GRANTS[stage_name](arns))


def rewrap_policy(arns: Arns, target_key: Json) -> Document:
    """The rewrap role's policy for a move to a new shared (or multi-Region) key ``target_key``:
    ``stage_policy("rewrap", arns)`` plus ReEncryptTo on that key (docs/tenant-keys.md, "Rewrap")."""
    return _policy("rewrap", arns, jobs.rewrap(arns, target_key))


def tracing_policy() -> Document:
    """What ``Tracing: Active`` needs (SAM adds it only to roles it creates itself). Lambda's X-Ray
    integration sends the traces with them, never the code (unused by every recorded request)."""
    return document({"Sid": "SendTraces", "Effect": "Allow", "Action": list(TRACING_ACTIONS), "Resource": "*"})
