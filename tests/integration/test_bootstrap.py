"""tools.bootstrap against moto's in-process mock: creates once, then finds what exists."""

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tools import policies
from tools.bootstrap import BootstrapError, admin_from_caller, bootstrap
from tools.bootstrap import main as bootstrap_main

ROOT = Path(__file__).resolve().parents[2]
WRITER_ROLE = "arn:aws:iam::123456789012:role/pii-vault-writer"
READER_ROLE = "arn:aws:iam::123456789012:role/pii-vault-reader"


@pytest.fixture
def clients(aws_env):
    with mock_aws():
        yield (
            boto3.client("kms", region_name="us-east-1"),
            boto3.client("dynamodb", region_name="us-east-1"),
        )


def test_given_empty_account_when_bootstrapping_then_table_and_key_exist(clients):
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
        ("beacon", "B"),  # the beacon GSI's range key
    }
    key = kms.describe_key(KeyId="alias/pii-vault")["KeyMetadata"]
    assert (result["key_id"], result["key_arn"]) == (key["KeyId"], key["Arn"])
    assert key["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert key["KeyUsage"] == "ENCRYPT_DECRYPT"


def test_given_bootstrapped_account_when_bootstrapping_again_then_nothing_new_is_created(clients):
    kms, ddb = clients
    first = bootstrap(kms, ddb)

    second = bootstrap(kms, ddb)

    assert second == first
    assert len(kms.list_keys()["Keys"]) == 2  # the envelope key and the beacon (HMAC) key
    assert sorted(ddb.list_tables()["TableNames"]) == [
        "pii-vault", "pii-vault-erasures", "pii-vault-idempotency", "pii-vault-jobs"
    ]


def test_given_custom_names_when_bootstrapping_then_they_are_used(clients):
    kms, ddb = clients

    result = bootstrap(kms, ddb, table_name="pv-test", key_alias="alias/pv-test")

    assert result["table_name"] == "pv-test"
    assert kms.describe_key(KeyId="alias/pv-test")["KeyMetadata"]["KeyId"] == result["key_id"]


def test_given_table_with_other_key_schema_when_bootstrapping_then_it_refuses(clients):
    kms, ddb = clients
    ddb.create_table(
        TableName="pii-vault",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    with pytest.raises(BootstrapError, match="key schema"):
        bootstrap(kms, ddb)


def test_given_empty_account_when_bootstrapping_then_the_idempotency_table_has_ttl_on_expiration(clients):
    kms, ddb = clients

    result = bootstrap(kms, ddb)

    table = ddb.describe_table(TableName="pii-vault-idempotency")["Table"]
    assert result["idempotency_table_arn"] == table["TableArn"]
    assert [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]] == [("id", "HASH")]
    ttl = ddb.describe_time_to_live(TableName="pii-vault-idempotency")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expiration")


ADMIN = "arn:aws:iam::123456789012:role/pii-vault-admin"


def _state(kms, ddb, key_id):
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


def test_given_an_admin_when_bootstrapping_then_key_and_table_are_hardened(clients):
    kms, ddb = clients
    changes = []

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
    assert [" ".join(c.split(" ")[:3]) for c in changes] == [
        "created key arn:aws:kms:us-east-1:123456789012:key/" + result["key_id"],
        "enabled automatic rotation", "created table pii-vault", "enabled point-in-time recovery",
        "created table pii-vault-idempotency", "enabled TTL on",
        "created HMAC key",
        "enabled the NEW_AND_OLD_IMAGES", "created GSI beacon-index",
        "created table pii-vault-erasures", "enabled point-in-time recovery", "created table pii-vault-jobs",
    ]


def test_given_a_hardened_account_when_bootstrapping_again_then_nothing_changes(clients):
    kms, ddb = clients
    first = bootstrap(kms, ddb, admin_arn=ADMIN)
    before = _state(kms, ddb, first["key_id"])
    changes = []

    second = bootstrap(kms, ddb, admin_arn=ADMIN, changes=changes)

    assert second == first
    assert changes == []
    assert _state(kms, ddb, first["key_id"]) == before


def test_given_a_tightened_key_policy_when_bootstrapping_again_then_it_is_kept(clients):
    kms, ddb = clients
    first = bootstrap(kms, ddb, admin_arn=ADMIN)
    tightened = policies.render(policies.key_policy(ADMIN, WRITER_ROLE, READER_ROLE))
    kms.put_key_policy(KeyId=first["key_id"], PolicyName="default", Policy=tightened)

    bootstrap(kms, ddb, admin_arn=ADMIN)

    assert kms.get_key_policy(KeyId=first["key_id"], PolicyName="default")["Policy"] == tightened


def test_given_an_unhardened_key_and_table_when_bootstrapping_then_each_setting_is_fixed(clients):
    kms, ddb = clients
    bootstrap(kms, ddb)  # no admin: service default key policy
    key_id = kms.describe_key(KeyId="alias/pii-vault")["KeyMetadata"]["KeyId"]
    kms.disable_key_rotation(KeyId=key_id)
    ddb.update_table(TableName="pii-vault", DeletionProtectionEnabled=False)
    ddb.update_continuous_backups(
        TableName="pii-vault", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )
    changes = []

    bootstrap(kms, ddb, admin_arn=ADMIN, changes=changes)

    assert len(changes) == 4, changes
    state = _state(kms, ddb, key_id)
    assert state["rotation"] and state["deletion_protection"]
    assert state["pitr"]["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert json.loads(state["policy"])["Statement"][0]["Principal"] == {"AWS": ADMIN}


def test_given_the_cli_with_write_when_run_twice_then_resources_and_config_hold_the_arns(aws_env, tmp_path, capsys):
    chalice_dir = tmp_path / ".chalice"
    chalice_dir.mkdir()
    (chalice_dir / "config.json").write_text((ROOT / ".chalice" / "config.json").read_text(), encoding="utf-8")
    args = ["--write", "--chalice-dir", str(chalice_dir), "--region", "us-east-1", "--admin-arn", ADMIN]
    with mock_aws():
        assert bootstrap_main(args) == 0
        first_err = capsys.readouterr().err
        assert bootstrap_main(args) == 0
        second_err = capsys.readouterr().err

    resources = json.loads((chalice_dir / "resources.json").read_text())
    config = json.loads((chalice_dir / "config.json").read_text())
    assert "created key" in first_err and "created table" in first_err
    assert "bootstrap: nothing to change" in second_err
    assert resources["admin_arn"] == ADMIN
    assert config["environment_variables"]["PII_VAULT_KMS_KEY_ID"] == resources["key_arn"]
    assert config["environment_variables"]["PII_VAULT_TABLE"] == "pii-vault"
    assert config["environment_variables"]["PII_VAULT_IDEMPOTENCY_TABLE"] == "pii-vault-idempotency"
    assert config["stages"] == json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]
    assert set(policies.generate(resources)) == {
        "policy-writer.json", "policy-reader.json", "policy-indexer.json", "policy-offboard.json"
    }


@pytest.mark.parametrize(
    ("caller", "admin"),
    [
        ("arn:aws:sts::123456789012:assumed-role/Deployer/alice", "arn:aws:iam::123456789012:role/Deployer"),
        ("arn:aws:iam::123456789012:user/ops", "arn:aws:iam::123456789012:user/ops"),
    ],
)
def test_given_a_caller_arn_then_the_admin_is_its_iam_principal(caller, admin):
    assert admin_from_caller(caller) == admin


def test_given_the_root_caller_then_it_is_refused_as_admin():
    with pytest.raises(BootstrapError, match="--admin-arn"):
        admin_from_caller("arn:aws:iam::123456789012:root")


def test_given_deployed_roles_when_the_key_policy_is_tightened_then_it_holds_and_survives_bootstrap(
    aws_env, tmp_path, capsys
):
    """The documented order: bootstrap --write, deploy (its role ARNs), --key-policy --apply."""
    chalice_dir = tmp_path / ".chalice"
    (chalice_dir / "deployed").mkdir(parents=True)
    (chalice_dir / "config.json").write_text((ROOT / ".chalice" / "config.json").read_text(), encoding="utf-8")
    for stage, arn in (("writer", WRITER_ROLE), ("reader", READER_ROLE)):
        deployed = {"resources": [{"name": "api_handler_role", "resource_type": "iam_role", "role_arn": arn}]}
        (chalice_dir / "deployed" / f"{stage}.json").write_text(json.dumps(deployed), encoding="utf-8")
    bootstrap_args = ["--write", "--chalice-dir", str(chalice_dir), "--region", "us-east-1", "--admin-arn", ADMIN]
    with mock_aws():
        assert bootstrap_main(bootstrap_args) == 0
        resources = chalice_dir / "resources.json"
        capsys.readouterr()

        assert policies.main(["--key-policy", "--apply", "--resources", str(resources)]) == 0
        printed = capsys.readouterr().out
        kms = boto3.client("kms", region_name="us-east-1")
        key_arn = json.loads(resources.read_text())["key_arn"]
        applied = kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]
        assert bootstrap_main(bootstrap_args) == 0
        after_rerun = kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]

    assert applied == printed == after_rerun
    assert [s["Principal"]["AWS"] for s in json.loads(applied)["Statement"]] == [ADMIN, WRITER_ROLE, READER_ROLE]


def test_given_no_deployed_file_then_the_key_policy_names_the_roles_chalice_deploy_creates(tmp_path, capsys):
    resources = tmp_path / "resources.json"
    resources.write_text((ROOT / ".chalice" / "resources.json").read_text(), encoding="utf-8")

    assert policies.main(["--key-policy", "--resources", str(resources)]) == 0

    statements = json.loads(capsys.readouterr().out)["Statement"]
    assert [s["Principal"]["AWS"] for s in statements[1:]] == [
        "arn:aws:iam::111122223333:role/pii-vault-writer-api_handler",
        "arn:aws:iam::111122223333:role/pii-vault-reader-api_handler",
    ]


def test_given_a_resources_file_without_admin_then_the_key_policy_cli_exits_2(tmp_path, capsys):
    resources = tmp_path / "resources.json"
    data = json.loads((ROOT / ".chalice" / "resources.json").read_text())
    del data["admin_arn"]
    resources.write_text(json.dumps(data), encoding="utf-8")

    assert policies.main(["--key-policy", "--resources", str(resources)]) == 2
    assert "admin_arn" in capsys.readouterr().err
