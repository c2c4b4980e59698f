"""The generated IAM policies are the security boundary between writer and reader.

moto does not evaluate resource ARNs or encryption-context conditions, so these
tests prove them on the policy documents themselves (``infra.iam.stage_policy``, the
documents the base stack deploys).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import pytest

from chalicelib.support.environment import Key, Table
from infra.arns import AccountArns, InvalidResourceError
from infra.iam import stage_policy
from infra.iam.statements import ENCRYPTION_CONTEXT_KEYS, POOL_KEY, POOL_SCOPE, Document, Statement
from tests.arns import account_arns
from tests.policy_eval import DYNAMODB_WRITES

pytestmark = pytest.mark.unit

KEY_ARN = "arn:aws:kms:eu-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TABLE_ARN = "arn:aws:dynamodb:eu-west-2:123456789012:table/pii-vault"
IDEMPOTENCY_ARN = TABLE_ARN + "-idempotency"
LEDGER_ARN = TABLE_ARN + "-erasures"
TENANTS_ARN = TABLE_ARN + "-tenants"
FLEET_KEY_ARN = "arn:aws:kms:eu-west-2:123456789012:key/9f8e7d6c-12ab-34cd-56ef-1234567890ab"
BEACON_KEY_ARN = "arn:aws:kms:eu-west-2:123456789012:key/5b7c9d1e-12ab-34cd-56ef-1234567890ab"
FLEET_TABLE_ARN = TABLE_ARN + "-fleet"
KEYS_ARN = TABLE_ARN + "-keys"
BEACON_INDEX_ARN = TABLE_ARN + "-beacons/index/beacon-index"
TENANT_KEYS = "arn:aws:kms:eu-west-2:123456789012:key/*"
ARNS = account_arns(KEY_ARN, TABLE_ARN, fleet_mac_key_arn=FLEET_KEY_ARN, beacon_key_arn=BEACON_KEY_ARN)
POLICIES = {stage: stage_policy(stage, ARNS) for stage in ("writer", "reader")}
RolePolicy = tuple[str, Document]  # (stage, its policy)

WRITER_TABLE_ACTIONS = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
}
# Its own idempotency table (no PII in it) is the only table the writer may read.
WRITER_IDEMPOTENCY_ACTIONS = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
WRITER_ACTIONS = {
    "kms:Encrypt",
    *WRITER_TABLE_ACTIONS,
    *WRITER_IDEMPOTENCY_ACTIONS,  # GetItem: also the tenant key registry; PutItem: also the key table
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
}
READER_ACTIONS = {
    "kms:Decrypt",
    "kms:GenerateMac",
    "dynamodb:PutItem",  # the fleet table only
    "dynamodb:BatchGetItem",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
}
DYNAMODB_READS = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:TransactGetItems",
    "dynamodb:PartiQLSelect",
    "dynamodb:ConditionCheckItem",
}


def _as_list(value: str | Iterable[Any]) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


def _actions(policy: Document) -> set[str]:
    return {a for s in policy["Statement"] for a in _as_list(s["Action"])}


def _actions_on(policy: Document, resource: str) -> set[str]:
    return {a for s in policy["Statement"] if resource in _as_list(s["Resource"]) for a in _as_list(s["Action"])}


def _statements_for(policy: Document, service: str) -> list[Statement]:
    return [s for s in policy["Statement"] if any(a.startswith(service + ":") for a in _as_list(s["Action"]))]


def _own(policy: Document) -> Document:
    """The policy without its tag-scoped tenant-key statements (tests/unit/test_tenant_key_policies.py)."""
    return {**policy, "Statement": [s for s in policy["Statement"] if not s["Sid"].startswith("TenantKeysByTag")]}


@pytest.fixture(params=sorted(POLICIES))
def role_policy(request: pytest.FixtureRequest) -> RolePolicy:
    return request.param, POLICIES[request.param]


def test_given_valid_arns_when_writer_policy_is_built_then_actions_are_exactly_encrypt_writes_and_logs() -> None:
    policy = POLICIES["writer"]
    assert _actions(policy) == WRITER_ACTIONS
    assert _actions_on(policy, KEY_ARN) == {"kms:Encrypt"}
    assert _actions_on(policy, TABLE_ARN) == WRITER_TABLE_ACTIONS
    assert _actions_on(policy, IDEMPOTENCY_ARN) == WRITER_IDEMPOTENCY_ACTIONS
    assert _actions_on(policy, LEDGER_ARN) == {"dynamodb:PutItem"}  # append only
    assert _actions_on(policy, TENANTS_ARN) == {"dynamodb:GetItem"}
    assert _actions_on(policy, KEYS_ARN) == {"dynamodb:PutItem"}  # files data keys, reads none back
    assert _actions_on(policy, TENANT_KEYS) == {"kms:Encrypt"}


def test_given_valid_arns_when_reader_policy_is_built_then_actions_are_exactly_decrypt_reads_fleet_and_logs() -> None:
    policy = POLICIES["reader"]

    assert _actions(policy) == READER_ACTIONS
    assert _actions_on(policy, KEY_ARN) == {"kms:Decrypt"}
    assert _actions_on(policy, TABLE_ARN) == {"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query"}
    assert _actions_on(policy, FLEET_KEY_ARN) == {"kms:GenerateMac"}
    assert _actions_on(policy, FLEET_TABLE_ARN) == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"}
    assert _actions_on(policy, KEYS_ARN) == {"dynamodb:GetItem"}
    assert _actions_on(policy, BEACON_KEY_ARN) == {"kms:GenerateMac"}
    assert _actions_on(policy, BEACON_INDEX_ARN) == {"dynamodb:Query"}
    assert _actions_on(policy, TENANTS_ARN) == {"dynamodb:GetItem"}


@pytest.mark.parametrize("key", [FLEET_KEY_ARN, BEACON_KEY_ARN])
def test_given_a_mac_statement_then_it_is_generate_mac_with_hmac_sha_256_only(key: str) -> None:
    (statement,) = [s for s in POLICIES["reader"]["Statement"] if s["Resource"] == key]

    assert statement["Action"] == "kms:GenerateMac"
    assert statement["Condition"] == {"StringEquals": {"kms:MacAlgorithm": "HMAC_SHA_256"}}


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({Key.FLEET_MAC: KEY_ARN}, "different keys"),
        ({Key.FLEET_MAC: FLEET_KEY_ARN.replace("123456789012", "210987654321")}, "same partition"),
        ({Key.FLEET_MAC: "arn:aws:kms:eu-west-2:123456789012:alias/pii-vault-fleet"}, "fleet-mac key ARN"),
        ({Key.BEACON_MAC: BEACON_KEY_ARN.replace("eu-west-2", "eu-west-1")}, "region"),
    ],
)
def test_given_bad_key_arns_when_the_arns_are_built_then_they_are_refused(keys: dict[Key, str], message: str) -> None:
    with pytest.raises(InvalidResourceError, match=message):
        AccountArns.of(TABLE_ARN, {Key.DATA: KEY_ARN, Key.FLEET_MAC: FLEET_KEY_ARN, **keys})


def test_given_arns_without_a_key_or_table_a_stage_needs_then_its_policy_is_refused() -> None:
    without_fleet = AccountArns.of(TABLE_ARN, {Key.DATA: KEY_ARN, Key.BEACON_MAC: BEACON_KEY_ARN})
    with pytest.raises(InvalidResourceError, match="fleet-mac key"):
        stage_policy("reader", without_fleet)
    assert stage_policy("writer", without_fleet) == POLICIES["writer"]  # the writer needs no fleet key
    tables = {Table.PII: TABLE_ARN, Table.IDEMPOTENCY: IDEMPOTENCY_ARN, Table.KEYS: KEYS_ARN}
    without_ledger = AccountArns({Key.DATA: KEY_ARN}, tables)
    with pytest.raises(InvalidResourceError, match="ledger table"):
        stage_policy("writer", without_ledger)


def test_given_writer_policy_then_it_can_neither_decrypt_nor_generate_keys_nor_read_items() -> None:
    policy = POLICIES["writer"]
    actions = _actions(policy)

    assert "kms:Decrypt" not in actions
    assert not {a for a in actions if a.startswith(("kms:GenerateDataKey", "kms:ReEncrypt"))}
    assert not _actions_on(policy, TABLE_ARN) & DYNAMODB_READS


def test_given_reader_policy_then_it_can_neither_encrypt_nor_write_items() -> None:
    policy = POLICIES["reader"]
    actions = _actions(policy)

    assert not {a for a in actions if a.startswith(("kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt"))}
    assert not (_actions_on(policy, TABLE_ARN) | _actions_on(policy, IDEMPOTENCY_ARN)) & DYNAMODB_WRITES
    # Its one write: a sealed entry in the fleet key table (no update, delete or batch).
    assert _actions_on(policy, FLEET_TABLE_ARN) & DYNAMODB_WRITES == {"dynamodb:PutItem"}


def test_given_writer_policy_then_it_has_nothing_on_the_fleet_or_beacon_key_or_the_fleet_table() -> None:
    policy = POLICIES["writer"]

    assert not _actions_on(policy, FLEET_KEY_ARN) and not _actions_on(policy, FLEET_TABLE_ARN)
    assert not _actions_on(policy, BEACON_KEY_ARN) and not _actions_on(policy, BEACON_INDEX_ARN)
    assert not {a for a in _actions(policy) if "Mac" in a}


def test_given_either_policy_then_kms_and_dynamodb_resources_are_the_exact_arns(role_policy: RolePolicy) -> None:
    role, policy = role_policy
    tables = (
        {TABLE_ARN, IDEMPOTENCY_ARN, LEDGER_ARN, TENANTS_ARN, KEYS_ARN}
        if role == "writer"
        else {TABLE_ARN, FLEET_TABLE_ARN, BEACON_INDEX_ARN, TENANTS_ARN, KEYS_ARN}
    )
    keys = {KEY_ARN} if role == "writer" else {KEY_ARN, FLEET_KEY_ARN, BEACON_KEY_ARN}

    for service, arns in (("kms", keys), ("dynamodb", tables)):
        statements = _statements_for(_own(policy), service)
        assert statements, f"no {service} statement"
        assert {statement["Resource"] for statement in statements} == arns
        for statement in statements:
            assert {a.split(":")[0] for a in _as_list(statement["Action"])} == {service}


def test_given_either_policy_then_no_statement_uses_wildcards_or_negations(role_policy: RolePolicy) -> None:
    _, policy = role_policy

    # Tenant keys are reached by tag, under their own tenant's context only (a key/* resource).
    tenant = [s for s in policy["Statement"] if s not in _own(policy)["Statement"]]
    assert tenant and all(s["Resource"] == [TENANT_KEYS] for s in tenant)
    assert all(s["Condition"]["Null"]["aws:ResourceTag/pii-vault-tenant"] == "false" for s in tenant)
    for statement in _own(policy)["Statement"]:
        assert statement["Effect"] == "Allow"
        assert not {"NotAction", "NotResource", "Principal"} & set(statement)
        assert not any("*" in a for a in _as_list(statement["Action"]))
        for resource in _as_list(statement["Resource"]):
            assert "*" not in resource.removesuffix(":*"), resource


def test_given_either_policy_then_its_data_key_statements_require_the_tenant_or_the_pool_context(
    role_policy: RolePolicy,
) -> None:
    role, policy = role_policy

    statements = [s for s in _statements_for(policy, "kms") if s["Resource"] == KEY_ARN]
    # The reader decrypts the full view only: any context naming a view is refused.
    no_view = {} if role == "writer" else {"kms:EncryptionContext:view": "true"}
    full = [
        {
            "StringEquals": {"kms:EncryptionContext:app": "pii-vault"},
            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["app", "customer_id"]},
            "Null": {"kms:EncryptionContext:customer_id": "false", **no_view},
        },
        {
            "StringEquals": {"kms:EncryptionContext:app": "pii-vault", "kms:EncryptionContext:scope": "pool"},
            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["app", "scope"]},
            **({"Null": no_view} if no_view else {}),
        },
    ]
    # The writer also encrypts the masked view's data keys (the same contexts plus view=masked).
    masked_view = {"kms:EncryptionContext:app": "pii-vault", "kms:EncryptionContext:view": "masked"}
    masked = [
        {
            "StringEquals": masked_view,
            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["app", "customer_id", "view"]},
            "Null": {"kms:EncryptionContext:customer_id": "false"},
        },
        {
            "StringEquals": {**masked_view, "kms:EncryptionContext:scope": "pool"},
            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["app", "scope", "view"]},
        },
    ]
    assert [s["Condition"] for s in statements] == (full + masked if role == "writer" else full)
    assert len({_as_list(s["Action"])[0] for s in statements}) == 1


def test_given_the_context_shapes_then_they_are_the_ones_chalicelib_crypto_builds() -> None:
    from chalicelib.envelope.format import KIND_POOL, KIND_TENANT, encryption_context

    assert set(encryption_context("pii-vault", "acme", KIND_TENANT)) == set(ENCRYPTION_CONTEXT_KEYS)
    assert encryption_context("pii-vault", "acme", KIND_POOL) == {"app": "pii-vault", POOL_KEY: POOL_SCOPE}


def test_given_writer_policy_then_single_item_writes_may_only_return_none_or_updated_new() -> None:
    statements = _statements_for(POLICIES["writer"], "dynamodb")
    (single,) = [s for s in statements if "dynamodb:PutItem" in _as_list(s["Action"]) and s["Resource"] == TABLE_ARN]
    (batch,) = [s for s in statements if "dynamodb:BatchWriteItem" in _as_list(s["Action"])]

    assert set(_as_list(single["Action"])) == {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    # Single-valued key, absent when the default NONE is used: IfExists, not ForAllValues.
    assert single["Condition"] == {"StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE", "UPDATED_NEW"]}}
    # BatchWriteItem has no ReturnValues and returns no items; it may not carry other actions.
    assert _as_list(batch["Action"]) == ["dynamodb:BatchWriteItem"]


def test_given_either_policy_then_logs_are_scoped_to_the_stage_function_log_group(role_policy: RolePolicy) -> None:
    role, policy = role_policy
    group = f"arn:aws:logs:eu-west-2:123456789012:log-group:/aws/lambda/pii-vault-{role}"

    (statement,) = _statements_for(policy, "logs")

    assert sorted(_as_list(statement["Resource"])) == [group, f"{group}:*"]


def test_given_either_policy_then_it_is_a_2012_document_with_unique_explicit_sids(role_policy: RolePolicy) -> None:
    _, policy = role_policy
    sids = [s.get("Sid") for s in policy["Statement"]]

    assert policy["Version"] == "2012-10-17"
    assert all(sid and re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids)
    assert len(set(sids)) == len(sids)


def test_given_a_gov_cloud_multi_region_key_when_policy_is_built_then_partition_comes_from_the_arns() -> None:
    key = "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef"
    table = "arn:aws-us-gov:dynamodb:us-gov-west-1:123456789012:table/pii-vault"

    policy = stage_policy("reader", account_arns(key, table))

    (logs,) = _statements_for(policy, "logs")
    assert all(r.startswith("arn:aws-us-gov:logs:us-gov-west-1:123456789012:") for r in logs["Resource"])
    (tenant,) = [s for s in policy["Statement"] if s["Sid"].startswith("TenantKeysByTag")]
    assert tenant["Resource"] == ["arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/*"]


@pytest.mark.parametrize(
    ("key_arn", "table_arn", "message"),
    [
        ("arn:aws:kms:eu-west-2:123456789012:alias/pii-vault", TABLE_ARN, "the data key ARN"),
        ("arn:aws:kms:eu-west-2:123456789012:key/*", TABLE_ARN, "the data key ARN"),
        ("*", TABLE_ARN, "the data key ARN"),
        ("alias/pii-vault", TABLE_ARN, "the data key ARN"),
        ("arn:aws:kms:eu-west-2:1234:key/1234abcd-12ab-34cd-56ef-1234567890ab", TABLE_ARN, "the data key ARN"),
        (KEY_ARN, "arn:aws:dynamodb:eu-west-2:123456789012:table/*", "table_arn"),
        (KEY_ARN, "arn:aws:dynamodb:eu-west-2:123456789012:table/pii-vault/index/gsi1", "table_arn"),
        (KEY_ARN, "pii-vault", "table_arn"),
        (KEY_ARN, "arn:aws:dynamodb:eu-west-1:123456789012:table/pii-vault", "same partition, region and account"),
        (KEY_ARN, "arn:aws:dynamodb:eu-west-2:210987654321:table/pii-vault", "same partition, region and account"),
        (None, TABLE_ARN, "the data key ARN"),
    ],
)
def test_given_an_invalid_arn_when_policy_is_built_then_a_clear_error_names_the_problem(
    key_arn: str | None, table_arn: str, message: str
) -> None:
    keys = {Key.DATA: key_arn, Key.FLEET_MAC: FLEET_KEY_ARN, Key.BEACON_MAC: BEACON_KEY_ARN}
    with pytest.raises(InvalidResourceError, match=re.escape(message)):
        AccountArns.of(table_arn, keys)  # type: ignore[arg-type]  # a missing (None) data key ARN is refused
