"""Privilege separation on the policy documents: what moto cannot enforce.

moto checks actions only (tests/integration/test_privilege_separation.py). Here the
unmodified generated documents go through tests/policy_eval.py: resource scoping to the
one key and the one table, the encryption-context conditions, the writer's ReturnValues
restriction, and the key policy's principals.
"""

from __future__ import annotations

import pytest

from tests.policy_eval import ALLOW, IMPLICIT_DENY, Unsupported, allowed, evaluate, kms_context
from tools import policies

ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0f6c2a1e-8b3d-4c7a-9e52-7d1b4a6f3c80"
OTHER_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/pii-vault"
OTHER_TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/pii-vault-restored"
IDEMPOTENCY_TABLE = f"{TABLE}-idempotency"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/pii-vault-admin"
WRITER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/pii-vault-writer-api_handler"
READER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/pii-vault-reader-api_handler"
GOOD = kms_context({"app": "pii-vault", "customer_id": "acme"})
BAD_CONTEXTS = {
    "empty": kms_context({}),
    "no tenant": kms_context({"app": "pii-vault"}),
    "other app": kms_context({"app": "other", "customer_id": "acme"}),
    "extra key": kms_context({"app": "pii-vault", "customer_id": "acme", "table": "x"}),
}
KMS_ACTIONS = (
    "kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext", "kms:CreateGrant", "kms:PutKeyPolicy", "kms:DescribeKey",
    "kms:ScheduleKeyDeletion", "kms:DisableKey",
)
DDB_ACTIONS = (
    "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan",
    "dynamodb:TransactGetItems", "dynamodb:PartiQLSelect", "dynamodb:PutItem", "dynamodb:UpdateItem",
    "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:TransactWriteItems",
    "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete",
    "dynamodb:DeleteTable", "dynamodb:UpdateTable", "dynamodb:ExportTableToPointInTime",
    "dynamodb:RestoreTableToPointInTime", "dynamodb:CreateBackup",
)
WRITER = policies.writer_policy(KEY, TABLE)
READER = policies.reader_policy(KEY, TABLE)
KEY_POLICY = policies.key_policy(ADMIN, WRITER_ROLE, READER_ROLE)


def test_given_the_writer_policy_then_its_only_kms_action_is_encrypt_under_the_tenant_context() -> None:
    assert allowed(WRITER, KMS_ACTIONS, KEY, context=GOOD) == {"kms:Encrypt"}
    assert allowed(WRITER, KMS_ACTIONS, OTHER_KEY, context=GOOD) == set()
    for name, context in BAD_CONTEXTS.items():
        assert allowed(WRITER, KMS_ACTIONS, KEY, context=context) == set(), name


def test_given_the_reader_policy_then_its_only_kms_action_is_decrypt_under_the_tenant_context() -> None:
    assert allowed(READER, KMS_ACTIONS, KEY, context=GOOD) == {"kms:Decrypt"}
    assert allowed(READER, KMS_ACTIONS, OTHER_KEY, context=GOOD) == set()
    for name, context in BAD_CONTEXTS.items():
        assert allowed(READER, KMS_ACTIONS, KEY, context=context) == set(), name


def test_given_the_writer_policy_then_it_writes_the_one_table_and_reads_nothing() -> None:
    writes = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}

    assert allowed(WRITER, DDB_ACTIONS, TABLE) == writes
    assert allowed(WRITER, DDB_ACTIONS, OTHER_TABLE) == set()
    # Its own idempotency records (request fingerprints and write answers, no PII) it may read.
    assert allowed(WRITER, DDB_ACTIONS, IDEMPOTENCY_TABLE) == {
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"
    }
    assert allowed(WRITER, DDB_ACTIONS, f"{TABLE}/index/by-email") == set()


@pytest.mark.parametrize("return_values", ["ALL_OLD", "ALL_NEW", "UPDATED_OLD"])
def test_given_the_writer_policy_then_writes_that_return_stored_items_are_denied(return_values: str) -> None:
    context = {"dynamodb:ReturnValues": return_values}

    assert allowed(WRITER, ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"), TABLE,
                   context=context) == set()


@pytest.mark.parametrize("return_values", ["NONE", "UPDATED_NEW", None])
def test_given_the_writer_policy_then_writes_without_read_back_are_allowed(return_values: str | None) -> None:
    context = {} if return_values is None else {"dynamodb:ReturnValues": return_values}

    assert evaluate(WRITER, "dynamodb:UpdateItem", TABLE, context=context) == ALLOW


def test_given_the_reader_policy_then_it_reads_the_one_table_and_writes_nothing() -> None:
    assert allowed(READER, DDB_ACTIONS, TABLE) == {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}
    assert allowed(READER, DDB_ACTIONS, OTHER_TABLE) == set()
    assert allowed(READER, DDB_ACTIONS, IDEMPOTENCY_TABLE) == set()


