"""The tables and keys of a local environment, created on moto from the same specs as the
base stack (``infra.specs``): the local stack (``make dev``), the tests and the benchmark.

Hardened as the template declares: symmetric keys rotate; with an admin, every key gets the
admin-only key policy (no ``*``, no account root, no cryptographic use; the stage roles'
statements are added by whoever deploys roles against it); tables are on demand, with the
spec's stream, indexes, TTL, point-in-time recovery and deletion protection, and the AWS
owned key at rest (no ``SSESpecification``: see ``infra.cfn.TYPE_SKIPS``).

Idempotent: a second run finds each key through its alias and each table through
DescribeTable, checks each setting and changes nothing that is already right (``changes``
says what it did). An existing key policy that holds our admin statement is left alone, so a
tightened policy survives later runs. A key or table that cannot be used is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from infra.arns import AccountArns
from infra.cfn import APP, render
from infra.iam import KEY_POLICY_ADMIN_SID, key_policy
from infra.specs import KEYS, TABLES, KeySpec, TableSpec

APP_TAG = {"app": APP}


class BootstrapError(RuntimeError):
    """An existing resource is in a state pii-vault cannot use."""


def bootstrap(
    kms: Any,
    dynamodb: Any,
    *,
    base: str = APP,
    admin_arn: str | None = None,
    changes: list[str] | None = None,
) -> dict[str, str]:
    """Ensure every key (``alias/<base><suffix>``) and table (``<base><suffix>``); return their
    ids, names and ARNs (``<label>_arn``, ``<label>_id`` / ``<label>_name``, ``stream_arn``)."""
    changes = [] if changes is None else changes
    result: dict[str, str] = {}
    for key in KEYS.values():
        meta = ensure_key(kms, key, key.alias(base), admin_arn=admin_arn, changes=changes)
        result.update({f"{key.label}_arn": meta["Arn"], f"{key.label}_id": meta["KeyId"]})
    for spec in TABLES.values():
        table = ensure_table(dynamodb, spec, spec.name(base), changes=changes)
        result.update({f"{spec.label}_arn": table["TableArn"], f"{spec.label}_name": table["TableName"]})
        if spec.stream is not None:
            result["stream_arn"] = table["LatestStreamArn"]
    if admin_arn is not None:
        result["admin_arn"] = admin_arn
    return result


def bootstrapped_arns(resources: Mapping[str, str], *, functions: str = APP) -> AccountArns:
    """The ARNs of a bootstrapped environment (``bootstrap``'s result), for ``infra.iam.stage_policy``."""
    keys = {spec.key: resources[f"{spec.label}_arn"] for spec in KEYS.values() if f"{spec.label}_arn" in resources}
    tables = {t: resources[f"{spec.label}_arn"] for t, spec in TABLES.items() if f"{spec.label}_arn" in resources}
    return AccountArns(keys, tables, functions=functions)


def ensure_key(
    kms: Any, spec: KeySpec, alias: str, *, admin_arn: str | None = None, changes: list[str]
) -> dict[str, Any]:
    """The KeyMetadata behind ``alias``, creating the key if it is absent."""
    if not alias.startswith("alias/"):
        raise BootstrapError(f"key alias must start with 'alias/': {alias!r}")
    policy = render(key_policy(spec.key, admin_arn)) if admin_arn is not None else None
    try:
        meta: dict[str, Any] = kms.describe_key(KeyId=alias)["KeyMetadata"]
    except kms.exceptions.NotFoundException:
        extra = {"Policy": policy} if policy is not None else {}
        meta = kms.create_key(
            Description=f"{APP}: {spec.purpose}",
            KeySpec=spec.spec,
            KeyUsage=spec.usage,
            Tags=[{"TagKey": k, "TagValue": v} for k, v in APP_TAG.items()],
            **extra,
        )["KeyMetadata"]
        kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
        changes.append(
            f"created key {meta['Arn']} with alias {alias}" + (" and the admin-only key policy" if policy else "")
        )
    else:
        # An alias can outlive usefulness: refuse a key that cannot do this key's job.
        if meta.get("KeyState") != "Enabled" or meta.get("KeySpec", "SYMMETRIC_DEFAULT") != spec.spec:
            raise BootstrapError(
                f"{alias} points to key {meta['KeyId']} in state {meta.get('KeyState')} "
                f"with spec {meta.get('KeySpec')}; expected an enabled {spec.spec} key"
            )
        if policy is not None:
            current = kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"]
            if not _has_admin_statement(current, admin_arn):
                kms.put_key_policy(KeyId=meta["KeyId"], PolicyName="default", Policy=policy)
                changes.append(f"replaced the key policy of {meta['Arn']} with the admin-only policy")
    if spec.rotates and not kms.get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"]:
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


def create_table_arguments(spec: TableSpec, name: str) -> dict[str, Any]:
    """CreateTable's arguments for the spec (the stream and indexes included)."""
    arguments: dict[str, Any] = {
        "TableName": name,
        "KeySchema": spec.key_schema(),
        "AttributeDefinitions": spec.attribute_definitions(),
        "BillingMode": "PAY_PER_REQUEST",
        "DeletionProtectionEnabled": spec.protected,
        "Tags": [{"Key": k, "Value": v} for k, v in APP_TAG.items()],
    }
    if spec.indexes:
        arguments["GlobalSecondaryIndexes"] = [index.definition() for index in spec.indexes]
    if spec.stream is not None:
        arguments["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": spec.stream}
    return arguments


def ensure_table(dynamodb: Any, spec: TableSpec, name: str, *, changes: list[str]) -> dict[str, Any]:
    """The table's description, creating it if absent (waits until ACTIVE), each setting fixed."""
    try:
        table: dict[str, Any] = dynamodb.describe_table(TableName=name)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        dynamodb.create_table(**create_table_arguments(spec, name))
        changes.append(f"created table {name}")
        table = _wait(dynamodb, name)
    else:
        # Same name, other schema: the code's keys would not fit; fail before use.
        if sorted(table["KeySchema"], key=lambda k: k["KeyType"]) != spec.key_schema():
            raise BootstrapError(
                f"table {name} exists with key schema {table['KeySchema']}; expected {spec.key_schema()}"
            )
        ensure_stream(dynamodb, spec, name, changes)
        _ensure_indexes(dynamodb, spec, name, table, changes)
        if spec.protected and not table.get("DeletionProtectionEnabled"):
            dynamodb.update_table(TableName=name, DeletionProtectionEnabled=True)
            changes.append(f"enabled deletion protection on {name}")
        table = _wait(dynamodb, name)
    if spec.backups:
        backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        if backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus") != "ENABLED":
            dynamodb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
            changes.append(f"enabled point-in-time recovery on {name}")
    if spec.ttl is not None:
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl}
            )
            changes.append(f"enabled TTL on {name}.{spec.ttl}")
    return table


