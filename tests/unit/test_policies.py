"""The generated IAM policies are the security boundary between writer and reader.

moto does not evaluate resource ARNs or encryption-context conditions, so these
tests prove them on the policy documents themselves.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tools import policies

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
KEY_ARN = "arn:aws:kms:eu-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TABLE_ARN = "arn:aws:dynamodb:eu-west-2:123456789012:table/pii-vault"
IDEMPOTENCY_ARN = TABLE_ARN + "-idempotency"
FLEET_KEY_ARN = "arn:aws:kms:eu-west-2:123456789012:key/9f8e7d6c-12ab-34cd-56ef-1234567890ab"
FLEET_TABLE_ARN = TABLE_ARN + "-fleet-keys"


def _reader_with_fleet(key_arn, table_arn, **kwargs):
    return policies.reader_policy(key_arn, table_arn, fleet_mac_key_arn=FLEET_KEY_ARN, **kwargs)


BUILDERS = {"writer": policies.writer_policy, "reader": _reader_with_fleet}

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
    *WRITER_IDEMPOTENCY_ACTIONS,
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
}
READER_ACTIONS = {
    "kms:Decrypt",
    "kms:GenerateMac",
    "dynamodb:PutItem",  # the fleet key table only
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
DYNAMODB_WRITES = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:TransactWriteItems",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
}


def _as_list(value):
    return [value] if isinstance(value, str) else list(value)


def _actions(policy):
    return {a for s in policy["Statement"] for a in _as_list(s["Action"])}


def _actions_on(policy, resource):
    return {a for s in policy["Statement"] if resource in _as_list(s["Resource"]) for a in _as_list(s["Action"])}


def _statements_for(policy, service):
    return [s for s in policy["Statement"] if any(a.startswith(service + ":") for a in _as_list(s["Action"]))]


@pytest.fixture(params=sorted(BUILDERS))
def role_policy(request):
    return request.param, BUILDERS[request.param](KEY_ARN, TABLE_ARN)


def test_given_valid_arns_when_writer_policy_is_built_then_actions_are_exactly_encrypt_writes_and_logs():
    policy = policies.writer_policy(KEY_ARN, TABLE_ARN)
    assert _actions(policy) == WRITER_ACTIONS
    assert _actions_on(policy, KEY_ARN) == {"kms:Encrypt"}
    assert _actions_on(policy, TABLE_ARN) == WRITER_TABLE_ACTIONS
    assert _actions_on(policy, IDEMPOTENCY_ARN) == WRITER_IDEMPOTENCY_ACTIONS


def test_given_valid_arns_when_reader_policy_is_built_then_actions_are_exactly_decrypt_reads_fleet_and_logs():
    policy = _reader_with_fleet(KEY_ARN, TABLE_ARN)

    assert _actions(policy) == READER_ACTIONS
    assert _actions_on(policy, KEY_ARN) == {"kms:Decrypt"}
    assert _actions_on(policy, TABLE_ARN) == {"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query"}
    assert _actions_on(policy, FLEET_KEY_ARN) == {"kms:GenerateMac"}
    assert _actions_on(policy, FLEET_TABLE_ARN) == {"dynamodb:GetItem", "dynamodb:PutItem"}


def test_given_no_fleet_key_when_reader_policy_is_built_then_it_has_no_fleet_statement():
    policy = policies.reader_policy(KEY_ARN, TABLE_ARN)

    assert _actions(policy) == READER_ACTIONS - {"kms:GenerateMac", "dynamodb:PutItem"}
    assert not _actions_on(policy, FLEET_TABLE_ARN)


def test_given_the_fleet_mac_statement_then_it_is_generate_mac_with_hmac_sha_256_only():
    (statement,) = [s for s in _reader_with_fleet(KEY_ARN, TABLE_ARN)["Statement"] if s["Resource"] == FLEET_KEY_ARN]

    assert statement["Action"] == "kms:GenerateMac"
    assert statement["Condition"] == {"StringEquals": {"kms:MacAlgorithm": "HMAC_SHA_256"}}


@pytest.mark.parametrize(
    ("fleet", "message"),
    [
        ({"fleet_table_arn": FLEET_TABLE_ARN}, "needs fleet_mac_key_arn"),
        ({"fleet_mac_key_arn": KEY_ARN}, "must differ"),
        ({"fleet_mac_key_arn": FLEET_KEY_ARN, "fleet_table_arn": TABLE_ARN}, "must differ"),
        ({"fleet_mac_key_arn": FLEET_KEY_ARN.replace("123456789012", "210987654321")}, "same partition"),
        ({"fleet_mac_key_arn": "arn:aws:kms:eu-west-2:123456789012:alias/pii-vault-fleet"}, "key_arn"),
        (
            {"fleet_mac_key_arn": FLEET_KEY_ARN, "fleet_table_arn": TABLE_ARN.replace("eu-west-2", "eu-west-1")},
            "region",
        ),
    ],
)
def test_given_bad_fleet_arns_when_reader_policy_is_built_then_they_are_refused(fleet, message):
    with pytest.raises(policies.InvalidResourceError, match=message):
        policies.reader_policy(KEY_ARN, TABLE_ARN, **fleet)


def test_given_writer_policy_then_it_can_neither_decrypt_nor_generate_keys_nor_read_items():
    policy = policies.writer_policy(KEY_ARN, TABLE_ARN)
    actions = _actions(policy)

    assert "kms:Decrypt" not in actions
    assert not {a for a in actions if a.startswith(("kms:GenerateDataKey", "kms:ReEncrypt"))}
    assert not _actions_on(policy, TABLE_ARN) & DYNAMODB_READS


def test_given_reader_policy_then_it_can_neither_encrypt_nor_write_items():
    policy = _reader_with_fleet(KEY_ARN, TABLE_ARN)
    actions = _actions(policy)

    assert not {a for a in actions if a.startswith(("kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt"))}
    assert not (_actions_on(policy, TABLE_ARN) | _actions_on(policy, IDEMPOTENCY_ARN)) & DYNAMODB_WRITES
    # Its one write: a sealed entry in the fleet key table (no update, delete or batch).
    assert _actions_on(policy, FLEET_TABLE_ARN) & DYNAMODB_WRITES == {"dynamodb:PutItem"}


def test_given_writer_policy_then_it_has_nothing_on_the_fleet_key_or_table():
    policy = policies.writer_policy(KEY_ARN, TABLE_ARN)

    assert not _actions_on(policy, FLEET_KEY_ARN) and not _actions_on(policy, FLEET_TABLE_ARN)
    assert not {a for a in _actions(policy) if "Mac" in a}


def test_given_either_policy_then_kms_and_dynamodb_resources_are_the_exact_arns(role_policy):
    role, policy = role_policy
    tables = {TABLE_ARN, IDEMPOTENCY_ARN} if role == "writer" else {TABLE_ARN, FLEET_TABLE_ARN}
    keys = {KEY_ARN} if role == "writer" else {KEY_ARN, FLEET_KEY_ARN}

    for service, arns in (("kms", keys), ("dynamodb", tables)):
        statements = _statements_for(policy, service)
        assert statements, f"no {service} statement"
        assert {statement["Resource"] for statement in statements} == arns
        for statement in statements:
            assert {a.split(":")[0] for a in _as_list(statement["Action"])} == {service}


def test_given_either_policy_then_no_statement_uses_wildcards_or_negations(role_policy):
    _, policy = role_policy

    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert not {"NotAction", "NotResource", "Principal"} & set(statement)
        assert not any("*" in a for a in _as_list(statement["Action"]))
        for resource in _as_list(statement["Resource"]):
            assert "*" not in resource.removesuffix(":*"), resource


def test_given_either_policy_then_its_data_key_statements_require_the_tenant_or_the_pool_context(role_policy):
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


def test_given_the_context_shapes_then_they_are_the_ones_chalicelib_crypto_builds():
    from chalicelib.envelope.format import KIND_POOL, KIND_TENANT, encryption_context

    assert set(encryption_context("pii-vault", "acme", KIND_TENANT)) == set(policies.ENCRYPTION_CONTEXT_KEYS)
    assert encryption_context("pii-vault", "acme", KIND_POOL) == {
        "app": "pii-vault",
        policies.POOL_KEY: policies.POOL_SCOPE,
    }


def test_given_writer_policy_then_single_item_writes_may_only_return_none_or_updated_new():
    statements = _statements_for(policies.writer_policy(KEY_ARN, TABLE_ARN), "dynamodb")
    (single,) = [s for s in statements if "dynamodb:PutItem" in _as_list(s["Action"]) and s["Resource"] == TABLE_ARN]
    (batch,) = [s for s in statements if "dynamodb:BatchWriteItem" in _as_list(s["Action"])]

    assert set(_as_list(single["Action"])) == {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    # Single-valued key, absent when the default NONE is used: IfExists, not ForAllValues.
    assert single["Condition"] == {"StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE", "UPDATED_NEW"]}}
    # BatchWriteItem has no ReturnValues and returns no items; it may not carry other actions.
    assert _as_list(batch["Action"]) == ["dynamodb:BatchWriteItem"]


def test_given_either_policy_then_logs_are_scoped_to_the_stage_function_log_group(role_policy):
    role, policy = role_policy
    group = f"arn:aws:logs:eu-west-2:123456789012:log-group:/aws/lambda/pii-vault-{role}"

    (statement,) = _statements_for(policy, "logs")

    assert sorted(_as_list(statement["Resource"])) == [group, f"{group}:*"]


def test_given_either_policy_then_it_is_a_2012_document_with_unique_explicit_sids(role_policy):
    _, policy = role_policy
    sids = [s.get("Sid") for s in policy["Statement"]]

    assert policy["Version"] == "2012-10-17"
    assert all(sid and re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids)
    assert len(set(sids)) == len(sids)


def test_given_a_gov_cloud_multi_region_key_when_policy_is_built_then_partition_comes_from_the_arns():
    key = "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef"
    table = "arn:aws-us-gov:dynamodb:us-gov-west-1:123456789012:table/pii-vault"

    fleet = key.replace("mrk-0123", "mrk-9123")
    policy = policies.reader_policy(
        key, table, region="us-gov-west-1", account_id="123456789012", fleet_mac_key_arn=fleet
    )

    (logs,) = _statements_for(policy, "logs")
    assert all(r.startswith("arn:aws-us-gov:logs:us-gov-west-1:123456789012:") for r in logs["Resource"])


@pytest.mark.parametrize(
    ("key_arn", "table_arn", "message"),
    [
        ("arn:aws:kms:eu-west-2:123456789012:alias/pii-vault", TABLE_ARN, "key_arn"),
        ("arn:aws:kms:eu-west-2:123456789012:key/*", TABLE_ARN, "key_arn"),
        ("*", TABLE_ARN, "key_arn"),
        ("alias/pii-vault", TABLE_ARN, "key_arn"),
        ("arn:aws:kms:eu-west-2:1234:key/1234abcd-12ab-34cd-56ef-1234567890ab", TABLE_ARN, "key_arn"),
        (KEY_ARN, "arn:aws:dynamodb:eu-west-2:123456789012:table/*", "table_arn"),
        (KEY_ARN, "arn:aws:dynamodb:eu-west-2:123456789012:table/pii-vault/index/gsi1", "table_arn"),
        (KEY_ARN, "pii-vault", "table_arn"),
        (KEY_ARN, "arn:aws:dynamodb:eu-west-1:123456789012:table/pii-vault", "same partition, region and account"),
        (KEY_ARN, "arn:aws:dynamodb:eu-west-2:210987654321:table/pii-vault", "same partition, region and account"),
        (None, TABLE_ARN, "key_arn"),
    ],
)
def test_given_an_invalid_arn_when_policy_is_built_then_a_clear_error_names_the_problem(key_arn, table_arn, message):
    for build in BUILDERS.values():
        with pytest.raises(policies.InvalidResourceError, match=re.escape(message)):
            build(key_arn, table_arn)


def test_given_a_region_that_contradicts_the_arns_when_policy_is_built_then_it_is_rejected():
    with pytest.raises(policies.InvalidResourceError, match="region 'us-east-1'"):
        policies.writer_policy(KEY_ARN, TABLE_ARN, region="us-east-1", account_id="123456789012")


def test_given_a_resources_file_when_cli_writes_then_check_passes_and_detects_later_edits(tmp_path, capsys):
    resources = tmp_path / "resources.json"
    resources.write_text(
        json.dumps({"key_arn": KEY_ARN, "table_arn": TABLE_ARN, "beacon_key_arn": KEY_ARN}), encoding="utf-8"
    )
    args = ["--resources", str(resources), "--out-dir", str(tmp_path)]

    assert policies.main([*args, "--check"]) == 1  # nothing written yet
    assert policies.main(args) == 0
    assert policies.main([*args, "--check"]) == 0
    written = (tmp_path / "policy-reader.json").read_text(encoding="utf-8")
    assert written.endswith("}\n") and written == policies.render(json.loads(written))

    (tmp_path / "policy-reader.json").write_text(written.replace("dynamodb:Query", "dynamodb:Scan"), encoding="utf-8")

    assert policies.main([*args, "--check"]) == 1
    assert "policy-reader.json is missing or out of date" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        json.dumps({"key_arn": KEY_ARN}),
        json.dumps({"key_arn": "arn:aws:kms:eu-west-2:123456789012:alias/x", "table_arn": TABLE_ARN}),
    ],
)
def test_given_a_bad_resources_file_when_cli_runs_then_it_exits_2_with_an_error_and_writes_nothing(
    tmp_path, capsys, content
):
    resources = tmp_path / "resources.json"
    resources.write_text(content, encoding="utf-8")

    assert policies.main(["--resources", str(resources), "--out-dir", str(tmp_path / "out")]) == 2
    assert "tools.policies: error:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_given_a_resources_file_with_the_fleet_key_then_only_the_reader_file_grants_the_fleet():
    files = policies.generate(
        {
            "key_arn": KEY_ARN,
            "table_arn": TABLE_ARN,
            "fleet_mac_key_arn": FLEET_KEY_ARN,
            "fleet_table_arn": FLEET_TABLE_ARN,
        }
    )
    reader, writer = (json.loads(files[policies.POLICY_FILES[s]]) for s in ("reader", "writer"))

    assert reader == _reader_with_fleet(KEY_ARN, TABLE_ARN)
    assert writer == policies.writer_policy(KEY_ARN, TABLE_ARN)
    assert FLEET_KEY_ARN not in json.dumps(writer) and FLEET_TABLE_ARN not in json.dumps(writer)
