"""Per-tenant KMS keys: onboard a tenant with its own key, list and show the registry.

    python -m tools.tenants onboard --customer-id acme [--key-arn ARN] [--dry-run]
    python -m tools.tenants list
    python -m tools.tenants show --customer-id acme
    python -m tools.tenants check        # registry vs. the keys' tags: exit 1 on a mismatch

``onboard`` without ``--key-arn`` creates a symmetric key (rotation on, tagged
``pii-vault-tenant=<id>``, alias ``alias/pii-vault-tenant-<id>``) whose key policy lets the
writer Encrypt (both views) and the reader Decrypt (full view) and the masked stage Decrypt
(masked view, ``"view": "masked"``) only under the tenant's encryption context
(``infra.iam.tenant_key_policy``; role ARNs from ``--role stage=ARN``), then files it
in the registry table (``PII_VAULT_TENANTS_TABLE``). With ``--key-arn`` it registers a key
the customer owns in its own account instead (docs/tenant-keys.md: the key policy the
customer attaches). Run with the operator's credentials, never a stage's.

``check`` detects a registry edited by a table writer (e.g. a tenant downgraded to the
shared key): every key tagged with a tenant must be that tenant's registry entry.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from chalicelib.support.config import (
    DEFAULT_KEY_DELETION_DAYS,
    MAX_KEY_DELETION_DAYS,
    MIN_KEY_DELETION_DAYS,
    TENANT_KEY_TAG,
)

ALIAS_PREFIX = "alias/pii-vault-tenant-"


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _registry(ddb: Any, settings: Any) -> Any:
    from chalicelib.store.tenants import DynamoDbTenantRegistry
    from chalicelib.support.errors import ConfigurationError

    if not settings.tenants_table_name:
        raise ConfigurationError("PII_VAULT_TENANTS_TABLE must name the tenant key registry table")
    return DynamoDbTenantRegistry(ddb, settings.tenants_table_name)


def onboard(
    kms: Any,
    ddb: Any,
    settings: Any,
    customer_id: str,
    *,
    key_arn: str | None = None,
    admin_arn: str | None = None,
    roles: Mapping[str, str] | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Create (or register) the tenant's key and file it in the registry."""
    from chalicelib.keys.tenants import ACTIVE, OWNER_CUSTOMER, OWNER_VAULT, TenantKey
    from chalicelib.support.errors import ValidationError

    registry = _registry(ddb, settings)
    existing = registry.get(customer_id)
    if existing is not None:
        raise ValidationError("tenant already has its own key (see `show`)", field="customer_id")
    plan: dict[str, Any] = {"customer_id": customer_id, "dry_run": dry_run, "tag": {TENANT_KEY_TAG: customer_id}}
    if key_arn is not None:
        plan.update(owner=OWNER_CUSTOMER, key_arn=key_arn)
    else:
        plan.update(owner=OWNER_VAULT, alias=ALIAS_PREFIX + customer_id, rotation=True)
    if dry_run:
        return plan
    if key_arn is None:
        from infra.iam import tenant_key_policy

        create: dict[str, Any] = {
            "Description": f"pii-vault: data keys of tenant {customer_id} only",
            "KeySpec": "SYMMETRIC_DEFAULT",
            "KeyUsage": "ENCRYPT_DECRYPT",
            "Tags": [{"TagKey": TENANT_KEY_TAG, "TagValue": customer_id}, {"TagKey": "app", "TagValue": "pii-vault"}],
        }
        if admin_arn:
            create["Policy"] = json.dumps(tenant_key_policy(admin_arn, customer_id, roles or {}))
        metadata = kms.create_key(**create)["KeyMetadata"]
        kms.enable_key_rotation(KeyId=metadata["KeyId"])
        kms.create_alias(AliasName=ALIAS_PREFIX + customer_id, TargetKeyId=metadata["KeyId"])
        key_arn = str(metadata["Arn"])
    else:
        # A customer-owned key must carry the tag too: the stages' IAM policies reach keys by it.
        tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_arn).get("Tags", [])}
        if tags.get(TENANT_KEY_TAG) != customer_id:
            raise ValidationError(f"the customer's key must be tagged {TENANT_KEY_TAG}=<customer id>", field="key_arn")
    registry.put(TenantKey(customer_id, key_arn, plan["owner"], ACTIVE), _now())
    return {**plan, "key_arn": key_arn}


