"""Privilege separation on the policy documents: what moto cannot enforce.

moto checks actions only (tests/integration/test_privilege_separation.py). Here the
unmodified generated documents go through tests/policy_eval.py: resource scoping to the
one key and the one table, the encryption-context conditions (exactly the tenant context
or exactly the pool context), the writer's ReturnValues restriction, the reader fleet's
HMAC key and key table, and both key policies' principals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from chalicelib.stages import STAGE_NAMES, STAGES
from chalicelib.support.environment import Key
from infra.arns import InvalidResourceError
from infra.iam import key_policy, stage_policy
from tests.arns import account_arns
from tests.policy_eval import (
    ALLOW,
    DYNAMODB_WRITES,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    Caller,
    Unsupported,
    allowed,
    authorize,
    evaluate,
    iam_user,
    kms_context,
    role_session,
)

ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0f6c2a1e-8b3d-4c7a-9e52-7d1b4a6f3c80"
OTHER_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/pii-vault"
OTHER_TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/pii-vault-restored"
IDEMPOTENCY_TABLE = f"{TABLE}-idempotency"
FLEET_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/9d3e2c1b-4a5f-4e6d-8c7b-0a1b2c3d4e5f"
FLEET_TABLE = f"{TABLE}-fleet"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/pii-vault-admin"
WRITER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/pii-vault-writer-api_handler"
READER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/pii-vault-reader-api_handler"
TENANT = kms_context({"app": "pii-vault", "customer_id": "acme"})
POOL = kms_context({"app": "pii-vault", "scope": "pool"})
GOOD = TENANT
GOOD_CONTEXTS = {"tenant": TENANT, "pool": POOL}
BAD_CONTEXTS = {
    "empty": kms_context({}),
    "no tenant": kms_context({"app": "pii-vault"}),
    "other app": kms_context({"app": "other", "customer_id": "acme"}),
    "other app, pool": kms_context({"app": "other", "scope": "pool"}),
    "extra key": kms_context({"app": "pii-vault", "customer_id": "acme", "table": "x"}),
    "extra key, pool": kms_context({"app": "pii-vault", "scope": "pool", "table": "x"}),
    "scope other than pool": kms_context({"app": "pii-vault", "scope": "tenant"}),
    "scope in another case": kms_context({"app": "pii-vault", "scope": "Pool"}),
    "scope empty": kms_context({"app": "pii-vault", "scope": ""}),
    "tenant and scope mixed": kms_context({"app": "pii-vault", "customer_id": "acme", "scope": "pool"}),
    "missing app, tenant": kms_context({"customer_id": "acme"}),
    "missing app, pool": kms_context({"scope": "pool"}),
}
HMAC_SHA_256 = {"kms:MacAlgorithm": "HMAC_SHA_256"}
KMS_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:CreateGrant",
    "kms:PutKeyPolicy",
    "kms:DescribeKey",
    "kms:ScheduleKeyDeletion",
    "kms:DisableKey",
    "kms:GenerateMac",
    "kms:VerifyMac",
)
DDB_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:TransactGetItems",
    "dynamodb:PartiQLSelect",
    *sorted(DYNAMODB_WRITES),
    "dynamodb:DeleteTable",
    "dynamodb:UpdateTable",
    "dynamodb:ExportTableToPointInTime",
    "dynamodb:RestoreTableToPointInTime",
    "dynamodb:CreateBackup",
)
ARNS = account_arns(KEY, TABLE, fleet_mac_key_arn=FLEET_KEY)
WRITER = stage_policy("writer", ARNS)
READER = stage_policy("reader", ARNS)
KEY_POLICY = key_policy(Key.DATA, ADMIN, {"writer": WRITER_ROLE, "reader": READER_ROLE})
FLEET_KEY_POLICY = key_policy(Key.FLEET_MAC, ADMIN, {"reader": READER_ROLE})


@pytest.mark.parametrize("shape", sorted(GOOD_CONTEXTS))
def test_given_the_writer_policy_then_its_only_kms_action_is_encrypt_under_the_tenant_or_pool_context(
    shape: str,
) -> None:
    assert allowed(WRITER, KMS_ACTIONS, KEY, context=GOOD_CONTEXTS[shape]) == {"kms:Encrypt"}
    assert allowed(WRITER, KMS_ACTIONS, OTHER_KEY, context=GOOD_CONTEXTS[shape]) == set()


@pytest.mark.parametrize("shape", sorted(GOOD_CONTEXTS))
def test_given_the_reader_policy_then_its_only_kms_action_on_the_data_key_is_decrypt_under_tenant_or_pool(
    shape: str,
) -> None:
    assert allowed(READER, KMS_ACTIONS, KEY, context=GOOD_CONTEXTS[shape]) == {"kms:Decrypt"}
    assert allowed(READER, KMS_ACTIONS, OTHER_KEY, context=GOOD_CONTEXTS[shape]) == set()


@pytest.mark.parametrize("name", sorted(BAD_CONTEXTS))
def test_given_any_other_encryption_context_then_both_roles_and_the_key_policy_deny_every_kms_action(
    name: str,
) -> None:
    context = BAD_CONTEXTS[name]

    assert allowed(WRITER, KMS_ACTIONS, KEY, context=context) == set()
    assert allowed(READER, KMS_ACTIONS, KEY, context=context) == set()
    for principal in (WRITER_ROLE, READER_ROLE):
        assert allowed(KEY_POLICY, KMS_ACTIONS, KEY, context=context, principal=principal) == set()


def test_given_the_reader_policy_then_the_fleet_key_allows_generate_mac_with_hmac_sha_256_only() -> None:
    assert allowed(READER, KMS_ACTIONS, FLEET_KEY, context=HMAC_SHA_256) == {"kms:GenerateMac"}
    for algorithm in ("HMAC_SHA_512", "HMAC_SHA_384", "HMAC_SHA_224"):
        assert allowed(READER, KMS_ACTIONS, FLEET_KEY, context={"kms:MacAlgorithm": algorithm}) == set(), algorithm
    assert allowed(READER, KMS_ACTIONS, FLEET_KEY, context={}) == set()
    # The data keys' contexts open nothing on the fleet key, the MAC algorithm nothing on the data key.
    for context in GOOD_CONTEXTS.values():
        assert allowed(READER, KMS_ACTIONS, FLEET_KEY, context=context) == set()
    assert allowed(READER, KMS_ACTIONS, KEY, context=HMAC_SHA_256) == set()
    assert allowed(READER, ("kms:GenerateMac",), OTHER_KEY, context=HMAC_SHA_256) == set()


def test_given_the_writer_policy_then_it_cannot_generate_macs_or_touch_the_fleet_table() -> None:
    for context in (HMAC_SHA_256, {}, *GOOD_CONTEXTS.values()):
        assert allowed(WRITER, KMS_ACTIONS, FLEET_KEY, context=context) == set()
    assert allowed(WRITER, DDB_ACTIONS, FLEET_TABLE) == set()


def test_given_the_reader_policy_then_the_fleet_table_allows_get_put_item_and_query_only() -> None:
    assert allowed(READER, DDB_ACTIONS, FLEET_TABLE) == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"}
    for action in (
        "dynamodb:DeleteItem",
        "dynamodb:UpdateItem",
        "dynamodb:Scan",
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteTable",
    ):
        assert evaluate(READER, action, FLEET_TABLE) == IMPLICIT_DENY, action
    assert allowed(READER, DDB_ACTIONS, f"{FLEET_TABLE}/index/x") == set()


def test_given_the_writer_policy_then_it_writes_the_one_table_and_reads_nothing() -> None:
    writes = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}

    assert allowed(WRITER, DDB_ACTIONS, TABLE) == writes
    assert allowed(WRITER, DDB_ACTIONS, OTHER_TABLE) == set()
    # Its own idempotency records (request fingerprints and write answers, no PII) it may read.
    assert allowed(WRITER, DDB_ACTIONS, IDEMPOTENCY_TABLE) == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    }
    assert allowed(WRITER, DDB_ACTIONS, f"{TABLE}/index/by-email") == set()


@pytest.mark.parametrize("return_values", ["ALL_OLD", "ALL_NEW", "UPDATED_OLD"])
def test_given_the_writer_policy_then_writes_that_return_stored_items_are_denied(return_values: str) -> None:
    context = {"dynamodb:ReturnValues": return_values}

    assert (
        allowed(WRITER, ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"), TABLE, context=context)
        == set()
    )


@pytest.mark.parametrize("return_values", ["NONE", "UPDATED_NEW", None])
def test_given_the_writer_policy_then_writes_without_read_back_are_allowed(return_values: str | None) -> None:
    context = {} if return_values is None else {"dynamodb:ReturnValues": return_values}

    assert evaluate(WRITER, "dynamodb:UpdateItem", TABLE, context=context) == ALLOW


def test_given_the_reader_policy_then_it_reads_the_one_table_and_writes_nothing() -> None:
    assert allowed(READER, DDB_ACTIONS, TABLE) == {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}
    assert allowed(READER, DDB_ACTIONS, OTHER_TABLE) == set()
    assert allowed(READER, DDB_ACTIONS, IDEMPOTENCY_TABLE) == set()
    for context in GOOD_CONTEXTS.values():
        assert "kms:Encrypt" not in allowed(READER, KMS_ACTIONS, KEY, context=context)


def test_given_either_policy_then_logs_go_to_its_own_group_only() -> None:
    for stage, policy in (("writer", WRITER), ("reader", READER)):
        own = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/pii-vault-{stage}:log-stream:x"
        other = own.replace(f"pii-vault-{stage}", "pii-vault-writer" if stage == "reader" else "pii-vault-reader")
        assert evaluate(policy, "logs:PutLogEvents", own) == ALLOW
        assert evaluate(policy, "logs:PutLogEvents", other) == IMPLICIT_DENY


@pytest.mark.parametrize("shape", sorted(GOOD_CONTEXTS))
def test_given_the_key_policy_then_only_the_writer_role_encrypts_and_only_the_reader_role_decrypts(shape: str) -> None:
    def can(principal: str, context: Mapping[str, Any] = GOOD_CONTEXTS[shape]) -> set[str]:
        return allowed(KEY_POLICY, KMS_ACTIONS, KEY, context=context, principal=principal)

    assert can(WRITER_ROLE) == {"kms:Encrypt"}
    assert can(READER_ROLE) == {"kms:Decrypt"}
    assert can(READER_ROLE, HMAC_SHA_256) == set()
    admin = can(ADMIN)
    assert {"kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DescribeKey", "kms:DisableKey"} <= admin
    assert not admin & {
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:CreateGrant",
    }
    for stranger in (f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:iam::{ACCOUNT}:role/other", "*"):
        assert can(stranger) == set(), stranger


def test_given_the_key_policy_then_no_statement_names_everyone_or_the_account_root() -> None:
    principals = [s["Principal"]["AWS"] for s in KEY_POLICY["Statement"]]

    # One statement per allowed encryption context (tenant, pool) for each role; the writer's
    # also for the masked view's two (tests/unit/test_masked_policies.py).
    assert principals == [ADMIN, *[WRITER_ROLE] * 4, READER_ROLE, READER_ROLE]
    assert all(s["Effect"] == "Allow" for s in KEY_POLICY["Statement"])
    fleet_principals = [s["Principal"]["AWS"] for s in FLEET_KEY_POLICY["Statement"]]
    assert fleet_principals == [ADMIN, READER_ROLE]
    assert all(s["Effect"] == "Allow" for s in FLEET_KEY_POLICY["Statement"])


def test_given_the_fleet_key_policy_then_only_the_reader_role_generates_macs_and_the_admin_administers() -> None:
    def can(principal: str, context: Mapping[str, Any] = HMAC_SHA_256) -> set[str]:
        return allowed(FLEET_KEY_POLICY, KMS_ACTIONS, FLEET_KEY, context=context, principal=principal)

    assert can(READER_ROLE) == {"kms:GenerateMac"}
    assert can(READER_ROLE, {"kms:MacAlgorithm": "HMAC_SHA_512"}) == set()
    assert can(READER_ROLE, {}) == set()
    assert can(WRITER_ROLE) == set()
    admin = can(ADMIN)
    assert {"kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DescribeKey", "kms:DisableKey"} <= admin
    assert not admin & {"kms:GenerateMac", "kms:VerifyMac", "kms:CreateGrant", "kms:Encrypt", "kms:Decrypt"}
    for stranger in (f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:iam::{ACCOUNT}:role/other", "*"):
        assert can(stranger) == set(), stranger
    # Before the reader role exists (bootstrap): nobody can use the key.
    initial = key_policy(Key.FLEET_MAC, ADMIN)
    for principal in (ADMIN, WRITER_ROLE, READER_ROLE):
        assert allowed(initial, ("kms:GenerateMac",), FLEET_KEY, context=HMAC_SHA_256, principal=principal) == set()


def test_given_the_bootstrap_key_policy_then_no_one_can_use_the_key_yet() -> None:
    initial = key_policy(Key.DATA, ADMIN)

    for principal in (ADMIN, WRITER_ROLE, READER_ROLE):
        for context in GOOD_CONTEXTS.values():
            assert not allowed(initial, ("kms:Encrypt", "kms:Decrypt"), KEY, context=context, principal=principal)


@pytest.mark.parametrize(
    "bad",
    ["*", f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:sts::{ACCOUNT}:assumed-role/x/y", "arn:aws:iam::*:role/x"],
)
def test_given_a_wildcard_root_or_session_principal_then_the_key_policy_refuses_it(bad: str) -> None:
    with pytest.raises(InvalidResourceError):
        key_policy(Key.DATA, ADMIN, {"writer": bad, "reader": READER_ROLE})


def test_given_the_same_role_for_writer_and_reader_then_the_key_policy_refuses_it() -> None:
    with pytest.raises(InvalidResourceError, match="differ"):
        key_policy(Key.DATA, ADMIN, {"writer": WRITER_ROLE, "reader": WRITER_ROLE})
    with pytest.raises(InvalidResourceError, match="differ"):
        key_policy(Key.FLEET_MAC, ADMIN, {"reader": ADMIN})
    with pytest.raises(InvalidResourceError):
        key_policy(Key.FLEET_MAC, ADMIN, {"reader": f"arn:aws:iam::{ACCOUNT}:root"})


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
def test_given_a_construct_it_does_not_model_then_the_evaluator_refuses_instead_of_guessing(
    statement: dict[str, Any],
) -> None:
    policy = {"Statement": [{"Effect": "Allow", "Action": "kms:Encrypt", "Resource": KEY, **statement}]}

    with pytest.raises(Unsupported):
        evaluate(policy, "kms:Encrypt", KEY, context=GOOD)


@pytest.mark.parametrize(
    "principal",
    ["123456789012", f"arn:aws:iam::{ACCOUNT}:root", {"Service": "x"}],
    ids=["account id", "account root", "service"],
)
def test_given_a_principal_form_it_does_not_model_then_the_evaluator_refuses(principal: str | dict[str, str]) -> None:
    policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "kms:Encrypt",
                "Resource": KEY,
                "Principal": principal if isinstance(principal, dict) else {"AWS": principal},
            }
        ]
    }

    with pytest.raises(Unsupported):
        evaluate(policy, "kms:Encrypt", KEY, context=GOOD, principal=WRITER_ROLE)


# The evaluator's own semantics, on small policies (the generated ones are in test_caller_access.py).
BUCKET = "arn:aws:s3:::home"
HOME = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/${{aws:username}}/*"},
    ],
}
USER = iam_user(f"arn:aws:iam::{ACCOUNT}:user/alice", tags={"team": "blue"})
SESSION = role_session(f"arn:aws:iam::{ACCOUNT}:role/app", tags={"team": "blue"})


def _single(**statement: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", **statement}]}


def test_given_a_policy_variable_in_resource_then_it_is_substituted_from_the_request_context() -> None:
    assert evaluate(HOME, "s3:GetObject", f"{BUCKET}/alice/notes", USER.context) == ALLOW
    assert evaluate(HOME, "s3:GetObject", f"{BUCKET}/bob/notes", USER.context) == IMPLICIT_DENY
    assert evaluate(HOME, "s3:GetObject", f"{BUCKET}/alicex/notes", USER.context) == IMPLICIT_DENY


def test_given_a_policy_variable_the_context_lacks_then_the_resource_matches_nothing() -> None:
    # A role session has no aws:username: not even a resource literally named "${aws:username}".
    for resource in (f"{BUCKET}/app/x", f"{BUCKET}//x", f"{BUCKET}/${{aws:username}}/x", f"{BUCKET}/*/x"):
        assert evaluate(HOME, "s3:GetObject", resource, SESSION.context) == IMPLICIT_DENY, resource


def test_given_a_default_value_or_a_literal_character_then_they_are_honoured() -> None:
    with_default = _single(Resource=f"{BUCKET}/${{aws:PrincipalTag/room, 'lobby'}}/*")
    literal = _single(Resource=f"{BUCKET}/${{*}}/*")

    assert evaluate(with_default, "s3:GetObject", f"{BUCKET}/lobby/x", SESSION.context) == ALLOW
    room = {"aws:PrincipalTag/room": "r1"}
    assert evaluate(with_default, "s3:GetObject", f"{BUCKET}/lobby/x", room) == IMPLICIT_DENY
    assert evaluate(literal, "s3:GetObject", f"{BUCKET}/*/x", {}) == ALLOW
    assert evaluate(literal, "s3:GetObject", f"{BUCKET}/a/x", {}) == IMPLICIT_DENY


def test_given_policy_variables_in_condition_values_then_they_compare_with_the_context() -> None:
    same_team = _single(
        Resource="*", Condition={"StringEquals": {"s3:ExistingObjectTag/team": "${aws:PrincipalTag/team}"}}
    )

    for object_team, expected in (("blue", ALLOW), ("red", IMPLICIT_DENY)):
        context = {**SESSION.context, "s3:ExistingObjectTag/team": object_team}
        assert evaluate(same_team, "s3:GetObject", BUCKET, context) == expected
    # No principal tag: the value matches nothing, even an object tag spelled like the variable.
    untagged = {"s3:ExistingObjectTag/team": "${aws:PrincipalTag/team}"}
    assert evaluate(same_team, "s3:GetObject", BUCKET, untagged) == IMPLICIT_DENY


@pytest.mark.parametrize(
    ("operator", "value", "context", "expected"),
    [
        ("StringLike", "pii-*", {"k": "pii-vault"}, True),
        ("StringLike", "pii-?", {"k": "pii-vault"}, False),
        ("StringLike", "*", {}, False),
        ("StringNotLike", "pii-*", {"k": "other"}, True),
        ("StringNotLike", "pii-*", {}, True),
        ("StringEquals", "pii-*", {"k": "pii-vault"}, False),
        ("StringEquals", "a", {"K": "a"}, True),
        ("StringNotEquals", "a", {"k": "a"}, False),
        ("StringNotEquals", "a", {}, True),
        ("StringLikeIfExists", "a*", {}, True),
        ("StringLikeIfExists", "a*", {"k": "b"}, False),
        ("ArnEquals", "arn:aws:iam::1:role/x", {"k": "arn:aws:iam::1:role/x"}, True),
        ("ArnLike", "arn:aws:iam::*:role/x", {"k": "arn:aws:iam::1:role/x"}, True),
        ("ArnLike", "arn:aws:iam::1:role/*", {"k": "arn:aws:iam::1:role/a/b"}, True),
        ("ArnLike", "arn:aws:iam:*:role/x", {"k": "arn:aws:iam::1:role/x"}, True),
        ("ArnLike", "arn:aws:iam::1?:role/x", {"k": "arn:aws:iam::1:role/x"}, False),
        ("ArnNotEquals", "arn:aws:iam::1:role/x", {"k": "arn:aws:iam::1:role/y"}, True),
        ("ArnNotEquals", "arn:aws:iam::1:role/x", {}, True),
        ("ArnNotLike", "arn:aws:iam::1:role/*", {"k": "arn:aws:iam::1:role/y"}, False),
        ("ForAnyValue:StringEquals", "a", {"k": ["b", "a"]}, True),
        ("ForAnyValue:StringEquals", "a", {}, False),
        ("ForAllValues:StringLike", "a*", {"k": ["ab", "ac"]}, True),
        ("ForAllValues:StringLike", "a*", {"k": ["ab", "b"]}, False),
        ("ForAllValues:StringLike", "a*", {}, True),
    ],
)
def test_given_a_condition_operator_then_it_follows_iam_semantics(
    operator: str, value: str, context: dict[str, Any], expected: bool
) -> None:
    policy = _single(Resource="*", Condition={operator: {"k": value}})

    assert (evaluate(policy, "s3:GetObject", BUCKET, context) == ALLOW) is expected


def test_given_a_single_valued_operator_on_a_multivalued_key_then_the_evaluator_refuses() -> None:
    with pytest.raises(Unsupported):
        policy = _single(Resource="*", Condition={"StringEquals": {"k": "a"}})
        evaluate(policy, "s3:GetObject", BUCKET, {"k": ["a", "b"]})


def test_given_identity_and_resource_policies_then_a_deny_anywhere_wins_and_one_allow_suffices_in_one_account() -> None:
    resource = f"arn:aws:sqs:us-east-1:{ACCOUNT}:queue"
    allow = {"Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": resource}]}
    deny = {"Statement": [{"Effect": "Deny", "Action": "sqs:*", "Resource": "*"}]}
    allow_app = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/app"},
                "Action": "sqs:SendMessage",
                "Resource": resource,
            }
        ]
    }
    deny_all = {"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "sqs:SendMessage", "Resource": resource}]}

    def decide(
        identity: Iterable[Mapping[str, Any]] = (),
        resource_policy: Mapping[str, Any] | None = None,
        caller: Caller = SESSION,
    ) -> str:
        return authorize(
            "sqs:SendMessage", resource, caller, identity_policies=identity, resource_policy=resource_policy
        )

    assert decide([allow]) == ALLOW
    assert decide(resource_policy=allow_app) == ALLOW  # the role ARN names its session
    assert decide() == IMPLICIT_DENY
    assert decide([allow, deny]) == EXPLICIT_DENY
    assert decide([allow], deny_all) == EXPLICIT_DENY
    assert decide(resource_policy=allow_app, caller=USER) == IMPLICIT_DENY
    outsider = role_session("arn:aws:iam::444455556666:role/app")
    assert decide([allow], caller=outsider) == IMPLICIT_DENY  # across accounts both sides must allow
    assert decide(resource_policy=allow_app, caller=outsider) == IMPLICIT_DENY


def test_given_the_execute_api_shorthand_then_it_matches_the_path_after_the_api_id() -> None:
    policy = {
        "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/api/GET/*"}
        ]
    }
    arn = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:a1b2c3/api/GET/customers/x/people"

    assert evaluate(policy, "execute-api:Invoke", arn, principal=SESSION.arn) == EXPLICIT_DENY
    assert evaluate(policy, "execute-api:Invoke", arn.replace("/GET/", "/PUT/"), principal=SESSION.arn) == IMPLICIT_DENY
    assert (
        evaluate(policy, "execute-api:Invoke", f"arn:aws:sqs:us-east-1:{ACCOUNT}:q/api/GET/x", principal=SESSION.arn)
        == IMPLICIT_DENY
    )


def test_given_a_trust_policy_then_it_is_evaluated_without_a_resource_and_nothing_else_is() -> None:
    trust = {
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": SESSION.context["aws:PrincipalArn"]}, "Action": "sts:AssumeRole"}
        ]
    }

    assert evaluate(trust, "sts:AssumeRole", None, SESSION.context, principal=SESSION.arn) == ALLOW
    with pytest.raises(Unsupported):
        evaluate(trust, "sts:AssumeRole", "arn:aws:iam::1:role/x", SESSION.context, principal=SESSION.arn)
    with pytest.raises(Unsupported):
        evaluate(HOME, "s3:GetObject", None, USER.context)


# -- the beacon table and the key table (issue 21 A, issue 23.1) ---------------------------------

BEACON_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/5b7c9d1e-12ab-34cd-56ef-1234567890ab"
BEACON_TABLE = f"{TABLE}-beacons"
BEACON_INDEX = f"{BEACON_TABLE}/index/beacon-index"
KEY_TABLE = f"{TABLE}-keys"
ALL_ARNS = account_arns(KEY, TABLE, fleet_mac_key_arn=FLEET_KEY, beacon_key_arn=BEACON_KEY)
POLICIES = {stage: stage_policy(stage, ALL_ARNS) for stage in STAGE_NAMES}


def test_given_the_writer_policy_then_it_has_no_action_on_the_beacon_table_or_its_index() -> None:
    """The email-guess oracle: a writer that could read a beacon back could test a guessed email."""
    for resource in (BEACON_TABLE, BEACON_INDEX):
        assert allowed(POLICIES["writer"], DDB_ACTIONS, resource) == set(), resource
    assert allowed(POLICIES["writer"], KMS_ACTIONS, BEACON_KEY, context=HMAC_SHA_256) == set()


def test_given_the_indexer_policy_then_it_writes_the_beacon_table_only_and_nothing_of_the_pii_table() -> None:
    indexer = POLICIES["indexer"]
    assert allowed(indexer, DDB_ACTIONS, BEACON_TABLE) == {"dynamodb:UpdateItem"}
    assert allowed(indexer, DDB_ACTIONS, TABLE) & DYNAMODB_WRITES == set()
    assert allowed(indexer, DDB_ACTIONS, KEY_TABLE) & DYNAMODB_WRITES == set()


def test_given_the_reader_policy_then_it_queries_the_beacon_index_and_writes_no_beacon() -> None:
    reader = POLICIES["reader"]
    assert allowed(reader, DDB_ACTIONS, BEACON_INDEX) == {"dynamodb:Query"}
    assert allowed(reader, DDB_ACTIONS, BEACON_TABLE) == set()
    assert allowed(POLICIES["masked"], DDB_ACTIONS, BEACON_INDEX) == set()


@pytest.mark.parametrize("stage", [s.name for s in STAGES if s.opens_records])
def test_given_a_role_that_may_decrypt_then_it_writes_nothing_of_the_pii_or_the_key_table(stage: str) -> None:
    """A write permission is a read permission (a failed condition hands back ALL_OLD)."""
    for resource in (TABLE, KEY_TABLE):
        assert allowed(POLICIES[stage], DDB_ACTIONS, resource) & DYNAMODB_WRITES == set(), resource


def test_given_the_writer_policy_then_it_files_data_keys_and_reads_none_back() -> None:
    assert allowed(POLICIES["writer"], DDB_ACTIONS, KEY_TABLE) == {"dynamodb:PutItem"}
