"""tools.bootstrap against moto's in-process mock: creates once, then finds what exists."""

import json

import boto3
import pytest
from moto import mock_aws

from tools import policies
from tools.bootstrap import BootstrapError, admin_from_caller, bootstrap
from tools.bootstrap import main as bootstrap_main

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
    }  # no beacon GSI: beacons have a table of their own, which the writer cannot reach
    beacons = ddb.describe_table(TableName="pii-vault-beacons")["Table"]
    assert [i["IndexName"] for i in beacons["GlobalSecondaryIndexes"]] == ["beacon-index"]
    assert not table.get("GlobalSecondaryIndexes")
    key = kms.describe_key(KeyId="alias/pii-vault")["KeyMetadata"]
    assert (result["key_id"], result["key_arn"]) == (key["KeyId"], key["Arn"])
    assert key["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert key["KeyUsage"] == "ENCRYPT_DECRYPT"


def test_given_bootstrapped_account_when_bootstrapping_again_then_nothing_new_is_created(clients):
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


def test_given_empty_account_when_bootstrapping_then_the_fleet_hmac_key_and_key_table_exist(clients):
    from chalicelib.store import fleet_table

    kms, ddb = clients

    result = bootstrap(kms, ddb)

    key = kms.describe_key(KeyId="alias/pii-vault-fleet")["KeyMetadata"]
    assert result["fleet_mac_key_arn"] == key["Arn"] != result["key_arn"]
    assert (key["KeySpec"], key["KeyUsage"]) == ("HMAC_256", "GENERATE_VERIFY_MAC")
    table = ddb.describe_table(TableName="pii-vault-fleet")["Table"]
    assert (result["fleet_table_name"], result["fleet_table_arn"]) == (table["TableName"], table["TableArn"])
    assert table["KeySchema"] == fleet_table.table_definition("x")["KeySchema"]
    ttl = ddb.describe_time_to_live(TableName="pii-vault-fleet")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", fleet_table.TTL)
    # Deliberately no backups: an entry must not outlive its lifetime (as in the template).
    backups = ddb.describe_continuous_backups(TableName="pii-vault-fleet")["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "DISABLED"


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
        "enabled automatic rotation",
        "created table pii-vault",
        "enabled point-in-time recovery",
        "created table pii-vault-idempotency",
        "enabled TTL on",
        "created HMAC key",
        "created table pii-vault-fleet",
        "created HMAC key",
        "enabled the KEYS_ONLY",
        "created table pii-vault-beacons",
        "created table pii-vault-keys",
        "enabled point-in-time recovery",
        "created table pii-vault-erasures",
        "enabled point-in-time recovery",
        "created table pii-vault-jobs",
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


def test_given_the_cli_when_run_twice_then_it_prints_the_arns_and_writes_no_file(
    aws_env, tmp_path, capsys, monkeypatch
):
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
def test_given_a_caller_arn_then_the_admin_is_its_iam_principal(caller, admin):
    assert admin_from_caller(caller) == admin


def test_given_the_root_caller_then_it_is_refused_as_admin():
    with pytest.raises(BootstrapError, match="--admin-arn"):
        admin_from_caller("arn:aws:iam::123456789012:root")


RESOURCES = {
    "admin_arn": "arn:aws:iam::111122223333:role/pii-vault-admin",
    "key_arn": "arn:aws:kms:us-east-1:111122223333:key/0f6c2a1e-8b3d-4c7a-9e52-7d1b4a6f3c80",
    "table_arn": "arn:aws:dynamodb:us-east-1:111122223333:table/pii-vault",
    "fleet_mac_key_arn": "arn:aws:kms:us-east-1:111122223333:key/9d3e2c1b-4a5f-4e6d-8c7b-0a1b2c3d4e5f",
}


def test_given_deployed_roles_when_the_key_policy_is_tightened_then_it_holds_and_survives_bootstrap(
    aws_env, tmp_path, capsys
):
    """tools.policies --key-policy --apply on a bootstrapped key (the chalice-deploy path)."""
    chalice_dir = tmp_path / ".chalice"
    (chalice_dir / "deployed").mkdir(parents=True)
    for stage, arn in (("writer", WRITER_ROLE), ("reader", READER_ROLE)):
        deployed = {"resources": [{"name": "api_handler_role", "resource_type": "iam_role", "role_arn": arn}]}
        (chalice_dir / "deployed" / f"{stage}.json").write_text(json.dumps(deployed), encoding="utf-8")
    bootstrap_args = ["--region", "us-east-1", "--admin-arn", ADMIN]
    with mock_aws():
        assert bootstrap_main(bootstrap_args) == 0
        resources = chalice_dir / "resources.json"
        resources.write_text(capsys.readouterr().out, encoding="utf-8")

        assert policies.main(["--key-policy", "--apply", "--resources", str(resources)]) == 0
        printed = capsys.readouterr().out
        kms = boto3.client("kms", region_name="us-east-1")
        key_arn = json.loads(resources.read_text())["key_arn"]
        applied = kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]
        assert bootstrap_main(bootstrap_args) == 0
        after_rerun = kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]
        capsys.readouterr()
        assert policies.main(["--fleet-key-policy", "--apply", "--resources", str(resources)]) == 0
        fleet_printed = capsys.readouterr().out
        fleet_arn = json.loads(resources.read_text())["fleet_mac_key_arn"]
        fleet_applied = kms.get_key_policy(KeyId=fleet_arn, PolicyName="default")["Policy"]

    assert applied == printed == after_rerun
    # One statement per encryption context (tenant, pool; the writer's also the masked view's
    # two) and role; no masked stage deployed here, so no masked role.
    assert [s["Principal"]["AWS"] for s in json.loads(applied)["Statement"]] == [
        ADMIN,
        *[WRITER_ROLE] * 4,
        READER_ROLE,
        READER_ROLE,
    ]
    # The fleet HMAC key: the admin administers, the reader role alone generates MACs.
    assert fleet_applied == fleet_printed == policies.render(policies.fleet_key_policy(ADMIN, READER_ROLE))


