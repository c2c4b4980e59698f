"""Create the resources pii-vault needs on moto: the DynamoDB tables and the KMS key + alias.

For the local stack (``make dev``), the tests and the benchmark only. A real account gets
its key, tables and roles from the CloudFormation templates ``make package`` writes
(``tools/stacks.py``, README "Deploying"); the table key schemas here come from the same
description (``tools.stacks``). Hardened the same way as the templates:

- KMS: symmetric key, automatic rotation on, and (when an admin is known, which the
  CLI always resolves) an explicit key policy that grants administration to that admin
  only: no ``*``, no account root, no cryptographic use. The writer and reader role
  statements are added by whoever deploys roles against this key (the templates do it in one pass).
- DynamoDB: on demand, point-in-time recovery, deletion protection. Encryption at rest
  uses the AWS owned key (no ``SSESpecification``): every PII attribute is already
  sealed under our key, and table SSE under our key would need a key policy statement
  for DynamoDB with ``Principal: *`` (kms:ViaService), which this key policy refuses.

Idempotent: a second run finds the key through its alias and the table through
DescribeTable, checks each setting and changes nothing that is already right (the
``changes`` list says what it did). An existing key policy that holds our admin
statement is left alone, so a tightened policy survives later bootstrap runs.

    python -m tools.bootstrap --endpoint-url http://127.0.0.1:5000   # prints the ARNs; writes nothing
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from chalicelib.support.config import FLEET_TABLE_SUFFIX, IDEMPOTENCY_SUFFIX
from tools.policies import KEY_POLICY_ADMIN_SID, key_policy, render
from tools.stacks import (
    IDEMPOTENCY_ATTRIBUTES,
    IDEMPOTENCY_KEY_SCHEMA,
    IDEMPOTENCY_TTL_ATTRIBUTE,
    TABLE_ATTRIBUTES,
    TABLE_KEY_SCHEMA,
)

APP_TAG = {"app": "pii-vault"}


class BootstrapError(RuntimeError):
    """An existing resource is in a state pii-vault cannot use."""


def bootstrap(
    kms_client: Any,
    dynamodb_client: Any,
    *,
    table_name: str = "pii-vault",
    key_alias: str = "alias/pii-vault",
    admin_arn: str | None = None,
    changes: list[str] | None = None,
) -> dict[str, str]:
    """Ensure the key and the table exist, hardened; return their ids and ARNs.

    ``admin_arn`` (an IAM role/user ARN) gets an explicit admin-only key policy on a new
    key, or on an existing key whose policy lacks our admin statement. ``changes``, if
    given, receives one line per change made (empty on a run that found everything right).
    """
    changes = [] if changes is None else changes
    key = ensure_key(kms_client, key_alias, admin_arn=admin_arn, changes=changes)
    table = ensure_table(dynamodb_client, table_name, changes=changes)
    idempotency = ensure_idempotency_table(dynamodb_client, table_name + IDEMPOTENCY_SUFFIX, changes=changes)
    fleet_key = ensure_fleet_mac_key(kms_client, FLEET_MAC_KEY_ALIAS, changes=changes)
    fleet_table = ensure_fleet_table(dynamodb_client, table_name + FLEET_TABLE_SUFFIX, changes=changes)
    result: dict[str, str] = {
        "key_arn": key["Arn"],
        "key_id": key["KeyId"],
        "table_arn": table["TableArn"],
        "table_name": table["TableName"],
        "idempotency_table_arn": idempotency["TableArn"],
        "idempotency_table_name": idempotency["TableName"],
        "fleet_mac_key_arn": fleet_key["Arn"],
        "fleet_table_arn": fleet_table["TableArn"],
        "fleet_table_name": fleet_table["TableName"],
    }
    from tools.findforget import ensure_lookup_resources

    result.update(ensure_lookup_resources(kms_client, dynamodb_client, table["TableName"], changes=changes))
    if admin_arn is not None:
        result["admin_arn"] = admin_arn
    return result


def ensure_key(
    kms: Any, alias: str, *, admin_arn: str | None = None, changes: list[str] | None = None
) -> dict[str, Any]:
    """Return the KeyMetadata behind ``alias``, creating a symmetric key if it is absent;
    rotation enabled, and the admin-only key policy when ``admin_arn`` is given."""
    changes = [] if changes is None else changes
    if not alias.startswith("alias/"):
        raise BootstrapError(f"key alias must start with 'alias/': {alias!r}")
    policy = render(key_policy(admin_arn)) if admin_arn is not None else None
    try:
        meta: dict[str, Any] = kms.describe_key(KeyId=alias)["KeyMetadata"]
    except kms.exceptions.NotFoundException:
        extra = {"Policy": policy} if policy is not None else {}
        meta = kms.create_key(
            Description="pii-vault envelope encryption (wraps per-record data keys)",
            KeySpec="SYMMETRIC_DEFAULT",
            KeyUsage="ENCRYPT_DECRYPT",
            Tags=[{"TagKey": k, "TagValue": v} for k, v in APP_TAG.items()],
            **extra,
        )["KeyMetadata"]
        kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
        changes.append(
            f"created key {meta['Arn']} with alias {alias}" + (" and the admin-only key policy" if policy else "")
        )
    else:
        # An alias can outlive usefulness: refuse a key that cannot encrypt our envelopes.
        if meta.get("KeyState") != "Enabled" or meta.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
            raise BootstrapError(
                f"{alias} points to key {meta['KeyId']} in state {meta.get('KeyState')} "
                f"with spec {meta.get('KeySpec')}; expected an enabled SYMMETRIC_DEFAULT key"
            )
        if policy is not None:
            current = kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"]
            if not _has_admin_statement(current, admin_arn):
                kms.put_key_policy(KeyId=meta["KeyId"], PolicyName="default", Policy=policy)
                changes.append(f"replaced the key policy of {meta['Arn']} with the admin-only policy")
    if not kms.get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"]:
        kms.enable_key_rotation(KeyId=meta["KeyId"])
        changes.append(f"enabled automatic rotation of {meta['Arn']}")
    return meta


def _has_admin_statement(policy_text: str, admin_arn: str | None) -> bool:
    """True if the policy is ours (admin statement for ``admin_arn``) and grants nothing to ``*``."""
    try:
        statements = json.loads(policy_text).get("Statement", [])
    except (ValueError, AttributeError):
        return False
    ours = any(s.get("Sid") == KEY_POLICY_ADMIN_SID and s.get("Principal") == {"AWS": admin_arn} for s in statements)
    return ours and not any(_grants_everyone(s) for s in statements)


def _grants_everyone(statement: dict[str, Any]) -> bool:
    principal = statement.get("Principal")
    if principal == "*":
        return True
    values = principal.get("AWS", []) if isinstance(principal, dict) else []
    values = [values] if isinstance(values, str) else values
    return statement.get("Effect") == "Allow" and ("*" in values or any(v.endswith(":root") for v in values))


_KEY_SCHEMA = TABLE_KEY_SCHEMA


def ensure_table(dynamodb: Any, table_name: str, *, changes: list[str] | None = None) -> dict[str, Any]:
    """Return the table description, creating the table if absent; waits until ACTIVE;
    deletion protection and point-in-time recovery on."""
    changes = [] if changes is None else changes
    table = _active_table(dynamodb, table_name, changes)
    if not table.get("DeletionProtectionEnabled"):
        dynamodb.update_table(TableName=table_name, DeletionProtectionEnabled=True)
        changes.append(f"enabled deletion protection on {table_name}")
        table = _wait_active(dynamodb, table_name)
    backups = dynamodb.describe_continuous_backups(TableName=table_name)["ContinuousBackupsDescription"]
    pitr = backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
    if pitr != "ENABLED":
        dynamodb.update_continuous_backups(
            TableName=table_name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
        changes.append(f"enabled point-in-time recovery on {table_name}")
    return table


def _active_table(dynamodb: Any, table_name: str, changes: list[str]) -> dict[str, Any]:
    try:
        table: dict[str, Any] = dynamodb.describe_table(TableName=table_name)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        dynamodb.create_table(
            TableName=table_name,
            KeySchema=_KEY_SCHEMA,
            AttributeDefinitions=TABLE_ATTRIBUTES,
            BillingMode="PAY_PER_REQUEST",
            DeletionProtectionEnabled=True,
            # No SSESpecification: the AWS owned key (see the module docstring for why).
            Tags=[{"Key": k, "Value": v} for k, v in APP_TAG.items()],
        )
        changes.append(f"created table {table_name}")
    else:
        # Same name, other schema: the repository's keys would not fit; fail before use.
        if sorted(table["KeySchema"], key=lambda k: k["KeyType"]) != _KEY_SCHEMA:
            raise BootstrapError(f"table {table_name} exists with key schema {table['KeySchema']}; expected pk/sk")
        if table["TableStatus"] == "ACTIVE":
            return table
    return _wait_active(dynamodb, table_name)


def _wait_active(dynamodb: Any, table_name: str) -> dict[str, Any]:
    dynamodb.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    table: dict[str, Any] = dynamodb.describe_table(TableName=table_name)["Table"]
    return table


def ensure_idempotency_table(dynamodb: Any, table_name: str, *, changes: list[str] | None = None) -> dict[str, Any]:
    """The writer's Idempotency-Key records (aws-lambda-powertools layout: ``id`` key, TTL
    on ``expiration``). A table of its own, so the writer may read it without any read
    right on the PII table."""
    changes = [] if changes is None else changes
    try:
        table: dict[str, Any] = dynamodb.describe_table(TableName=table_name)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        dynamodb.create_table(
            TableName=table_name,
            KeySchema=IDEMPOTENCY_KEY_SCHEMA,
            AttributeDefinitions=IDEMPOTENCY_ATTRIBUTES,
            BillingMode="PAY_PER_REQUEST",
            Tags=[{"Key": k, "Value": v} for k, v in APP_TAG.items()],
        )
        changes.append(f"created table {table_name}")
        dynamodb.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        table = dynamodb.describe_table(TableName=table_name)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        dynamodb.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": IDEMPOTENCY_TTL_ATTRIBUTE},
        )
        changes.append(f"enabled TTL on {table_name}.{IDEMPOTENCY_TTL_ATTRIBUTE}")
    return table


def admin_from_caller(caller_arn: str) -> str:
    """The IAM principal behind ``sts:GetCallerIdentity``: an assumed-role session maps to
    its role (without a path; pass ``--admin-arn`` for roles with paths)."""
    parts = caller_arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role = parts[5].split("/")[1]
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{role}"
    if len(parts) == 6 and parts[2] == "iam" and parts[5].startswith(("user/", "role/")):
        return caller_arn
    raise BootstrapError(f"cannot use {caller_arn} as the key administrator (root or federated?); pass --admin-arn")


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.bootstrap``: bootstrap the endpoint (moto) and print the JSON.
    It writes no file: account-specific ARNs never go into the checkout."""
    import boto3  # here, not at import time: importing this module must stay cheap
    from botocore.exceptions import BotoCoreError, ClientError

    parser = argparse.ArgumentParser(prog="python -m tools.bootstrap", description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint-url", help="e.g. http://127.0.0.1:5000 for a moto server")
    parser.add_argument("--region", help="defaults to the AWS SDK's configuration")
    parser.add_argument("--table-name", default="pii-vault")
    parser.add_argument("--key-alias", default="alias/pii-vault")
    parser.add_argument("--admin-arn", help="key administrator (IAM role/user ARN); default: the caller")
    args = parser.parse_args(argv)

    changes: list[str] = []
    try:
        session = boto3.session.Session(region_name=args.region)
        admin = args.admin_arn or admin_from_caller(
            session.client("sts", endpoint_url=args.endpoint_url).get_caller_identity()["Arn"]
        )
        result = bootstrap(
            session.client("kms", endpoint_url=args.endpoint_url),
            session.client("dynamodb", endpoint_url=args.endpoint_url),
            table_name=args.table_name,
            key_alias=args.key_alias,
            admin_arn=admin,
            changes=changes,
        )
    except (BotoCoreError, ClientError, BootstrapError, ValueError, OSError) as exc:
        print(f"bootstrap failed: {exc}", file=sys.stderr)
        return 1
    for line in changes or ["nothing to change"]:
        print(f"bootstrap: {line}", file=sys.stderr)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


# The reader fleet's key table and the HMAC key deriving its sealing keys (chalicelib/keys/fleet.py).
FLEET_MAC_KEY_ALIAS = "alias/pii-vault-fleet"


def ensure_fleet_mac_key(kms: Any, alias: str, *, changes: list[str] | None = None) -> dict[str, Any]:
    """An HMAC_256 key (GenerateMac only) behind ``alias``; HMAC keys have no automatic rotation."""
    changes = [] if changes is None else changes
    try:
        existing: dict[str, Any] = kms.describe_key(KeyId=alias)["KeyMetadata"]
        return existing
    except kms.exceptions.NotFoundException:
        pass
    meta: dict[str, Any] = kms.create_key(
        KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC", Description="pii-vault reader fleet key table"
    )["KeyMetadata"]
    kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
    changes.append(f"created HMAC key {alias}")
    return meta


def ensure_fleet_table(ddb: Any, name: str, *, changes: list[str] | None = None) -> dict[str, Any]:
    """The fleet key table: on demand, TTL on; deliberately no point-in-time recovery."""
    from chalicelib.store.fleet_table import TTL, table_definition

    changes = [] if changes is None else changes
    try:
        existing: dict[str, Any] = ddb.describe_table(TableName=name)["Table"]
        return existing
    except ddb.exceptions.ResourceNotFoundException:
        pass
    table: dict[str, Any] = ddb.create_table(**table_definition(name))["TableDescription"]
    ddb.get_waiter("table_exists").wait(TableName=name)
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL})
    changes.append(f"created table {name}")
    return table


# The tenant key registry (chalicelib/keys/tenants.py): customer id -> own KMS key.
def ensure_tenants_table(ddb: Any, name: str, *, changes: list[str] | None = None) -> dict[str, Any]:
    """On demand, point-in-time recovery on (the registry decides which key shreds a tenant)."""
    from chalicelib.store import layout

    try:
        return dict(ddb.describe_table(TableName=name)["Table"])
    except ddb.exceptions.ResourceNotFoundException:
        pass
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": layout.TENANT_PK, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": layout.TENANT_PK, "AttributeType": "S"}],
        Tags=[{"Key": "app", "Value": "pii-vault"}],
    )
    ddb.get_waiter("table_exists").wait(TableName=name)
    if changes is not None:
        changes.append(f"created table {name}")
    return dict(ddb.describe_table(TableName=name)["Table"])


if __name__ == "__main__":
    sys.exit(main())
