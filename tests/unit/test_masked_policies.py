"""The masked stage's denials, proven on the generated documents with tests/policy_eval.py.

The masked stage (support tools) may decrypt only data keys wrapped under the masked
view's context (``view`` = ``masked``) and fetch only the masked view's attributes; the
reader and the indexer may decrypt only full-view keys (``view`` absent); the writer
encrypts both. moto evaluates neither conditions nor key policies (see
tests/integration/test_privilege_separation.py), hence the evaluator.
"""

from __future__ import annotations

import pytest

from chalicelib.envelope.format import KIND_MASKED_POOL, KIND_MASKED_TENANT, KIND_POOL, KIND_TENANT, encryption_context
from chalicelib.stages import STAGES, Stage
from chalicelib.store import layout
from chalicelib.support.environment import Key
from infra.arns import InvalidResourceError
from infra.iam import key_policy, stage_policy
from tests.arns import account_arns
from tests.policy_eval import ALLOW, IMPLICIT_DENY, allowed, evaluate, kms_context
from tests.unit.test_policy_evaluation import (
    ACCOUNT,
    ADMIN,
    BAD_CONTEXTS,
    DDB_ACTIONS,
    FLEET_KEY,
    IDEMPOTENCY_TABLE,
    KEY,
    KMS_ACTIONS,
    OTHER_KEY,
    OTHER_TABLE,
    READER_ROLE,
    TABLE,
    WRITER_ROLE,
)

pytestmark = pytest.mark.unit


def _role(stage: Stage) -> str:
    """A stage's role, as chalice names it (an API stage's: by its one function)."""
    return f"arn:aws:iam::{ACCOUNT}:role/pii-vault-{stage.name}" + ("-api_handler" if stage.kind == "api" else "")


# The data key's policy names every stage that uses the shared key.
ROLES = {s.name: _role(s) for s in STAGES if Key.DATA in s.keys}
MASKED_ROLE, INDEXER_ROLE = ROLES["masked"], ROLES["indexer"]
BEACON_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/5e4d3c2b-1a09-4f8e-9d7c-6b5a49382716"
# The contexts the code builds (chalicelib.envelope.format), not restated by hand.
FULL = {
    "tenant": kms_context(encryption_context("pii-vault", "acme", KIND_TENANT)),
    "pool": kms_context(encryption_context("pii-vault", "acme", KIND_POOL)),
}
MASKED = {
    "tenant": kms_context(encryption_context("pii-vault", "acme", KIND_MASKED_TENANT)),
    "pool": kms_context(encryption_context("pii-vault", "acme", KIND_MASKED_POOL)),
}
# Contexts that name a view but are not exactly one of the masked view's two.
BAD_MASKED = {
    "view other than masked": kms_context({"app": "pii-vault", "customer_id": "acme", "view": "full"}),
    "view in another case": kms_context({"app": "pii-vault", "scope": "pool", "view": "Masked"}),
    "view empty": kms_context({"app": "pii-vault", "scope": "pool", "view": ""}),
    "view without tenant or scope": kms_context({"app": "pii-vault", "view": "masked"}),
    "view, tenant and scope": kms_context({"app": "pii-vault", "customer_id": "a", "scope": "pool", "view": "masked"}),
    "view with an extra key": kms_context({"app": "pii-vault", "scope": "pool", "view": "masked", "x": "y"}),
    "view, other app": kms_context({"app": "other", "scope": "pool", "view": "masked"}),
    "view, scope other than pool": kms_context({"app": "pii-vault", "scope": "tenant", "view": "masked"}),
}
ARNS = account_arns(KEY, TABLE, fleet_mac_key_arn=FLEET_KEY, beacon_key_arn=BEACON_KEY)
WRITER = stage_policy("writer", ARNS)
READER = stage_policy("reader", ARNS)
INDEXER = stage_policy("indexer", ARNS)
MASKED_STAGE = stage_policy("masked", ARNS)
KEY_POLICY = key_policy(Key.DATA, ADMIN, ROLES)
MASKED_ATTRIBUTES = list(layout.MASKED_VIEW_ATTRIBUTES)
PROJECTED = {"dynamodb:Attributes": MASKED_ATTRIBUTES, "dynamodb:Select": "SPECIFIC_ATTRIBUTES"}
FULL_ATTRIBUTES = ("f_name", "f_email", "f__updated", "slots", "kms_key", "beacon", "f_value", "latest")


@pytest.mark.parametrize("shape", sorted(MASKED))
def test_given_a_masked_view_key_then_only_the_masked_stage_decrypts_it_and_only_the_writer_encrypts_it(
    shape: str,
) -> None:
    context = MASKED[shape]

    assert allowed(MASKED_STAGE, KMS_ACTIONS, KEY, context=context) == {"kms:Decrypt"}
    assert allowed(MASKED_STAGE, KMS_ACTIONS, OTHER_KEY, context=context) == set()
    assert allowed(WRITER, KMS_ACTIONS, KEY, context=context) == {"kms:Encrypt"}
    assert allowed(READER, KMS_ACTIONS, KEY, context=context) == set()
    assert allowed(INDEXER, KMS_ACTIONS, KEY, context=context) == set()
    by_principal = {
        role: allowed(KEY_POLICY, KMS_ACTIONS, KEY, context=context, principal=role)
        for role in (ADMIN, WRITER_ROLE, READER_ROLE, INDEXER_ROLE, MASKED_ROLE)
    }
    assert by_principal[MASKED_ROLE] == {"kms:Decrypt"}
    assert by_principal[WRITER_ROLE] == {"kms:Encrypt"}
    assert by_principal[READER_ROLE] == by_principal[INDEXER_ROLE] == set()
    assert not by_principal[ADMIN] & {"kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:CreateGrant"}


