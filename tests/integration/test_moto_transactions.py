"""moto's TransactWriteItems against DynamoDB's, alone (no pii-vault code): issue 19's repro.

The first test is the repro and a canary: moto 5.2.5 runs a retried transaction again
although its ClientRequestToken is the same (DynamoDB answers success and writes nothing).
If it starts failing, moto honours the token and tools/moto_transactions.py can shrink.
The others hold the local stack's patch (tools/moto_transactions.py) to DynamoDB's semantics.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models.table import Table

from tools import moto_transactions

REGION = "us-east-1"
TABLE = "t"


def _stream_records(table: Table) -> int:
    """How many records moto's stream of ``table`` holds (the table has a stream)."""
    assert table.stream_shard is not None
    return len(table.stream_shard.items)


def _table(ddb: Any, stream: bool = False) -> None:
    extra: dict[str, Any] = {}
    if stream:
        extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )


def _key(sk: str) -> dict[str, Any]:
    return {"pk": {"S": "c"}, "sk": {"S": sk}}


def _delete_once(token: str) -> dict[str, Any]:
    """One call as botocore sends it twice when the first answer is lost: same token, same items."""
    delete = {"TableName": TABLE, "Key": _key("a"), "ConditionExpression": "attribute_exists(pk)"}
    ledger = {"TableName": TABLE, "Key": _key("ledger"), "UpdateExpression": "ADD n :one"}
    blob = {"TableName": TABLE, "Item": {**_key("blob"), "b": {"B": b"\x00ciphertext"}}}  # moto decodes binaries
    return {
        "TransactItems": [
            {"Delete": delete},
            {"Update": {**ledger, "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Put": blob},
        ],
        "ClientRequestToken": token,
    }


@pytest.fixture
def ddb(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        _table(client, stream=True)
        client.put_item(TableName=TABLE, Item=_key("a"))
        yield client


@pytest.fixture
def patched() -> Iterator[None]:
    moto_transactions.install()
    try:
        yield
    finally:
        moto_transactions.uninstall()


def test_given_plain_moto_when_a_committed_transaction_is_retried_with_its_token_then_moto_runs_it_again(
    ddb: Any,
) -> None:
    ddb.transact_write_items(**_delete_once("one-call"))

    with pytest.raises(ClientError) as refused:
        ddb.transact_write_items(**_delete_once("one-call"))  # DynamoDB: success, no second effect

    reasons = [r.get("Code") for r in refused.value.response["CancellationReasons"]]
    assert reasons[0] == "ConditionalCheckFailed"


def test_given_botocore_when_a_transaction_is_sent_then_it_carries_a_client_request_token(ddb: Any) -> None:
    sent: list[dict[str, Any]] = []
    ddb.meta.events.register(
        "before-call.dynamodb.TransactWriteItems", lambda params, **_: sent.append(json.loads(params["body"]))
    )

    ddb.transact_write_items(TransactItems=[{"Put": {"TableName": TABLE, "Item": _key("b")}}])

    assert sent[0]["ClientRequestToken"]  # filled by botocore, and re-sent as is on its retries


def test_given_the_patch_when_a_committed_transaction_is_retried_with_its_token_then_it_succeeds_without_effect(
    ddb: Any, patched: None
) -> None:
    ddb.transact_write_items(**_delete_once("one-call"))
    ddb.transact_write_items(**_delete_once("one-call"))

    assert "Item" not in ddb.get_item(TableName=TABLE, Key=_key("a"))
    assert ddb.get_item(TableName=TABLE, Key=_key("ledger"))["Item"]["n"] == {"N": "1"}  # applied once


def test_given_the_patch_when_a_token_is_reused_with_other_items_then_dynamodb_refuses_the_mismatch(
    ddb: Any, patched: None
) -> None:
    ddb.transact_write_items(**_delete_once("one-call"))
    other = _delete_once("one-call")
    other["TransactItems"][1]["Update"]["ExpressionAttributeValues"][":one"] = {"N": "2"}

    with pytest.raises(ClientError) as refused:
        ddb.transact_write_items(**other)

    assert refused.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    assert ddb.get_item(TableName=TABLE, Key=_key("ledger"))["Item"]["n"] == {"N": "1"}


def test_given_the_patch_when_a_cancelled_transaction_is_retried_with_its_token_then_it_is_evaluated_again(
    ddb: Any, patched: None
) -> None:
    ddb.delete_item(TableName=TABLE, Key=_key("a"))
    with pytest.raises(ClientError):
        ddb.transact_write_items(**_delete_once("one-call"))  # cancelled: nothing to delete
    ddb.put_item(TableName=TABLE, Item=_key("a"))

    ddb.transact_write_items(**_delete_once("one-call"))

    assert "Item" not in ddb.get_item(TableName=TABLE, Key=_key("a"))


def test_given_the_patch_when_a_transaction_is_cancelled_then_items_and_stream_are_as_before(
    ddb: Any, patched: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends["123456789012"][REGION]
    table = backend.tables[TABLE]
    ddb.update_item(
        TableName=TABLE, Key=_key("a"), UpdateExpression="SET v = :v", ExpressionAttributeValues={":v": {"N": "1"}}
    )
    records_before = _stream_records(table)
    copied: list[str] = []
    deepcopy = copy.deepcopy

    def spy(value: Any, memo: Any = None) -> Any:
        copied.append(type(value).__name__)
        return deepcopy(value, memo)

    monkeypatch.setattr(copy, "deepcopy", spy)

    with pytest.raises(ClientError) as refused:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": _key("new")}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": _key("a"),
                        "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"N": "2"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": _key("absent"),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )

    assert [r["Code"] for r in refused.value.response["CancellationReasons"]] == [
        "None",
        "None",
        "ConditionalCheckFailed",
    ]
    assert "Item" not in ddb.get_item(TableName=TABLE, Key=_key("new"))
    assert ddb.get_item(TableName=TABLE, Key=_key("a"))["Item"]["v"] == {"N": "1"}
    assert _stream_records(table) == records_before  # no record of the cancelled writes
    assert backend.tables[TABLE] is table  # rolled back in place, not by swapping in a copy
    assert Table.__name__ not in copied  # the rollback copy holds items, never a whole table