def test_given_no_deployed_file_then_the_key_policy_names_the_roles_chalice_deploy_creates(tmp_path, capsys):
    resources = tmp_path / "resources.json"
    resources.write_text(json.dumps(RESOURCES), encoding="utf-8")

    assert policies.main(["--key-policy", "--resources", str(resources)]) == 0

    statements = json.loads(capsys.readouterr().out)["Statement"]
    writer = "arn:aws:iam::111122223333:role/pii-vault-writer-api_handler"
    reader = "arn:aws:iam::111122223333:role/pii-vault-reader-api_handler"
    assert [s["Principal"]["AWS"] for s in statements[1:]] == [writer, writer, writer, writer, reader, reader]

    assert policies.main(["--fleet-key-policy", "--resources", str(resources)]) == 0

    statements = json.loads(capsys.readouterr().out)["Statement"]
    assert [s["Principal"]["AWS"] for s in statements] == [RESOURCES["admin_arn"], reader]


def test_given_a_resources_file_without_admin_then_the_key_policy_cli_exits_2(tmp_path, capsys):
    resources = tmp_path / "resources.json"
    data = dict(RESOURCES)
    del data["admin_arn"]
    resources.write_text(json.dumps(data), encoding="utf-8")

    assert policies.main(["--key-policy", "--resources", str(resources)]) == 2
    assert "admin_arn" in capsys.readouterr().err


def test_given_a_deployed_masked_stage_then_the_key_policy_cli_grants_its_role_masked_view_decrypt_only(
    tmp_path, capsys
):
    chalice_dir = tmp_path / ".chalice"
    (chalice_dir / "deployed").mkdir(parents=True)
    masked = "arn:aws:iam::111122223333:role/pii-vault-masked-api_handler"
    deployed = {"resources": [{"name": "api_handler_role", "resource_type": "iam_role", "role_arn": masked}]}
    (chalice_dir / "deployed" / "masked.json").write_text(json.dumps(deployed), encoding="utf-8")
    resources = chalice_dir / "resources.json"
    resources.write_text(json.dumps(RESOURCES), encoding="utf-8")

    assert policies.main(["--key-policy", "--resources", str(resources)]) == 0

    statements = json.loads(capsys.readouterr().out)["Statement"]
    mine = [s for s in statements if s["Principal"]["AWS"] == masked]
    assert [s["Action"] for s in mine] == ["kms:Decrypt", "kms:Decrypt"]
    assert all(s["Condition"]["StringEquals"]["kms:EncryptionContext:view"] == "masked" for s in mine)
