"""Resources of lookup and erasure, ensured by ``tools.bootstrap`` (idempotent, hardened):

- the beacon key: a KMS ``HMAC_256`` key (``GENERATE_VERIFY_MAC``) behind
  ``alias/pii-vault-beacon``; HMAC keys have no automatic rotation (a new key + the
  backfill job, see the README);
- on the PII table: a stream (``KEYS_ONLY``, feeding the indexer, which reads each changed
  person's email attributes by projection) and the
  sparse ``beacon-index`` GSI (``pk`` + ``beacon``, keys only);
- the erasure ledger table (PITR and deletion protection: it must outlive restores of
  the PII table) and the jobs' checkpoint table.
"""

from __future__ import annotations

from typing import Any

from chalicelib.store import layout
from chalicelib.support.config import DEFAULT_BEACON_KEY_ID, JOBS_SUFFIX, LEDGER_SUFFIX

APP_TAG = {"app": "pii-vault"}
STREAM_VIEW = "KEYS_ONLY"


def ensure_lookup_resources(
    kms: Any, dynamodb: Any, table_name: str, *, beacon_alias: str = DEFAULT_BEACON_KEY_ID, changes: list[str]
) -> dict[str, str]:
    key = ensure_beacon_key(kms, beacon_alias, changes)
    stream_arn = ensure_stream_and_index(dynamodb, table_name, changes)
    ledger = ensure_table(
        dynamodb,
        table_name + LEDGER_SUFFIX,
        [(layout.LEDGER_PK, "HASH"), (layout.LEDGER_SK, "RANGE")],
        {layout.LEDGER_PK: "S", layout.LEDGER_SK: "S"},
        changes,
        protect=True,
    )
    jobs = ensure_table(
        dynamodb,
        table_name + JOBS_SUFFIX,
        [(layout.JOB_PK, "HASH"), (layout.JOB_SK, "RANGE")],
        {layout.JOB_PK: "S", layout.JOB_SK: "N"},
        changes,
        protect=False,
    )
    return {
        "beacon_key_arn": key["Arn"],
        "beacon_key_id": key["KeyId"],
        "stream_arn": stream_arn,
        "ledger_table_arn": ledger["TableArn"],
        "ledger_table_name": ledger["TableName"],
        "jobs_table_arn": jobs["TableArn"],
        "jobs_table_name": jobs["TableName"],
    }


def ensure_beacon_key(kms: Any, alias: str, changes: list[str]) -> dict[str, Any]:
    try:
        meta: dict[str, Any] = kms.describe_key(KeyId=alias)["KeyMetadata"]
    except kms.exceptions.NotFoundException:
        meta = kms.create_key(
            Description="pii-vault email beacons (GenerateMac of the beacon root)",
            KeySpec="HMAC_256",
            KeyUsage="GENERATE_VERIFY_MAC",
            Tags=[{"TagKey": k, "TagValue": v} for k, v in APP_TAG.items()],
        )["KeyMetadata"]
        kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
        changes.append(f"created HMAC key {meta['Arn']} with alias {alias}")
    if meta.get("KeySpec") != "HMAC_256" or meta.get("KeyState") != "Enabled":
        raise RuntimeError(f"{alias} must be an enabled HMAC_256 key")
    return meta


def ensure_stream_and_index(dynamodb: Any, table_name: str, changes: list[str]) -> str:
    table = dynamodb.describe_table(TableName=table_name)["Table"]
    spec = table.get("StreamSpecification") or {}
    if not spec.get("StreamEnabled") or spec.get("StreamViewType") != STREAM_VIEW:
        if spec.get("StreamEnabled"):
            # A stream's view type cannot change in place (a table made when the stream carried
            # whole images): disable it, then enable the new one (a new stream ARN).
            dynamodb.update_table(TableName=table_name, StreamSpecification={"StreamEnabled": False})
            changes.append(f"disabled the {spec.get('StreamViewType')} stream on {table_name}")
            _wait(dynamodb, table_name)
        dynamodb.update_table(
            TableName=table_name, StreamSpecification={"StreamEnabled": True, "StreamViewType": STREAM_VIEW}
        )
        changes.append(f"enabled the {STREAM_VIEW} stream on {table_name}")
        _wait(dynamodb, table_name)
    table = dynamodb.describe_table(TableName=table_name)["Table"]
    if not any(i["IndexName"] == layout.BEACON_INDEX for i in table.get("GlobalSecondaryIndexes", [])):
        dynamodb.update_table(
            TableName=table_name,
            # The table's own key attributes listed too: moto replaces the list instead of merging it.
            AttributeDefinitions=[
                {"AttributeName": layout.PK, "AttributeType": "S"},
                {"AttributeName": layout.SK, "AttributeType": "S"},
                {"AttributeName": layout.BEACON, "AttributeType": "B"},
            ],
            GlobalSecondaryIndexUpdates=[
                {
                    "Create": {
                        "IndexName": layout.BEACON_INDEX,
                        "KeySchema": [
                            {"AttributeName": layout.PK, "KeyType": "HASH"},
                            {"AttributeName": layout.BEACON, "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "KEYS_ONLY"},
                    }
                }
            ],
        )
        changes.append(f"created GSI {layout.BEACON_INDEX} on {table_name}")
        _wait(dynamodb, table_name)
        table = dynamodb.describe_table(TableName=table_name)["Table"]
    arn: str = table["LatestStreamArn"]
    return arn


def ensure_table(
    dynamodb: Any, name: str, keys: list[tuple[str, str]], types: dict[str, str], changes: list[str], *, protect: bool
) -> dict[str, Any]:
    try:
        table: dict[str, Any] = dynamodb.describe_table(TableName=name)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": n, "KeyType": t} for n, t in keys],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in types.items()],
            BillingMode="PAY_PER_REQUEST",
            DeletionProtectionEnabled=protect,
            Tags=[{"Key": k, "Value": v} for k, v in APP_TAG.items()],
        )
        changes.append(f"created table {name}")
        table = _wait(dynamodb, name)
    if protect:
        backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        if backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus") != "ENABLED":
            dynamodb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
            changes.append(f"enabled point-in-time recovery on {name}")
    return table


def _wait(dynamodb: Any, name: str) -> dict[str, Any]:
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    table: dict[str, Any] = dynamodb.describe_table(TableName=name)["Table"]
    return table