def shred(
    kms: Any, ddb: Any, settings: Any, customer_id: str, *, days: int | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """Crypto-shredding: ScheduleKeyDeletion of the tenant's own key; the registry says "shredded".

    Refused while a strongly consistent query still finds an item of the tenant in the table
    (``settings.table_name``): the offboarding's reports are no proof (a forged checkpoint
    says ``done`` as well as a real one)."""
    from chalicelib.keys.tenants import OWNER_VAULT, SHREDDED, TenantKey
    from chalicelib.support.errors import ValidationError

    days = DEFAULT_KEY_DELETION_DAYS if days is None else days
    if not MIN_KEY_DELETION_DAYS <= days <= MAX_KEY_DELETION_DAYS:
        raise ValidationError(
            f"deletion days must be from {MIN_KEY_DELETION_DAYS} to {MAX_KEY_DELETION_DAYS}", field="deletion_days"
        )
    registry = _registry(ddb, settings)
    entry = registry.get(customer_id)
    if entry is None:
        return {"shredded": False, "reason": "tenant uses the shared key: nothing to shred"}
    if entry.owner != OWNER_VAULT:
        return {"shredded": False, "reason": "the customer owns the key: the customer schedules its deletion"}
    from chalicelib.store.job_items import DynamoDbTenantItems

    # The irreversible step goes by a fresh query, never by a job's (forgeable) checkpoints.
    if DynamoDbTenantItems(ddb, settings.table_name).holds_items(customer_id):
        return {"shredded": False, "done": False, "reason": "items of the tenant remain: offboard it first"}
    if dry_run:
        return {"shredded": False, "would_schedule_deletion_days": days, "key_arn": entry.key_arn}
    registry.put(TenantKey(customer_id, entry.key_arn, entry.owner, SHREDDED), _now())
    key_id = kms.describe_key(KeyId=entry.key_arn)["KeyMetadata"]["KeyId"]
    response = kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=days)
    return {"shredded": True, "key_arn": entry.key_arn, "deletion_date": str(response.get("DeletionDate", ""))}


def check(kms: Any, ddb: Any, settings: Any) -> list[str]:
    """Mismatches between tenant-tagged keys and the registry (empty: consistent)."""
    registry = {t.customer_id: t for t in _registry(ddb, settings).scan()}
    problems: list[str] = []
    tagged: dict[str, str] = {}
    for page in kms.get_paginator("list_keys").paginate():
        for key in page["Keys"]:
            tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key["KeyId"]).get("Tags", [])}
            if TENANT_KEY_TAG in tags:
                tagged[kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Arn"]] = tags[TENANT_KEY_TAG]
    for arn, customer_id in sorted(tagged.items()):
        entry = registry.get(customer_id)
        if entry is None:
            problems.append(f"key {arn} is tagged for tenant {customer_id}, which the registry does not list")
        elif entry.key_arn != arn and entry.owner != "customer":
            problems.append(f"tenant {customer_id}: registry names another key than the one tagged for it")
    for customer_id, entry in sorted(registry.items()):
        if entry.owner != "customer" and entry.key_arn not in tagged:
            problems.append(f"tenant {customer_id}: registry key is not tagged for it")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.tenants", description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint-url", help="e.g. http://127.0.0.1:5000 (the local stack's moto)")
    sub = parser.add_subparsers(dest="command", required=True)
    on = sub.add_parser("onboard", help="give one tenant its own KMS key")
    on.add_argument("--customer-id", required=True)
    on.add_argument("--key-arn", help="register a customer-owned key (another account) instead of creating one")
    on.add_argument("--admin-arn", help="key administrator; with --role, installs the tenant key policy")
    on.add_argument(
        "--role", action="append", default=[], metavar="STAGE=ARN", help="writer/reader/indexer/masked/rewrap"
    )
    on.add_argument("--dry-run", action="store_true")
    sub.add_parser("list", help="every tenant with its own key")
    show = sub.add_parser("show", help="one tenant's registry entry")
    show.add_argument("--customer-id", required=True)
    sub.add_parser("check", help="compare the registry with the keys' tenant tags")
    args = parser.parse_args(argv)

    import boto3

    from chalicelib.domain import validation
    from chalicelib.stages.registry import operator_settings
    from chalicelib.support.errors import PiiVaultError

    settings = operator_settings()
    session = boto3.session.Session(region_name=settings.region)
    kms = session.client("kms", endpoint_url=args.endpoint_url)
    ddb = session.client("dynamodb", endpoint_url=args.endpoint_url)
    try:
        if args.command == "onboard":
            roles = dict(item.split("=", 1) for item in args.role)
            out: Any = onboard(
                kms,
                ddb,
                settings,
                validation.customer_id(args.customer_id),
                key_arn=args.key_arn,
                admin_arn=args.admin_arn,
                roles=roles,
                dry_run=args.dry_run,
            )
        elif args.command == "list":
            out = [vars(t) for t in _registry(ddb, settings).scan()]
        elif args.command == "show":
            found = _registry(ddb, settings).get(validation.customer_id(args.customer_id))
            out = None if found is None else vars(found)
        else:
            out = check(kms, ddb, settings)
            json.dump(out, sys.stdout, indent=2)
            sys.stdout.write("\n")
            return 1 if out else 0
    except PiiVaultError as exc:
        print(f"tools.tenants: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
