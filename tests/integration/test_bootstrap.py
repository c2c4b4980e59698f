"""The local bootstrap (infra.local, python -m tools.bootstrap) against moto's in-process mock:
creates every key and table of the specs once, then finds what exists."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.support.environment import Key, Table
from infra.cfn import render
from infra.iam import key_policy
from infra.local import BootstrapError, bootstrap
from infra.specs import TABLES
from tools.bootstrap import admin_from_caller
from tools.bootstrap import main as bootstrap_main

WRITER_ROLE = "arn:aws:iam::123456789012:role/pii-vault-writer"
READER_ROLE = "arn:aws:iam::123456789012:role/pii-vault-reader"


@pytest.fixture
def clients(aws_env: None) -> Iterator[tuple[Any, Any]]:
    """KMS and DynamoDB clients (boto3's, untyped) on moto's in-process mock."""
    with mock_aws():
        yield (
            boto3.client("kms", region_name="us-east-1"),
            boto3.client("dynamodb", region_name="us-east-1"),
        )


def test_given_empty_account_when_bootstrapping_then_table_and_key_exist(clients: tuple[Any, Any]) -> None:
    kms, ddb = clients

    result = bootstrap(kms, ddb)

    table = ddb.describe_table(TableName="pii-vault")["Table"]
    assert result["table_name"] == "pii-vault"
    assert result["table_arn"] == table["TableArn"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {
        ("pk", "HASH"),
        ("sk", "RANGE"),
    }
    assert {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]} == {
        ("pk", "S"),
        ("sk", "S"),
    }
    key = kms.describe_key(KeyId="alias/pii-vault")["KeyMetadata"]
    assert (result["key_id"], result["key_arn"]) == (key["KeyId"], key["Arn"])
    assert key["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert key["KeyUsage"] == "ENCRYPT_DECRYPT"


def test_given_bootstrapped_account_when_bootstrapping_again_then_nothing_new_is_created(
    clients: tuple[Any, Any],
) -> None:
    kms, ddb = clients
    first = bootstrap(kms, ddb)

    second = bootstrap(kms, ddb)

    assert second == first
    assert len(kms.list_keys()["Keys"]) == 3  # the data key, the fleet HMAC key and the beacon HMAC key
    assert sorted(ddb.list_tables()["TableNames"]) == [
        "pii-vault",
        "pii-vault-beacons",
        "pii-vault-erasures",
        "pii-vault-fleet",
        "pii-vault-idempotency",
        "pii-vault-jobs",
        "pii-vault-keys",
        "pii-vault-tenants",
    ]


def test_given_empty_account_when_bootstrapping_then_every_table_is_as_its_spec_declares(
    clients: tuple[Any, Any],
) -> None:
    """The same specs as the base stack's tables (infra.specs): keys, indexes, stream, TTL, backups."""
    kms, ddb = clients

    result = bootstrap(kms, ddb)

    for spec in TABLES.values():
        table = ddb.describe_table(TableName=spec.name())["Table"]
        assert table["KeySchema"] == spec.key_schema(), spec.table
        assert sorted(table["AttributeDefinitions"], key=str) == sorted(spec.attribute_definitions(), key=str)
        assert [i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])] == [i.name for i in spec.indexes]
        assert table.get("StreamSpecification", {}).get("StreamViewType") == spec.stream
        assert table["DeletionProtectionEnabled"] is spec.protected
        backups = ddb.describe_continuous_backups(TableName=spec.name())["ContinuousBackupsDescription"]
        pitr = backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]
        assert pitr == ("ENABLED" if spec.backups else "DISABLED"), spec.table
        ttl = ddb.describe_time_to_live(TableName=spec.name())["TimeToLiveDescription"]
        assert ttl.get("AttributeName") == spec.ttl, spec.table
        assert result[f"{spec.label}_name"] == spec.name()
    assert result["stream_arn"] == ddb.describe_table(TableName="pii-vault")["Table"]["LatestStreamArn"]


def test_given_custom_names_when_bootstrapping_then_they_are_used(clients: tuple[Any, Any]) -> None:
    kms, ddb = clients

    result = bootstrap(kms, ddb, base="pv-test")

    assert result["table_name"] == "pv-test"
    assert result["tenants_table_name"] == "pv-test-tenants"
    assert kms.describe_key(KeyId="alias/pv-test")["KeyMetadata"]["KeyId"] == result["key_id"]
    assert kms.describe_key(KeyId="alias/pv-test-beacon")["KeyMetadata"]["KeyId"] == result["beacon_key_id"]


