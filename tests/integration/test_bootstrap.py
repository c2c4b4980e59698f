"""tools.bootstrap against moto's in-process mock: creates once, then finds what exists."""

import boto3
import pytest
from moto import mock_aws

from tools.bootstrap import BootstrapError, bootstrap


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
    assert len(kms.list_keys()["Keys"]) == 1
    assert ddb.list_tables()["TableNames"] == ["pii-vault", "pii-vault-idempotency"]


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