def ensure_stream(dynamodb: Any, spec: TableSpec, name: str, changes: list[str]) -> None:
    """The spec's stream view on an existing table. A stream's view type cannot change in place
    (a table made when the stream carried whole images): disable it, then enable the new one."""
    if spec.stream is None:
        return
    current = dynamodb.describe_table(TableName=name)["Table"].get("StreamSpecification") or {}
    if current.get("StreamEnabled") and current.get("StreamViewType") == spec.stream:
        return
    if current.get("StreamEnabled"):
        dynamodb.update_table(TableName=name, StreamSpecification={"StreamEnabled": False})
        changes.append(f"disabled the {current.get('StreamViewType')} stream on {name}")
        _wait(dynamodb, name)
    dynamodb.update_table(TableName=name, StreamSpecification={"StreamEnabled": True, "StreamViewType": spec.stream})
    changes.append(f"enabled the {spec.stream} stream on {name}")
    _wait(dynamodb, name)


def _ensure_indexes(dynamodb: Any, spec: TableSpec, name: str, table: dict[str, Any], changes: list[str]) -> None:
    existing = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
    for index in spec.indexes:
        if index.name in existing:
            continue
        dynamodb.update_table(
            TableName=name,
            # The table's own key attributes listed too: moto replaces the list instead of merging it.
            AttributeDefinitions=spec.attribute_definitions(),
            GlobalSecondaryIndexUpdates=[{"Create": index.definition()}],
        )
        changes.append(f"created GSI {index.name} on {name}")
        _wait(dynamodb, name)


def _wait(dynamodb: Any, name: str) -> dict[str, Any]:
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    table: dict[str, Any] = dynamodb.describe_table(TableName=name)["Table"]
    return table