def test_given_table_with_other_key_schema_when_bootstrapping_then_it_refuses(clients: tuple[Any, Any]) -> None:
    kms, ddb = clients
    ddb.create_table(
        TableName="pii-vault",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    with pytest.raises(BootstrapError, match="key schema"):
        bootstrap(kms, ddb)


def test_given_empty_account_when_bootstrapping_then_the_idempotency_table_has_ttl_on_expiration(
    clients: tuple[Any, Any],
) -> None:
    kms, ddb = clients

    result = bootstrap(kms, ddb)

    table = ddb.describe_table(TableName="pii-vault-idempotency")["Table"]
    assert result["idempotency_table_arn"] == table["TableArn"]
    assert [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]] == [("id", "HASH")]
    ttl = ddb.describe_time_to_live(TableName="pii-vault-idempotency")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expiration")


def test_given_empty_account_when_bootstrapping_then_the_fleet_hmac_key_and_key_table_exist(
    clients: tuple[Any, Any],
) -> None:
    from chalicelib.store import fleet_table

    kms, ddb = clients

    result = bootstrap(kms, ddb)

    key = kms.describe_key(KeyId="alias/pii-vault-fleet")["KeyMetadata"]
    assert result["fleet_mac_key_arn"] == key["Arn"] != result["key_arn"]
    assert (key["KeySpec"], key["KeyUsage"]) == ("HMAC_256", "GENERATE_VERIFY_MAC")
    table = ddb.describe_table(TableName="pii-vault-fleet")["Table"]
    assert (result["fleet_table_name"], result["fleet_table_arn"]) == (table["TableName"], table["TableArn"])
    assert table["KeySchema"] == [
        {"AttributeName": fleet_table.BUCKET, "KeyType": "HASH"},  # the day a format v3 key was made
        {"AttributeName": fleet_table.REFERENCE, "KeyType": "RANGE"},
    ]
    assert table["KeySchema"] == TABLES[Table.FLEET].key_schema()
    ttl = ddb.describe_time_to_live(TableName="pii-vault-fleet")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", fleet_table.TTL)
    # Deliberately no backups: an entry must not outlive its lifetime (as in the template).
    backups = ddb.describe_continuous_backups(TableName="pii-vault-fleet")["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "DISABLED"


ADMIN = "arn:aws:iam::123456789012:role/pii-vault-admin"


def _state(kms: Any, ddb: Any, key_id: str) -> dict[str, Any]:
    """Everything bootstrap may change, for before/after comparisons."""
    table = ddb.describe_table(TableName="pii-vault")["Table"]
    return {
        "keys": kms.list_keys()["Keys"],
        "aliases": [a["AliasName"] for a in kms.list_aliases()["Aliases"] if "pii-vault" in a["AliasName"]],
        "policy": kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"],
        "rotation": kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"],
        "tables": ddb.list_tables()["TableNames"],
        "deletion_protection": table.get("DeletionProtectionEnabled"),
        "sse": table.get("SSEDescription"),
        "pitr": ddb.describe_continuous_backups(TableName="pii-vault")["ContinuousBackupsDescription"],
    }


def test_given_an_admin_when_bootstrapping_then_key_and_table_are_hardened(clients: tuple[Any, Any]) -> None:
    kms, ddb = clients
    changes: list[str] = []

    result = bootstrap(kms, ddb, admin_arn=ADMIN, changes=changes)

    state = _state(kms, ddb, result["key_id"])
    assert state["rotation"] is True
    policy = json.loads(state["policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["KeyAdministrationWithoutCryptographicUse"]
    (admin,) = policy["Statement"]
    assert admin["Principal"] == {"AWS": ADMIN}
    assert not {"kms:Encrypt", "kms:Decrypt", "kms:CreateGrant"} & set(admin["Action"])
    assert not [a for a in admin["Action"] if "*" in a]
    assert state["deletion_protection"] is True
    assert state["pitr"]["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    # Documented choice: the AWS owned key at rest (no SSESpecification, so no SSEDescription).
    assert state["sse"] is None
    assert result["admin_arn"] == ADMIN
    assert [" ".join(c.split(" ")[:3]) for c in changes if not c.startswith(("created key", "enabled automatic"))] == [
        "created table pii-vault",
        "enabled point-in-time recovery",
        "created table pii-vault-keys",  # losing it loses every v3 record: kept like the PII table
        "enabled point-in-time recovery",
        "created table pii-vault-beacons",  # derived, rebuilt by the backfill: no backups, TTL on tombstones
        "enabled TTL on",
        "created table pii-vault-idempotency",
        "enabled point-in-time recovery",
        "enabled TTL on",
        "created table pii-vault-fleet",
        "enabled TTL on",
        "created table pii-vault-erasures",
        "enabled point-in-time recovery",
        "created table pii-vault-jobs",
        "created table pii-vault-tenants",
        "enabled point-in-time recovery",
    ]
    assert [" ".join(c.split(" ")[:2]) for c in changes[:4]] == [
        "created key",
        "enabled automatic",
        "created key",
        "created key",
    ]
    assert changes[0] == f"created key {result['key_arn']} with alias alias/pii-vault and the admin-only key policy"
    # Every key gets the admin-only policy: the HMAC keys too (no one may use them yet).
    for label in ("fleet_mac_key", "beacon_key"):
        policy = json.loads(kms.get_key_policy(KeyId=result[f"{label}_id"], PolicyName="default")["Policy"])
        assert [s["Sid"] for s in policy["Statement"]] == ["KeyAdministrationWithoutCryptographicUse"]


def test_given_a_hardened_account_when_bootstrapping_again_then_nothing_changes(clients: tuple[Any, Any]) -> None:
    kms, ddb = clients
    first = bootstrap(kms, ddb, admin_arn=ADMIN)
    before = _state(kms, ddb, first["key_id"])
    changes: list[str] = []

    second = bootstrap(kms, ddb, admin_arn=ADMIN, changes=changes)

    assert second == first
    assert changes == []
    assert _state(kms, ddb, first["key_id"]) == before


def test_given_a_tightened_key_policy_when_bootstrapping_again_then_it_is_kept(clients: tuple[Any, Any]) -> None:
    kms, ddb = clients
    first = bootstrap(kms, ddb, admin_arn=ADMIN)
    tightened = render(key_policy(Key.DATA, ADMIN, {"writer": WRITER_ROLE, "reader": READER_ROLE}))
    kms.put_key_policy(KeyId=first["key_id"], PolicyName="default", Policy=tightened)

    bootstrap(kms, ddb, admin_arn=ADMIN)

    assert kms.get_key_policy(KeyId=first["key_id"], PolicyName="default")["Policy"] == tightened


def test_given_an_unhardened_key_and_table_when_bootstrapping_then_each_setting_is_fixed(
    clients: tuple[Any, Any],
) -> None:
    kms, ddb = clients
    bootstrap(kms, ddb)  # no admin: service default key policy
    key_id = kms.describe_key(KeyId="alias/pii-vault")["KeyMetadata"]["KeyId"]
    kms.disable_key_rotation(KeyId=key_id)
    ddb.update_table(TableName="pii-vault", DeletionProtectionEnabled=False)
    ddb.update_continuous_backups(
        TableName="pii-vault", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )
    changes: list[str] = []

    bootstrap(kms, ddb, admin_arn=ADMIN, changes=changes)

    # Three key policies (the data key and both HMAC keys had the default), rotation, protection, PITR.
    assert len(changes) == 6, changes
    assert sum(c.startswith("replaced the key policy") for c in changes) == 3
    state = _state(kms, ddb, key_id)
    assert state["rotation"] and state["deletion_protection"]
    assert state["pitr"]["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert json.loads(state["policy"])["Statement"][0]["Principal"] == {"AWS": ADMIN}


def test_given_the_cli_when_run_twice_then_it_prints_the_arns_and_writes_no_file(
    aws_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["--region", "us-east-1", "--admin-arn", ADMIN]
    with mock_aws():
        assert bootstrap_main(args) == 0
        first = capsys.readouterr()
        assert bootstrap_main(args) == 0
        second = capsys.readouterr()

    assert "created key" in first.err and "created table" in first.err
    assert "bootstrap: nothing to change" in second.err
    assert json.loads(first.out) == json.loads(second.out)
    assert json.loads(first.out)["admin_arn"] == ADMIN
    assert list(tmp_path.iterdir()) == []  # account-specific ARNs never land in the checkout


@pytest.mark.parametrize(
    ("caller", "admin"),
    [
        ("arn:aws:sts::123456789012:assumed-role/Deployer/alice", "arn:aws:iam::123456789012:role/Deployer"),
        ("arn:aws:iam::123456789012:user/ops", "arn:aws:iam::123456789012:user/ops"),
    ],
)
def test_given_a_caller_arn_then_the_admin_is_its_iam_principal(caller: str, admin: str) -> None:
    assert admin_from_caller(caller) == admin


def test_given_the_root_caller_then_it_is_refused_as_admin() -> None:
    with pytest.raises(BootstrapError, match="--admin-arn"):
        admin_from_caller("arn:aws:iam::123456789012:root")
