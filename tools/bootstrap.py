"""Create the AWS resources pii-vault needs: the DynamoDB table and the KMS key + alias.

Idempotent: a second run finds the key through its alias and the table through
DescribeTable and creates nothing. Clients are injected so the same code runs against
moto (tests, ``make dev``) and real AWS. Each resource has its own ``ensure_*`` step so
real-AWS hardening (key policy, PITR, deletion protection) can be added step by step.
"""

from __future__ import annotations

import argparse
import json
import sys

APP_TAG = {"app": "pii-vault"}
IDEMPOTENCY_SUFFIX = "-idempotency"  # the idempotency table is named after the PII table


class BootstrapError(RuntimeError):
    """An existing resource is in a state pii-vault cannot use."""


def bootstrap(kms_client, dynamodb_client, *, table_name="pii-vault", key_alias="alias/pii-vault"):
    """Ensure the key and the table exist; return their ids and ARNs."""
    key = ensure_key(kms_client, key_alias)
    table = ensure_table(dynamodb_client, table_name)
    idempotency = ensure_idempotency_table(dynamodb_client, table_name + IDEMPOTENCY_SUFFIX)
    return {
        "key_arn": key["Arn"],
        "key_id": key["KeyId"],
        "table_arn": table["TableArn"],
        "table_name": table["TableName"],
        "idempotency_table_arn": idempotency["TableArn"],
        "idempotency_table_name": idempotency["TableName"],
    }


def ensure_key(kms, alias):
    """Return the KeyMetadata behind ``alias``, creating a symmetric key if it is absent."""
    if not alias.startswith("alias/"):
        raise BootstrapError(f"key alias must start with 'alias/': {alias!r}")
    try:
        meta = kms.describe_key(KeyId=alias)["KeyMetadata"]
    except kms.exceptions.NotFoundException:
        meta = kms.create_key(
            Description="pii-vault envelope encryption (wraps per-record data keys)",
            KeySpec="SYMMETRIC_DEFAULT",
            KeyUsage="ENCRYPT_DECRYPT",
            Tags=[{"TagKey": k, "TagValue": v} for k, v in APP_TAG.items()],
        )["KeyMetadata"]
        kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
        return meta
    # An alias can outlive usefulness: refuse a key that cannot encrypt our envelopes.
    if meta.get("KeyState") != "Enabled" or meta.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
        raise BootstrapError(
            f"{alias} points to key {meta['KeyId']} in state {meta.get('KeyState')} "
            f"with spec {meta.get('KeySpec')}; expected an enabled SYMMETRIC_DEFAULT key"
        )
    return meta


_KEY_SCHEMA = [
    {"AttributeName": "pk", "KeyType": "HASH"},
    {"AttributeName": "sk", "KeyType": "RANGE"},
]


def ensure_table(dynamodb, table_name):
    """Return the table description, creating the table if absent; waits until ACTIVE."""
    try:
        table = dynamodb.describe_table(TableName=table_name)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        dynamodb.create_table(
            TableName=table_name,
            KeySchema=_KEY_SCHEMA,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            Tags=[{"Key": k, "Value": v} for k, v in APP_TAG.items()],
        )
    else:
        # Same name, other schema: the repository's keys would not fit; fail before use.
        if sorted(table["KeySchema"], key=lambda k: k["KeyType"]) != _KEY_SCHEMA:
            raise BootstrapError(
                f"table {table_name} exists with key schema {table['KeySchema']}; expected pk/sk"
            )
        if table["TableStatus"] == "ACTIVE":
            return table
    dynamodb.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    return dynamodb.describe_table(TableName=table_name)["Table"]


def ensure_idempotency_table(dynamodb, table_name):
    """The writer's Idempotency-Key records (aws-lambda-powertools layout: ``id`` key, TTL
    on ``expiration``). A table of its own, so the writer may read it without any read
    right on the PII table."""
    try:
        table = dynamodb.describe_table(TableName=table_name)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        dynamodb.create_table(
            TableName=table_name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            Tags=[{"Key": k, "Value": v} for k, v in APP_TAG.items()],
        )
        dynamodb.get_waiter("table_exists").wait(
            TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
        table = dynamodb.describe_table(TableName=table_name)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        dynamodb.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
        )
    return table


def main(argv=None):
    """``python -m tools.bootstrap``: bootstrap the account/endpoint and print the JSON
    (the shape ``tools.policies --resources`` reads)."""
    import boto3  # here, not at import time: importing this module must stay cheap
    from botocore.exceptions import BotoCoreError, ClientError

    parser = argparse.ArgumentParser(prog="python -m tools.bootstrap", description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint-url", help="e.g. http://127.0.0.1:5000 for a moto server")
    parser.add_argument("--region", help="defaults to the AWS SDK's configuration")
    parser.add_argument("--table-name", default="pii-vault")
    parser.add_argument("--key-alias", default="alias/pii-vault")
    args = parser.parse_args(argv)

    try:
        session = boto3.session.Session(region_name=args.region)
        result = bootstrap(
            session.client("kms", endpoint_url=args.endpoint_url),
            session.client("dynamodb", endpoint_url=args.endpoint_url),
            table_name=args.table_name,
            key_alias=args.key_alias,
        )
    except (BotoCoreError, ClientError, BootstrapError) as exc:
        print(f"bootstrap failed: {exc}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