@pytest.mark.parametrize("shape", sorted(FULL))
def test_given_a_full_view_key_then_the_masked_stage_can_never_decrypt_it(shape: str) -> None:
    context = FULL[shape]

    assert allowed(MASKED_STAGE, KMS_ACTIONS, KEY, context=context) == set()
    assert allowed(KEY_POLICY, KMS_ACTIONS, KEY, context=context, principal=MASKED_ROLE) == set()
    # ... while the full view stays as it was: reader and indexer decrypt, the writer encrypts.
    assert allowed(READER, KMS_ACTIONS, KEY, context=context) == {"kms:Decrypt"}
    assert allowed(INDEXER, KMS_ACTIONS, KEY, context=context) == {"kms:Decrypt"}
    assert allowed(KEY_POLICY, KMS_ACTIONS, KEY, context=context, principal=READER_ROLE) == {"kms:Decrypt"}
    assert allowed(KEY_POLICY, KMS_ACTIONS, KEY, context=context, principal=WRITER_ROLE) == {"kms:Encrypt"}


@pytest.mark.parametrize("name", sorted({**BAD_CONTEXTS, **BAD_MASKED}))
def test_given_any_other_context_then_no_role_may_use_the_key(name: str) -> None:
    context = {**BAD_CONTEXTS, **BAD_MASKED}[name]

    for policy in (WRITER, READER, INDEXER, MASKED_STAGE):
        assert allowed(policy, KMS_ACTIONS, KEY, context=context) == set()
    for principal in (WRITER_ROLE, READER_ROLE, INDEXER_ROLE, MASKED_ROLE):
        assert allowed(KEY_POLICY, KMS_ACTIONS, KEY, context=context, principal=principal) == set()


def test_given_the_reader_and_indexer_policies_then_every_kms_statement_requires_the_view_key_absent() -> None:
    for policy in (READER, INDEXER):
        data_key = [s for s in policy["Statement"] if s["Action"] == "kms:Decrypt"]
        assert data_key and all(s["Condition"]["Null"]["kms:EncryptionContext:view"] == "true" for s in data_key)


def test_given_the_masked_policy_then_its_only_actions_are_projected_reads_and_decrypt() -> None:
    assert allowed(MASKED_STAGE, DDB_ACTIONS, TABLE, context=PROJECTED) == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
    }
    for table in (OTHER_TABLE, IDEMPOTENCY_TABLE, f"{TABLE}-fleet", f"{TABLE}/index/beacon-index"):
        assert allowed(MASKED_STAGE, DDB_ACTIONS, table, context=PROJECTED) == set(), table
    assert allowed(MASKED_STAGE, KMS_ACTIONS, FLEET_KEY, context={"kms:MacAlgorithm": "HMAC_SHA_256"}) == set()
    assert allowed(MASKED_STAGE, KMS_ACTIONS, BEACON_KEY, context={"kms:MacAlgorithm": "HMAC_SHA_256"}) == set()


@pytest.mark.parametrize("attribute", FULL_ATTRIBUTES)
@pytest.mark.parametrize("action", ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"])
def test_given_the_masked_policy_then_a_read_naming_any_full_view_attribute_is_denied(
    action: str, attribute: str
) -> None:
    context = {"dynamodb:Attributes": [*MASKED_ATTRIBUTES, attribute], "dynamodb:Select": "SPECIFIC_ATTRIBUTES"}

    assert evaluate(MASKED_STAGE, action, TABLE, context=context) == IMPLICIT_DENY
    assert evaluate(MASKED_STAGE, action, TABLE, context=PROJECTED) == ALLOW


@pytest.mark.parametrize("action", ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"])
def test_given_the_masked_policy_then_a_read_naming_no_attribute_is_denied(action: str) -> None:
    """A GetItem without a ProjectionExpression carries neither key: ForAllValues alone would allow it."""
    assert evaluate(MASKED_STAGE, action, TABLE, context={}) == IMPLICIT_DENY


@pytest.mark.parametrize("select", ["ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES", "COUNT"])
def test_given_the_masked_policy_then_a_read_without_a_projection_is_denied(select: str) -> None:
    assert evaluate(MASKED_STAGE, "dynamodb:Query", TABLE, context={"dynamodb:Select": select}) == IMPLICIT_DENY
    assert evaluate(MASKED_STAGE, "dynamodb:GetItem", TABLE, context={"dynamodb:Select": select}) == IMPLICIT_DENY


def test_given_the_masked_store_then_it_asks_for_exactly_the_attributes_its_policy_allows() -> None:
    projection = layout.masked_projection()
    asked = {
        projection["ExpressionAttributeNames"][name.strip()] for name in projection["ProjectionExpression"].split(",")
    }
    statement = next(s for s in MASKED_STAGE["Statement"] if s["Sid"] == "ReadMaskedViewAttributesOnly")
    assert asked == set(statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"])
    assert not any(name.startswith(layout.FIELD_PREFIX) for name in asked)
    assert layout.SLOTS not in asked and layout.KMS_KEY not in asked


def test_given_the_masked_policy_then_logs_go_to_its_own_group_only() -> None:
    own = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/pii-vault-masked:log-stream:x"
    assert evaluate(MASKED_STAGE, "logs:PutLogEvents", own) == ALLOW
    assert evaluate(MASKED_STAGE, "logs:PutLogEvents", own.replace("masked", "reader")) == IMPLICIT_DENY


def test_given_the_masked_role_is_another_stage_s_role_then_the_key_policy_refuses_it() -> None:
    for other in (ADMIN, WRITER_ROLE, READER_ROLE):
        with pytest.raises(InvalidResourceError):
            key_policy(Key.DATA, ADMIN, {**ROLES, "masked": other})
