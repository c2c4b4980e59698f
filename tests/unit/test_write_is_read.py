"""Issue 21 A, the rule: a write permission is a read permission.

A failed conditional write hands back the whole stored item when the request asks for it
(``ReturnValuesOnConditionCheckFailure=ALL_OLD``, also on DeleteItem and in transactions),
and no IAM condition key governs that parameter: whoever may write an item may read it.
So, for every role: one that may ``kms:Decrypt`` anything holds no write of any kind on the
PII table; and the writer, which writes it, can read no beacon (it has no access to the
beacon table, and the PII table holds none). Proven on every generated policy with the
evaluator (tests/policy_eval.py; moto enforces no IAM).
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.stages import STAGE_NAMES, STAGES
from infra.iam import STAGE_GRANTS, rewrap_policy, stage_policy
from tests.arns import account_arns, other_key
from tests.policy_eval import ALLOW, DYNAMODB_WRITES, allowed, evaluate, kms_context
from tests.unit.test_policy_evaluation import ACCOUNT, DDB_ACTIONS, KEY, TABLE
from tests.unit.test_policy_lookup import BEACON_KEY, BEACONS, INDEX, OLD_INDEX

TENANT_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"
PII_WRITES = sorted(DYNAMODB_WRITES)
# Every context a data key is wrapped under (both scopes, both views), as KMS would derive it.
CONTEXTS = [
    kms_context({"app": "pii-vault", "customer_id": "acme"}),
    kms_context({"app": "pii-vault", "scope": "pool"}),
    kms_context({"app": "pii-vault", "customer_id": "acme", "view": "masked"}),
    kms_context({"app": "pii-vault", "scope": "pool", "view": "masked"}),
]
# Attribute lists a write could name (every condition on dynamodb:Attributes is tried).
ATTRIBUTE_SETS: list[dict[str, Any]] = [
    {},
    {"dynamodb:Attributes": ["pk", "sk"]},
    {"dynamodb:Attributes": ["pk", "sk", "beacon", "beacon_version"]},
    {"dynamodb:Attributes": ["pk", "sk", "slots", "kms_key"]},
    {"dynamodb:Attributes": ["pk", "sk", "version", "updated_at", "f_email", "slots"]},
]


def _stage_policies() -> dict[str, dict[str, Any]]:
    """Every stage's generated policy (its tenant-key statements included), and rewrap's for a
    move to a new shared key."""
    arns = account_arns(KEY, TABLE, beacon_key_arn=BEACON_KEY)
    policies = {name: stage_policy(name, arns) for name in STAGE_NAMES}
    policies["rewrap+new-shared-key"] = rewrap_policy(arns, other_key(KEY, "e"))
    return policies


POLICIES = _stage_policies()


def _decrypts(document: dict[str, Any]) -> bool:
    tag = {"aws:ResourceTag/pii-vault-tenant": "acme"}
    return any(
        evaluate(document, "kms:Decrypt", key, {**context, **tag}) == ALLOW
        for key in (KEY, TENANT_KEY)
        for context in CONTEXTS
    )


DECRYPTING = sorted(stage for stage, document in POLICIES.items() if _decrypts(document))


def test_given_the_stages_then_exactly_those_that_open_records_decrypt() -> None:
    assert set(STAGE_GRANTS) == set(STAGE_NAMES)  # every stage of the registry is judged
    assert {stage.split("+")[0] for stage in DECRYPTING} == {s.name for s in STAGES if s.opens_records}


@pytest.mark.parametrize("stage", DECRYPTING)
def test_given_a_role_that_may_decrypt_then_it_holds_no_write_on_the_pii_table(stage: str) -> None:
    for context in ATTRIBUTE_SETS:
        assert allowed(POLICIES[stage], PII_WRITES, TABLE, context=context) == set(), context


@pytest.mark.parametrize("resource", [BEACONS, INDEX, OLD_INDEX])
def test_given_the_writer_then_it_can_read_no_beacon(resource: str) -> None:
    assert allowed(POLICIES["writer"], DDB_ACTIONS, resource) == set()


def test_given_a_stub_shaped_like_the_indexers_old_update_then_no_role_but_the_writer_may_send_it() -> None:
    """The reported stub: an UpdateItem naming only ``pk``/``beacon`` on a secret's key creates an
    item (``S#api-token``) that breaks the tenant's listing. The indexer may no longer send it;
    of the stages only the writer (which cannot decrypt) may still name those attributes."""
    request = {"dynamodb:Attributes": ["pk", "sk", "beacon", "beacon_version"], "dynamodb:ReturnValues": "NONE"}
    may = {stage for stage, doc in POLICIES.items() if evaluate(doc, "dynamodb:UpdateItem", TABLE, request) == ALLOW}
    assert may == {"writer"}