def test_given_either_policy_then_logs_go_to_its_own_group_only() -> None:
    for stage, policy in (("writer", WRITER), ("reader", READER)):
        own = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/pii-vault-{stage}:log-stream:x"
        other = own.replace(f"pii-vault-{stage}", "pii-vault-writer" if stage == "reader" else "pii-vault-reader")
        assert evaluate(policy, "logs:PutLogEvents", own) == ALLOW
        assert evaluate(policy, "logs:PutLogEvents", other) == IMPLICIT_DENY


def test_given_the_key_policy_then_only_the_writer_role_encrypts_and_only_the_reader_role_decrypts() -> None:
    def can(principal: str, context: dict = GOOD) -> set[str]:
        return allowed(KEY_POLICY, KMS_ACTIONS, KEY, context=context, principal=principal)

    assert can(WRITER_ROLE) == {"kms:Encrypt"}
    assert can(READER_ROLE) == {"kms:Decrypt"}
    for name, context in BAD_CONTEXTS.items():
        assert can(WRITER_ROLE, context) == set() and can(READER_ROLE, context) == set(), name
    admin = can(ADMIN)
    assert {"kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DescribeKey", "kms:DisableKey"} <= admin
    assert not admin & {"kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
                        "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:CreateGrant"}
    for stranger in (f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:iam::{ACCOUNT}:role/other", "*"):
        assert can(stranger) == set(), stranger


def test_given_the_key_policy_then_no_statement_names_everyone_or_the_account_root() -> None:
    principals = [s["Principal"]["AWS"] for s in KEY_POLICY["Statement"]]

    assert principals == [ADMIN, WRITER_ROLE, READER_ROLE]
    assert all(s["Effect"] == "Allow" for s in KEY_POLICY["Statement"])


def test_given_the_bootstrap_key_policy_then_no_one_can_use_the_key_yet() -> None:
    initial = policies.key_policy(ADMIN)

    for principal in (ADMIN, WRITER_ROLE, READER_ROLE):
        assert not allowed(initial, ("kms:Encrypt", "kms:Decrypt"), KEY, context=GOOD, principal=principal)


@pytest.mark.parametrize(
    "bad",
    ["*", f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:sts::{ACCOUNT}:assumed-role/x/y", "arn:aws:iam::*:role/x"],
)
def test_given_a_wildcard_root_or_session_principal_then_the_key_policy_refuses_it(bad: str) -> None:
    with pytest.raises(policies.InvalidResourceError):
        policies.key_policy(ADMIN, bad, READER_ROLE)


def test_given_the_same_role_for_writer_and_reader_then_the_key_policy_refuses_it() -> None:
    with pytest.raises(policies.InvalidResourceError, match="differ"):
        policies.key_policy(ADMIN, WRITER_ROLE, WRITER_ROLE)


@pytest.mark.parametrize(
    "statement",
    [
        {"Condition": {"NumericLessThan": {"kms:EncryptionContext:app": "3"}}},
        {"Condition": {"StringEqualsIgnoreCase": {"kms:EncryptionContext:app": "PII-VAULT"}}},
        {"Condition": {"ForAllValues:StringNotEquals": {"kms:EncryptionContextKeys": ["x"]}}},
        {"Condition": {"ForAnyValue:ArnLike": {"kms:EncryptionContextKeys": ["x"]}}},
        {"Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        {"Condition": {"StringNotEquals": {"kms:EncryptionContext:app": "${aws:PrincipalTag/absent}"}}},
        {"NotResource": OTHER_KEY},
        {"NotAction": "kms:Decrypt"},
        {"Effect": "Audit"},
    ],
    ids=lambda s: next(iter(s.get("Condition", s))),
)
def test_given_a_construct_it_does_not_model_then_the_evaluator_refuses_instead_of_guessing(statement: dict) -> None:
    policy = {"Statement": [{"Effect": "Allow", "Action": "kms:Encrypt", "Resource": KEY, **statement}]}

    with pytest.raises(Unsupported):
        evaluate(policy, "kms:Encrypt", KEY, context=GOOD)


@pytest.mark.parametrize("principal", ["123456789012", f"arn:aws:iam::{ACCOUNT}:root", {"Service": "x"}],
                         ids=["account id", "account root", "service"])
def test_given_a_principal_form_it_does_not_model_then_the_evaluator_refuses(principal) -> None:
    policy = {"Statement": [{"Effect": "Allow", "Action": "kms:Encrypt", "Resource": KEY,
                             "Principal": principal if isinstance(principal, dict) else {"AWS": principal}}]}

    with pytest.raises(Unsupported):
        evaluate(policy, "kms:Encrypt", KEY, context=GOOD, principal=WRITER_ROLE)
