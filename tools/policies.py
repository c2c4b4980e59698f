"""Generate the writer and reader IAM identity policies from two ARNs.

Why generated: the two roles must stay least-privilege (the writer encrypts and
writes, the reader decrypts and reads), scoped to one key and one table, with the
KMS encryption context enforced. Hand-edited JSON drifts; ``--check`` is the CI
gate that the committed ``.chalice/policy-*.json`` match this code.

    python -m tools.policies [--resources .chalice/resources.json] [--check]
    python -m tools.policies --key-policy [--apply]   # after both `chalice deploy`s

``--key-policy`` prints the KMS key policy for the key in the resources file: the
admin from that file (written by ``tools.bootstrap``), the writer and reader role ARNs
from ``deployed/<stage>.json`` beside the resources file (``chalice deploy`` writes
``.chalice/deployed/<stage>.json``), else the
``pii-vault-<stage>-api_handler`` role both deployment paths create, unless given;
``--apply`` installs it with ``kms:PutKeyPolicy``. ``--fleet-key-policy`` does the same for
the reader fleet's HMAC key (``fleet_mac_key_arn`` in the resources file): admin and reader only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chalicelib.api.functions import FUNCTIONS as JOB_FUNCTIONS
from chalicelib.api.functions import OFFBOARD_FUNCTION
from chalicelib.envelope.format import (
    FULL_VIEW,
    KIND_MASKED_POOL,
    KIND_MASKED_TENANT,
    KIND_POOL,
    KIND_TENANT,
    MASKED_VIEW,
    VIEW_KEY,
    encryption_context,
)
from chalicelib.service.rewrap import REWRAP_WRITE_ATTRIBUTES as REWRAP_ATTRIBUTES
from chalicelib.store.layout import INDEXER_READ_ATTRIBUTES, MASKED_VIEW_ATTRIBUTES
from chalicelib.support.config import (
    FLEET_TABLE_SUFFIX,
    IDEMPOTENCY_SUFFIX,
    JOBS_SUFFIX,
    LEDGER_SUFFIX,
    TENANT_KEY_TAG,
    TENANTS_SUFFIX,
)
from tools.generated import write_or_check

APP_NAME = "pii-vault"
POLICY_FILES = {"writer": "policy-writer.json", "reader": "policy-reader.json", "masked": "policy-masked.json"}
# The two KMS encryption contexts a data key is wrapped under (chalicelib.envelope.format, format v2):
# the tenant's {"app", "customer_id"} and the writer pool's {"app", "scope": "pool"}.
# Taken from the code that builds them, so policy and code cannot drift apart.
_TENANT_CONTEXT = encryption_context(APP_NAME, "tenant", KIND_TENANT)
_POOL_CONTEXT = encryption_context(APP_NAME, "tenant", KIND_POOL)
ENCRYPTION_CONTEXT_KEYS = tuple(sorted(_TENANT_CONTEXT))  # ("app", "customer_id")
POOL_CONTEXT_KEYS = tuple(sorted(_POOL_CONTEXT))  # ("app", "scope")
(TENANT_KEY,) = set(_TENANT_CONTEXT) - {"app"}
(POOL_KEY,) = set(_POOL_CONTEXT) - {"app"}
POOL_SCOPE = _POOL_CONTEXT[POOL_KEY]
# The masked view (README "Masked view"): the same two contexts plus {"view": "masked"}.
MASKED_TENANT_CONTEXT_KEYS = tuple(sorted(encryption_context(APP_NAME, "tenant", KIND_MASKED_TENANT)))
MASKED_POOL_CONTEXT_KEYS = tuple(sorted(encryption_context(APP_NAME, "tenant", KIND_MASKED_POOL)))
# The masked stage reads only these attributes (chalicelib/store/layout.py), always by projection.
MASKED_READ_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query")
# The reader fleet's key table (chalicelib/keys/fleet.py): entries are read and written by the
# reader only, and sealed under keys derived by kms:GenerateMac with one HMAC key.
FLEET_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem")
FLEET_MAC_ALGORITHM = "HMAC_SHA_256"
# Lookup and erasure (chalicelib/store/layout.py names the attributes, config the suffixes).
BEACON_INDEX = "beacon-index"
INDEXER_FILES = {"indexer": "policy-indexer.json", "offboard": "policy-offboard.json"}
# The only attributes an indexer UpdateItem may name: the item's key and its beacon.
INDEXER_ATTRIBUTES = ("beacon", "beacon_version", "pk", "sk")
# The only attributes offboarding may read: keys and creation time (never ciphertext).
OFFBOARD_READ_ATTRIBUTES = ("created_at", "pk", "sk")
STREAM_READ_ACTIONS = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator")
CHECKPOINT_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem")
WRITER_ITEM_ACTIONS = ("dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
READER_TABLE_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query")
# Idempotency records hold request fingerprints and write responses (ids, versions), no PII.
IDEMPOTENCY_ACTIONS = ("dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
# ALL_OLD / ALL_NEW / UPDATED_OLD would hand stored items back to the writer.
WRITER_RETURN_VALUES = ("NONE", "UPDATED_NEW")
LOG_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
# Key administration without any cryptographic use and without kms:CreateGrant (a grant
# could hand Decrypt to anyone). Listed one by one: a wildcard such as kms:Create* would
# include CreateGrant. The admin can still rewrite the policy (kms:PutKeyPolicy): that
# power is inherent to administering a key and is audited by CloudTrail (SECURITY.md).
KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
KEY_POLICY_ADMIN_SID = "KeyAdministrationWithoutCryptographicUse"

_PARTITION = r"(?P<partition>aws|aws-cn|aws-us-gov)"
_REGION = r"(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)"
_ACCOUNT = r"(?P<account>\d{12})"
_KEY_ARN = re.compile(
    rf"^arn:{_PARTITION}:kms:{_REGION}:{_ACCOUNT}:key/"
    r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$"
)
_TABLE_ARN = re.compile(rf"^arn:{_PARTITION}:dynamodb:{_REGION}:{_ACCOUNT}:table/[A-Za-z0-9_.-]{{3,255}}$")
_PRINCIPAL_ARN = re.compile(
    rf"^arn:{_PARTITION}:iam::{_ACCOUNT}:(?:role|user)/(?:[A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{{1,128}}$"
)


class InvalidResourceError(ValueError):
    """An input ARN (or resources file) cannot be turned into a scoped policy."""


def writer_policy(
    key_arn: str,
    table_arn: str,
    *,
    region: str | None = None,
    account_id: str | None = None,
    app_name: str = APP_NAME,
    idempotency_table_arn: str | None = None,
    ledger_table_arn: str | None = None,
) -> dict[str, Any]:
    """Encrypt-only on the key, write-only on the table, own idempotency table, own log group;
    with ``ledger_table_arn``, append-only (PutItem) on the erasure ledger."""
    partition, region, account_id = _scope(key_arn, table_arn, region, account_id)
    idempotency_table_arn = idempotency_table_arn or table_arn + IDEMPOTENCY_SUFFIX
    ledger = (
        []
        if ledger_table_arn is None
        else [
            {
                # A person's DELETE and its ledger entry are one TransactWriteItems (IAM checks
                # each item's action). Append only: no read, update or delete of the ledger.
                "Sid": "AppendErasureLedger",
                "Effect": "Allow",
                "Action": "dynamodb:PutItem",
                "Resource": ledger_table_arn,
            }
        ]
    )
    return _document(
        *_kms_statements("EncryptDataKeys", "kms:Encrypt", key_arn, app_name),
        *_masked_kms_statements("EncryptMaskedViewDataKeys", "kms:Encrypt", key_arn, app_name),
        {
            "Sid": "WriteItemsWithoutReadBack",
            "Effect": "Allow",
            "Action": list(WRITER_ITEM_ACTIONS),
            "Resource": table_arn,
            # Single-valued key, absent when the default (NONE) is used: IfExists
            # allows that, the values list refuses ALL_OLD / ALL_NEW / UPDATED_OLD.
            "Condition": {"StringEqualsIfExists": {"dynamodb:ReturnValues": list(WRITER_RETURN_VALUES)}},
        },
        {
            # Own statement: BatchWriteItem has no ReturnValues (and the key is not
            # documented for it, which policy linters flag) and returns no items.
            "Sid": "BatchWriteItems",
            "Effect": "Allow",
            "Action": "dynamodb:BatchWriteItem",
            "Resource": table_arn,
        },
        {
            "Sid": "IdempotencyRecords",
            "Effect": "Allow",
            "Action": list(IDEMPOTENCY_ACTIONS),
            "Resource": idempotency_table_arn,
        },
        *ledger,
        _logs_statement(partition, region, account_id, f"{app_name}-writer"),
    )


def reader_policy(
    key_arn: str,
    table_arn: str,
    *,
    region: str | None = None,
    account_id: str | None = None,
    app_name: str = APP_NAME,
    fleet_mac_key_arn: str | None = None,
    fleet_table_arn: str | None = None,
    beacon_key_arn: str | None = None,
) -> dict[str, Any]:
    """Decrypt-only on the key, read-only on the table, own log group; with ``fleet_mac_key_arn``
    also the fleet key table: GenerateMac (HMAC_SHA_256) on that HMAC key and GetItem/PutItem
    on the fleet table (default: the table's name + ``-fleet-keys``), nothing else on either."""
    partition, region, account_id = _scope(key_arn, table_arn, region, account_id)
    statements = [
        *_full_view_only(_kms_statements("DecryptDataKeys", "kms:Decrypt", key_arn, app_name)),
        {
            "Sid": "ReadItems",
            "Effect": "Allow",
            "Action": list(READER_TABLE_ACTIONS),
            "Resource": table_arn,
        },
    ]
    if fleet_mac_key_arn is not None:
        fleet_table_arn = fleet_table_arn or table_arn + FLEET_TABLE_SUFFIX
        if _scope(fleet_mac_key_arn, fleet_table_arn, region, account_id) != (partition, region, account_id):
            raise InvalidResourceError("the fleet key and table must be in the stage's partition, region and account")
        if fleet_mac_key_arn == key_arn or fleet_table_arn == table_arn:
            raise InvalidResourceError("the fleet key and table must differ from the data key and the PII table")
        statements += [
            _mac_statement("DeriveFleetSealingKeys", fleet_mac_key_arn),
            {
                "Sid": "FleetKeyEntries",
                "Effect": "Allow",
                "Action": list(FLEET_TABLE_ACTIONS),
                "Resource": fleet_table_arn,
            },
        ]
    elif fleet_table_arn is not None:
        raise InvalidResourceError("fleet_table_arn needs fleet_mac_key_arn (the fleet table is unusable without it)")
    if beacon_key_arn is not None:
        # Search: the beacon root (GenerateMac on the beacon key) and the beacon index. Read-only.
        if _scope(beacon_key_arn, table_arn, region, account_id) != (partition, region, account_id):
            raise InvalidResourceError("the beacon key must be in the stage's partition, region and account")
        statements += [
            _mac_statement("GenerateBeaconRootMac", beacon_key_arn),
            {
                "Sid": "QueryBeaconIndex",
                "Effect": "Allow",
                "Action": "dynamodb:Query",
                "Resource": f"{table_arn}/index/{BEACON_INDEX}",
            },
        ]
    statements.append(_logs_statement(partition, region, account_id, f"{app_name}-reader"))
    return _document(*statements)


def _admin_statement(admin_arn: str) -> dict[str, Any]:
    """Every key policy's first statement: administration without cryptographic use."""
    return {
        "Sid": KEY_POLICY_ADMIN_SID,
        "Effect": "Allow",
        "Principal": {"AWS": _principal(admin_arn, "admin_arn")},
        "Action": list(KEY_ADMIN_ACTIONS),
        "Resource": "*",
    }


def key_policy(
    admin_arn: str,
    writer_role_arn: str | None = None,
    reader_role_arn: str | None = None,
    *,
    app_name: str = APP_NAME,
    indexer_role_arn: str | None = None,
    masked_role_arn: str | None = None,
) -> dict[str, Any]:
    """The KMS key policy: administration for ``admin_arn``, Encrypt for the writer
    role only, Decrypt for the reader role only, nothing for ``*`` or the account root.

    Without a statement for the account root, IAM policies alone never grant use of
    this key: the two role statements here are the only way to encrypt or decrypt.
    Role ARNs are optional because the roles exist only after ``chalice deploy``; the
    bootstrap installs the admin-only policy, ``tools.policies key-policy --apply``
    tightens it once both roles exist (KMS refuses principals that do not exist).
    """
    statements = [_admin_statement(admin_arn)]
    for sid, action, arn, name in (
        ("WriterRoleEncryptsDataKeys", "kms:Encrypt", writer_role_arn, "writer_role_arn"),
        ("ReaderRoleDecryptsDataKeys", "kms:Decrypt", reader_role_arn, "reader_role_arn"),
        ("IndexerRoleDecryptsDataKeys", "kms:Decrypt", indexer_role_arn, "indexer_role_arn"),
    ):
        if arn is None:
            continue
        for statement in _view_statements(sid, action, app_name):
            statement["Principal"] = {"AWS": _principal(arn, name)}
            statements.append(statement)
    if masked_role_arn is not None:
        # The masked stage: Decrypt of masked-view data keys only, never a full-view one.
        if masked_role_arn in (admin_arn, writer_role_arn, reader_role_arn, indexer_role_arn):
            raise InvalidResourceError("the masked role must differ from the admin, writer, reader and indexer")
        for statement in _masked_kms_statements("MaskedRoleDecryptsMaskedViewDataKeys", "kms:Decrypt", "*", app_name):
            statement["Principal"] = {"AWS": _principal(masked_role_arn, "masked_role_arn")}
            statements.append(statement)
    if writer_role_arn is not None and writer_role_arn in (admin_arn, reader_role_arn):
        raise InvalidResourceError("the writer role must differ from the admin and the reader")
    if reader_role_arn is not None and reader_role_arn == admin_arn:
        raise InvalidResourceError("the reader role must differ from the admin")
    return _document(*statements)


def _view_statements(sid: str, action: str, app_name: str) -> list[dict[str, Any]]:
    """A role's key-policy statements: the writer encrypts both views, readers decrypt the full view only."""
    if action == "kms:Encrypt":
        return [*_kms_statements(sid, action, "*", app_name), *_masked_kms_statements(sid, action, "*", app_name)]
    return _full_view_only(_kms_statements(sid, action, "*", app_name))


def masked_policy(
    key_arn: str,
    table_arn: str,
    *,
    region: str | None = None,
    account_id: str | None = None,
    app_name: str = APP_NAME,
) -> dict[str, Any]:
    """The masked stage: Decrypt of masked-view data keys only (context ``view`` = ``masked``),
    GetItem/BatchGetItem/Query naming only the masked view's attributes (never a full
    ciphertext, key slot map or the KMS key id), its own log group. No write, no Encrypt, no
    search, no fleet table."""
    partition, region, account_id = _scope(key_arn, table_arn, region, account_id)
    return _document(
        *_masked_kms_statements("DecryptMaskedViewDataKeys", "kms:Decrypt", key_arn, app_name),
        {
            "Sid": "ReadMaskedViewAttributesOnly",
            "Effect": "Allow",
            "Action": list(MASKED_READ_ACTIONS),
            "Resource": table_arn,
            # AWS's documented attribute-level pattern: every attribute named must be listed, and a
            # request without a projection (Select ALL_ATTRIBUTES) is refused. ForAllValues is
            # true of an absent key too, so the Null test also refuses a request naming no
            # attribute at all (a GetItem without a projection).
            "Condition": {
                "ForAllValues:StringEquals": {"dynamodb:Attributes": sorted(MASKED_VIEW_ATTRIBUTES)},
                "StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
                "Null": {"dynamodb:Attributes": "false"},
            },
        },
        _logs_statement(partition, region, account_id, f"{app_name}-masked"),
    )


def fleet_key_policy(admin_arn: str, reader_role_arn: str | None = None) -> dict[str, Any]:
    """The reader fleet's HMAC key: administration for ``admin_arn`` (no cryptographic use),
    ``kms:GenerateMac`` with HMAC_SHA_256 for the reader role, nothing for anyone else (no
    account root, so no IAM policy can add a user of this key)."""
    statements = [_admin_statement(admin_arn)]
    if reader_role_arn is not None:
        if reader_role_arn == admin_arn:
            raise InvalidResourceError("the reader role must differ from the admin")
        statement = _mac_statement("ReaderRoleDerivesFleetSealingKeys", "*")
        statement["Principal"] = {"AWS": _principal(reader_role_arn, "reader_role_arn")}
        statements.append(statement)
    return _document(*statements)


def indexer_policy(key_arn: str, table_arn: str, beacon_key_arn: str, *, app_name: str = APP_NAME) -> dict[str, Any]:
    """The stream-fed indexer and the backfill job: Decrypt (tenant or pool context),
    GenerateMac on the beacon key, GetItem and Scan of the indexer's attributes only (the
    email's ciphertext, never another field's), UpdateItem naming only the beacon attributes,
    the table's stream (keys only), its checkpoints. No Encrypt, no PutItem/DeleteItem, no
    write of a field, a key slot or the version."""
    partition, region, account_id = _scope(key_arn, table_arn, None, None)
    if _scope(beacon_key_arn, table_arn, region, account_id) != (partition, region, account_id):
        raise InvalidResourceError("the beacon key must be in the stage's partition, region and account")
    logs = [
        _logs_statement(partition, region, account_id, f"{app_name}-indexer-{name}")
        for name in JOB_FUNCTIONS["indexer"]
    ]
    logs[1]["Sid"] = "WriteOwnLogsBackfill"
    return _document(
        *_full_view_only(_kms_statements("DecryptEmailDataKeys", "kms:Decrypt", key_arn, app_name)),
        _mac_statement("GenerateBeaconRootMac", beacon_key_arn),
        {
            "Sid": "WriteBeaconAttributesOnly",
            "Effect": "Allow",
            "Action": "dynamodb:UpdateItem",
            "Resource": table_arn,
            "Condition": {
                "ForAllValues:StringEquals": {"dynamodb:Attributes": list(INDEXER_ATTRIBUTES)},
                "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE"]},
            },
        },
        {
            "Sid": "ReadEmailAttributesOnly",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:Scan"],
            "Resource": table_arn,
            # As the masked stage's reads: every attribute named must be listed, Select must be
            # SPECIFIC_ATTRIBUTES, and a request naming no attribute (no projection) is refused.
            "Condition": {
                "ForAllValues:StringEquals": {"dynamodb:Attributes": sorted(INDEXER_READ_ATTRIBUTES)},
                "StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
                "Null": {"dynamodb:Attributes": "false"},
            },
        },
        {
            "Sid": "ReadTableStream",
            "Effect": "Allow",
            "Action": list(STREAM_READ_ACTIONS),
            "Resource": f"{table_arn}/stream/*",
        },
        {
            # ListStreams has no resource-level permissions; it discloses stream ARNs only.
            "Sid": "ListStreamsForEventSourceMapping",
            "Effect": "Allow",
            "Action": "dynamodb:ListStreams",
            "Resource": "*",
        },
        _checkpoint_statement(table_arn),
        *logs,
    )


def offboard_policy(key_arn: str, table_arn: str, *, app_name: str = APP_NAME) -> dict[str, Any]:
    """Tenant offboarding: delete-only. Query of keys and creation times (never an
    encrypted attribute), DeleteItem, the tenant's idempotency records, a ledger entry,
    its checkpoints. No KMS at all (the key ARN only scopes region and account)."""
    partition, region, account_id = _scope(key_arn, table_arn, None, None)
    return _document(
        {
            "Sid": "QueryKeysOnly",
            "Effect": "Allow",
            "Action": "dynamodb:Query",
            "Resource": table_arn,
            "Condition": {
                "ForAllValues:StringEquals": {"dynamodb:Attributes": list(OFFBOARD_READ_ATTRIBUTES)},
                "StringEquals": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
            },
        },
        {
            "Sid": "DeleteItems",
            "Effect": "Allow",
            "Action": "dynamodb:DeleteItem",
            "Resource": table_arn,
            "Condition": {"StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE"]}},
        },
        {
            "Sid": "DeleteTenantIdempotencyRecords",
            "Effect": "Allow",
            "Action": ["dynamodb:DeleteItem", "dynamodb:Scan"],
            "Resource": table_arn + IDEMPOTENCY_SUFFIX,
        },
        {
            "Sid": "AppendErasureLedger",
            "Effect": "Allow",
            "Action": "dynamodb:PutItem",
            "Resource": table_arn + LEDGER_SUFFIX,
        },
        _checkpoint_statement(table_arn),
        _logs_statement(partition, region, account_id, f"{app_name}-offboard-{OFFBOARD_FUNCTION}"),
    )


def beacon_key_policy(admin_arn: str, mac_role_arns: Sequence[str] = ()) -> dict[str, Any]:
    """The beacon (HMAC) key's policy: administration for the admin, GenerateMac
    (HMAC_SHA_256) for the reader and indexer roles, nothing for ``*`` or the account root."""
    statements: list[dict[str, Any]] = [_admin_statement(admin_arn)]
    if mac_role_arns:
        statement = _mac_statement("RolesGenerateBeaconRootMac", "*")
        statement["Principal"] = {"AWS": [_principal(arn, "mac_role_arns") for arn in mac_role_arns]}
        statements.append(statement)
    return _document(*statements)


def _checkpoint_statement(table_arn: str) -> dict[str, Any]:
    return {
        "Sid": "JobCheckpoints",
        "Effect": "Allow",
        "Action": list(CHECKPOINT_ACTIONS),
        "Resource": table_arn + JOBS_SUFFIX,
    }


def render(policy: Mapping[str, Any]) -> str:
    """The one serialisation used for committed files, so the drift check is exact."""
    return json.dumps(policy, indent=2, sort_keys=True) + "\n"


def generate(resources: Mapping[str, Any]) -> dict[str, str]:
    """File name -> file content for both stages, from a parsed resources file."""
    missing = [k for k in ("key_arn", "table_arn") if not isinstance(resources.get(k), str)]
    if missing:
        raise InvalidResourceError(f"resources file needs string fields: {', '.join(missing)}")
    args = (resources["key_arn"], resources["table_arn"])
    fleet = {k: resources[k] for k in ("fleet_mac_key_arn", "fleet_table_arn") if k in resources}
    files = {
        POLICY_FILES["writer"]: render(writer_policy(*args)),
        POLICY_FILES["reader"]: render(reader_policy(*args, **fleet)),
        POLICY_FILES["masked"]: render(masked_policy(*args)),
    }
    beacon_key = resources.get("beacon_key_arn")
    if isinstance(beacon_key, str):
        # Lookup and erasure: the reader's search, the indexer and offboarding stages.
        files[POLICY_FILES["writer"]] = render(writer_policy(*args, ledger_table_arn=args[1] + LEDGER_SUFFIX))
        files[POLICY_FILES["reader"]] = render(reader_policy(*args, **fleet, beacon_key_arn=beacon_key))
        files[INDEXER_FILES["indexer"]] = render(indexer_policy(*args, beacon_key))
        files[INDEXER_FILES["offboard"]] = render(offboard_policy(*args))
    return files


def main(argv: Sequence[str] | None = None) -> int:
    chalice_dir = Path(__file__).resolve().parent.parent / ".chalice"
    parser = argparse.ArgumentParser(prog="python -m tools.policies", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--resources",
        type=Path,
        default=chalice_dir / "resources.json",
        help='JSON file {"key_arn": ..., "table_arn": ...}',
    )
    parser.add_argument(
        "--out-dir", type=Path, default=chalice_dir, help="where policy-writer.json and policy-reader.json live"
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the files differ from the generated ones"
    )
    key = parser.add_argument_group("key policy (after both stages are deployed)")
    key.add_argument("--key-policy", action="store_true", help="print the tightened KMS key policy")
    key.add_argument(
        "--fleet-key-policy",
        action="store_true",
        help="the same for the reader fleet's HMAC key (fleet_mac_key_arn in the resources file)",
    )
    key.add_argument("--admin-arn", help="default: admin_arn in the resources file")
    key.add_argument("--writer-role-arn", help="default: from deployed/writer.json beside the resources file")
    key.add_argument("--reader-role-arn", help="default: from deployed/reader.json beside the resources file")
    key.add_argument(
        "--masked-role-arn",
        help="the masked stage's role (Decrypt of masked-view keys only); default: from deployed/masked.json "
        "beside the resources file, else none (deploy the masked stage first: KMS refuses unknown principals)",
    )
    key.add_argument("--apply", action="store_true", help="also PutKeyPolicy on the key")
    key.add_argument("--endpoint-url", help="KMS endpoint for --apply (e.g. a moto server)")
    args = parser.parse_args(argv)
    if args.key_policy or args.fleet_key_policy:
        return _key_policy_main(args, args.resources.parent)
    try:
        resources = json.loads(args.resources.read_text(encoding="utf-8"))
        if not isinstance(resources, dict):
            raise InvalidResourceError("resources file must hold a JSON object")
        files = generate(resources)
    except (OSError, ValueError) as exc:  # JSONDecodeError and InvalidResourceError are ValueErrors
        print(f"tools.policies: error: {args.resources}: {exc}", file=sys.stderr)
        return 2
    return write_or_check("tools.policies", args.out_dir, files, check=args.check)


def stage_role_arn(partition: str, account_id: str, stage: str, app_name: str = APP_NAME) -> str:
    """The role both deployment paths create: ``chalice deploy`` names it
    ``<app>-<stage>-api_handler`` (iam_policy_file set), and ``.chalice/cfn-<stage>.json``
    gives the packaged template's role the same name."""
    return f"arn:{partition}:iam::{account_id}:role/{app_name}-{stage}-api_handler"


def deployed_role_arn(chalice_dir: Path, stage: str) -> str | None:
    """The role ARN ``chalice deploy --stage <stage>`` recorded, if it has run here."""
    try:
        deployed = json.loads((chalice_dir / "deployed" / f"{stage}.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    arns = [r["role_arn"] for r in deployed.get("resources", []) if r.get("resource_type") == "iam_role"]
    return arns[0] if len(arns) == 1 else None


def _key_policy_main(args: argparse.Namespace, chalice_dir: Path) -> int:
    try:
        resources = json.loads(args.resources.read_text(encoding="utf-8"))
        field = "fleet_mac_key_arn" if args.fleet_key_policy else "key_arn"
        key_arn = resources.get(field)
        if not isinstance(key_arn, str) or not _KEY_ARN.match(key_arn):
            raise InvalidResourceError(f"resources file needs the {field} written by tools.bootstrap")
        partition, _, account = _scope(key_arn, resources.get("table_arn"), None, None)
        roles = {}
        for stage in ("writer", "reader"):
            roles[stage] = (
                getattr(args, f"{stage}_role_arn")
                or deployed_role_arn(chalice_dir, stage)
                or stage_role_arn(partition, account, stage)
            )
        admin = args.admin_arn or resources.get("admin_arn")
        masked = args.masked_role_arn or deployed_role_arn(chalice_dir, "masked")
        if args.fleet_key_policy:
            document = fleet_key_policy(admin, roles["reader"])
        else:
            document = key_policy(admin, roles["writer"], roles["reader"], masked_role_arn=masked)
    except (OSError, ValueError) as exc:
        print(f"tools.policies: error: {exc}", file=sys.stderr)
        return 2
    text = render(document)
    sys.stdout.write(text)
    if args.apply:
        import boto3  # only here: generating policies needs no AWS SDK session
        from botocore.exceptions import BotoCoreError, ClientError

        region = key_arn.split(":")[3]
        try:
            kms = boto3.session.Session(region_name=region).client("kms", endpoint_url=args.endpoint_url)
            kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=text)
        except (BotoCoreError, ClientError) as exc:
            print(f"tools.policies: PutKeyPolicy failed: {exc}", file=sys.stderr)
            return 1
        print(f"tools.policies: applied the key policy to {key_arn}", file=sys.stderr)
    return 0


def _scope(key_arn: str, table_arn: str, region: str | None, account_id: str | None) -> tuple[str, str, str]:
    """Validate both ARNs and return their common (partition, region, account)."""
    key = _KEY_ARN.match(key_arn) if isinstance(key_arn, str) else None
    if key is None:
        raise InvalidResourceError(
            f"key_arn {key_arn!r} is not a KMS key ARN "
            "(arn:aws:kms:<region>:<account>:key/<key-id>); aliases and wildcards are "
            "refused because IAM evaluates KMS permissions against the key ARN"
        )
    table = _TABLE_ARN.match(table_arn) if isinstance(table_arn, str) else None
    if table is None:
        raise InvalidResourceError(
            f"table_arn {table_arn!r} is not a DynamoDB table ARN "
            "(arn:aws:dynamodb:<region>:<account>:table/<name>); indexes and wildcards are refused"
        )
    derived = (key["partition"], key["region"], key["account"])
    if derived != (table["partition"], table["region"], table["account"]):
        raise InvalidResourceError("key_arn and table_arn must be in the same partition, region and account")
    for name, given, actual in (("region", region, derived[1]), ("account_id", account_id, derived[2])):
        if given is not None and given != actual:
            raise InvalidResourceError(f"{name} {given!r} does not match the ARNs ({actual!r})")
    return derived


def _principal(arn: Any, name: str) -> str:
    if not isinstance(arn, str) or not _PRINCIPAL_ARN.match(arn):
        raise InvalidResourceError(
            f"{name} {arn!r} is not an IAM role or user ARN (arn:aws:iam::<account>:role/<name>); "
            "wildcards, the account root and assumed-role session ARNs are refused"
        )
    return arn


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _kms_statements(sid: str, action: str, key_arn: str, app_name: str) -> list[dict[str, Any]]:
    """One statement per allowed encryption context, and nothing else:

    - ``<sid>UnderTenantContext``: exactly {app, customer_id}, app fixed, customer_id present;
    - ``<sid>UnderPoolContext``: exactly {app, scope}, app fixed, scope "pool".

    ForAllValues alone is also true for an empty context, hence the StringEquals on app
    and the Null check on customer_id (the pool statement's StringEquals on scope does both).
    A mixed {app, customer_id, scope} context fails both key-set conditions.
    """

    def statement(suffix: str, condition: dict[str, Any]) -> dict[str, Any]:
        return {
            "Sid": f"{sid}{suffix}",
            "Effect": "Allow",
            "Action": action,
            "Resource": key_arn,
            "Condition": condition,
        }

    return [
        statement(
            "UnderTenantContext",
            {
                "StringEquals": {"kms:EncryptionContext:app": app_name},
                "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(ENCRYPTION_CONTEXT_KEYS)},
                "Null": {f"kms:EncryptionContext:{TENANT_KEY}": "false"},
            },
        ),
        statement(
            "UnderPoolContext",
            {
                "StringEquals": {
                    "kms:EncryptionContext:app": app_name,
                    f"kms:EncryptionContext:{POOL_KEY}": POOL_SCOPE,
                },
                "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(POOL_CONTEXT_KEYS)},
            },
        ),
    ]


def _full_view_only(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``statements`` refusing any context that names a view: the full view's data keys only.

    The exact key sets of ``_kms_statements`` already leave ``view`` out; the explicit Null
    check says so where a reader of the policy looks, and survives a widened key set.
    """
    for statement in statements:
        statement["Condition"]["Null"] = {
            **statement["Condition"].get("Null", {}),
            f"kms:EncryptionContext:{VIEW_KEY}": "true",
        }
    return statements


def _masked_kms_statements(sid: str, action: str, key_arn: str, app_name: str) -> list[dict[str, Any]]:
    """The masked view's contexts: exactly {app, customer_id, view} or {app, scope, view}, view "masked".

    ``view`` must equal "masked" (StringEquals: absent is false), so no full-view data key
    (whose context has no ``view``) ever matches.
    """

    def statement(suffix: str, condition: dict[str, Any]) -> dict[str, Any]:
        return {
            "Sid": f"{sid}{suffix}",
            "Effect": "Allow",
            "Action": action,
            "Resource": key_arn,
            "Condition": condition,
        }

    view = {"kms:EncryptionContext:app": app_name, f"kms:EncryptionContext:{VIEW_KEY}": MASKED_VIEW}
    return [
        statement(
            "UnderMaskedTenantContext",
            {
                "StringEquals": view,
                "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(MASKED_TENANT_CONTEXT_KEYS)},
                "Null": {f"kms:EncryptionContext:{TENANT_KEY}": "false"},
            },
        ),
        statement(
            "UnderMaskedPoolContext",
            {
                "StringEquals": {**view, f"kms:EncryptionContext:{POOL_KEY}": POOL_SCOPE},
                "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(MASKED_POOL_CONTEXT_KEYS)},
            },
        ),
    ]


def _mac_statement(sid: str, key_arn: str) -> dict[str, Any]:
    """GenerateMac only (no VerifyMac: the reader derives keys, it never checks MACs), HMAC-SHA-256 only."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": "kms:GenerateMac",
        "Resource": key_arn,
        "Condition": {"StringEquals": {"kms:MacAlgorithm": FLEET_MAC_ALGORITHM}},
    }


def _logs_statement(partition: str, region: str, account_id: str, function_name: str) -> dict[str, Any]:
    """Chalice's autogen grants these three on arn:*:logs:*:*:*; here: the function's group only.

    ``chalice deploy`` names the API handler ``<app>-<stage>``. CloudWatch Logs
    authorizes these actions against the ``...:*`` form of the group ARN; both are listed.
    """
    group = f"arn:{partition}:logs:{region}:{account_id}:log-group:/aws/lambda/{function_name}"
    return {
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": list(LOG_ACTIONS),
        "Resource": [group, f"{group}:*"],
    }


# --- Added for the deployable templates (tools/stacks.py) -----------------------------

# X-Ray accepts no resource-level permissions: "*" is the only Resource these two take.
TRACING_ACTIONS = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")


def tracing_policy() -> dict[str, Any]:
    """What ``Tracing: Active`` needs (SAM adds it only to roles it creates itself)."""
    return _document(
        {
            "Sid": "SendTraces",
            "Effect": "Allow",
            "Action": list(TRACING_ACTIONS),
            "Resource": "*",
        }
    )


# --- Per-tenant keys and the rewrap job (chalicelib/keys/tenants.py, chalicelib/service/rewrap.py) ----

# Which KMS actions each stage may use on a tenant's own key (always under that tenant's context).
TENANT_KEY_ACTIONS = {
    "writer": ("kms:Encrypt",),
    "reader": ("kms:Decrypt",),
    "indexer": ("kms:Decrypt",),
    "masked": ("kms:Decrypt",),
    "rewrap": ("kms:ReEncryptFrom", "kms:ReEncryptTo"),
}
# Under which views' contexts each stage uses a tenant key, as on the shared key: the writer
# encrypts both, the reader and indexer decrypt the full view only (``view`` absent), the masked
# stage the masked view only, the rewrap job moves both.
TENANT_KEY_VIEWS = {
    "writer": (FULL_VIEW, MASKED_VIEW),
    "reader": (FULL_VIEW,),
    "indexer": (FULL_VIEW,),
    "masked": (MASKED_VIEW,),
    "rewrap": (FULL_VIEW, MASKED_VIEW),
}
REWRAP_FILE = "policy-rewrap.json"
# A rewrap reads whole items (slots and the field blobs' headers) and writes two attributes.
REWRAP_READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan")
_TAG_CONDITION_KEY = f"aws:ResourceTag/{TENANT_KEY_TAG}"


def _tenant_context_condition(app_name: str, customer_id: str, view: str = FULL_VIEW) -> dict[str, Any]:
    """Exactly {app, customer_id} (full view: ``view`` must be absent) or exactly {app, customer_id,
    view} with view "masked"; app fixed, customer_id = ``customer_id`` (may be a policy variable)."""
    equals = {"kms:EncryptionContext:app": app_name, f"kms:EncryptionContext:{TENANT_KEY}": customer_id}
    if view == MASKED_VIEW:
        return {
            "StringEquals": {**equals, f"kms:EncryptionContext:{VIEW_KEY}": MASKED_VIEW},
            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(MASKED_TENANT_CONTEXT_KEYS)},
        }
    return {
        "StringEquals": equals,
        "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(ENCRYPTION_CONTEXT_KEYS)},
        "Null": {f"kms:EncryptionContext:{VIEW_KEY}": "true"},
    }


def _view_sid(view: str) -> str:
    return "Masked" if view == MASKED_VIEW else ""


def tenant_key_policy(
    admin_arn: str,
    customer_id: str,
    roles: Mapping[str, str],
    *,
    app_name: str = APP_NAME,
) -> dict[str, Any]:
    """The key policy of one tenant's own key: administration for ``admin_arn`` (no
    cryptographic use), and for each stage role in ``roles`` (stage -> role ARN) only its
    actions of ``TENANT_KEY_ACTIONS``, only under the context naming ``customer_id``. No
    account root: IAM policies alone never reach this key. A customer-owned key in another
    account gets the same statements from the customer (README "Per-tenant keys")."""
    statements: list[dict[str, Any]] = [_admin_statement(admin_arn)]
    for stage, arn in sorted(roles.items()):
        if stage not in TENANT_KEY_ACTIONS:
            raise InvalidResourceError(f"no tenant key use for stage {stage!r}")
        if arn == admin_arn:
            raise InvalidResourceError(f"the {stage} role must differ from the admin")
        statements += [
            {
                "Sid": f"{stage.capitalize()}RoleUnder{_view_sid(view)}TenantContextOnly",
                "Effect": "Allow",
                "Principal": {"AWS": _principal(arn, f"{stage}_role_arn")},
                "Action": list(TENANT_KEY_ACTIONS[stage]),
                "Resource": "*",
                "Condition": _tenant_context_condition(app_name, customer_id, view),
            }
            for view in TENANT_KEY_VIEWS[stage]
        ]
    return _document(*statements)


def tenant_key_statements(
    stage: str, table_arn: str, *, app_name: str = APP_NAME, customer_accounts: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """What a stage's identity policy adds for per-tenant keys: its ``TENANT_KEY_ACTIONS`` on
    any key of the account (and of ``customer_accounts``) **tagged** with a tenant, only when
    the context's customer_id equals the key's tag; and (not rewrap) GetItem on the registry.
    ``aws:ResourceTag`` works for KMS in IAM policies (not in key policies); a tag change
    takes up to five minutes to apply."""
    partition, region, account_id = _scope(_SENTINEL_FREE_KEY.format(*_table_scope(table_arn)), table_arn, None, None)
    for account in customer_accounts:
        if not re.fullmatch(r"\d{12}", account):
            raise InvalidResourceError(f"customer account {account!r} is not a 12-digit account id")
    statements: list[dict[str, Any]] = []
    for view in TENANT_KEY_VIEWS[stage]:
        condition = _tenant_context_condition(app_name, "${" + _TAG_CONDITION_KEY + "}", view)
        condition["Null"] = {
            **condition.get("Null", {}),
            _TAG_CONDITION_KEY: "false",
            f"kms:EncryptionContext:{TENANT_KEY}": "false",
        }
        statements.append(
            {
                "Sid": f"TenantKeysByTagUnderOwn{_view_sid(view)}TenantContext",
                "Effect": "Allow",
                "Action": list(TENANT_KEY_ACTIONS[stage]),
                "Resource": [f"arn:{partition}:kms:{region}:{a}:key/*" for a in (account_id, *customer_accounts)],
                "Condition": condition,
            }
        )
    if stage != "rewrap":
        statements.append(
            {
                "Sid": "ReadTenantKeyRegistry",
                "Effect": "Allow",
                "Action": "dynamodb:GetItem",
                "Resource": table_arn + TENANTS_SUFFIX,
            }
        )
    return statements


_SENTINEL_FREE_KEY = "arn:{0}:kms:{1}:{2}:key/00000000-0000-0000-0000-000000000000"


def _table_scope(table_arn: str) -> tuple[str, str, str]:
    match = _TABLE_ARN.match(table_arn) if isinstance(table_arn, str) else None
    if match is None:
        raise InvalidResourceError(f"table_arn {table_arn!r} is not a DynamoDB table ARN")
    return match["partition"], match["region"], match["account"]


def with_tenant_keys(policy: Mapping[str, Any], stage: str, table_arn: str, **kwargs: Any) -> dict[str, Any]:
    """``policy`` plus ``tenant_key_statements`` for ``stage``."""
    return _document(*policy["Statement"], *tenant_key_statements(stage, table_arn, **kwargs))


def rewrap_policy(
    source_key_arn: str,
    target_key_arn: str | None,
    table_arn: str,
    *,
    app_name: str = APP_NAME,
    tenant_keys: bool = True,
) -> dict[str, Any]:
    """The rewrap job: ``kms:ReEncryptFrom`` on the source, ``kms:ReEncryptTo`` on the target
    (either context kind, either view), and with ``tenant_keys`` both on tenant-tagged keys under
    their own tenant's contexts (full and masked view). No Decrypt, Encrypt or GenerateDataKey:
    ReEncrypt never hands out a plaintext. Reads whole items, updates only ``slots``, the masked
    view's ``mk_<slot>`` and ``kms_key`` (ReturnValues NONE).
    ``target_key_arn`` None: tenant keys are the only targets (the base stack's role; a move
    to a new shared or multi-Region key generates this policy with that key as the target)."""
    partition, region, account_id = _scope(source_key_arn, table_arn, None, None)
    targets: list[dict[str, Any]] = []
    if target_key_arn is not None:
        if _scope(target_key_arn, table_arn, region, account_id) != (partition, region, account_id):
            raise InvalidResourceError("the rewrap target key must be in the stage's partition, region and account")
        if source_key_arn == target_key_arn:
            raise InvalidResourceError("the rewrap source and target keys must differ")
        targets = _both_views("ReEncryptToTarget", "kms:ReEncryptTo", target_key_arn, app_name)
    elif not tenant_keys:
        raise InvalidResourceError("a rewrap needs a target key, or tenant keys as targets")
    statements = [
        *_both_views("ReEncryptFromSource", "kms:ReEncryptFrom", source_key_arn, app_name),
        *targets,
        {"Sid": "ReadItems", "Effect": "Allow", "Action": list(REWRAP_READ_ACTIONS), "Resource": table_arn},
        {
            "Sid": "UpdateSlotsAndKeyIdOnly",
            "Effect": "Allow",
            "Action": "dynamodb:UpdateItem",
            "Resource": table_arn,
            "Condition": {
                "ForAllValues:StringEquals": {"dynamodb:Attributes": sorted(REWRAP_ATTRIBUTES)},
                "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE"]},
            },
        },
        _checkpoint_statement(table_arn),
        _logs_statement(partition, region, account_id, f"{app_name}-rewrap-rewrap"),
    ]
    if tenant_keys:
        statements += tenant_key_statements("rewrap", table_arn, app_name=app_name)
    return _document(*statements)


def rewrap_key_statements(rewrap_role_arn: str, *, app_name: str = APP_NAME) -> list[dict[str, Any]]:
    """For the shared key's policy: the rewrap role may ReEncryptFrom and ReEncryptTo it (moving
    data keys away from it, or onto it), under the app's four contexts only (both views), nothing else."""
    statements = []
    for action in ("kms:ReEncryptFrom", "kms:ReEncryptTo"):
        sid = "RewrapRole" + action.split(":")[1]
        for statement in _both_views(sid, action, "*", app_name):
            statement["Principal"] = {"AWS": _principal(rewrap_role_arn, "rewrap_role_arn")}
            statements.append(statement)
    return statements


def _both_views(sid: str, action: str, key_arn: str, app_name: str) -> list[dict[str, Any]]:
    """The rewrap role's statements on a shared key: the full view's two contexts (``view``
    absent) and the masked view's two, so the masked view's data keys move with the full view's."""
    return [
        *_full_view_only(_kms_statements(sid, action, key_arn, app_name)),
        *_masked_kms_statements(sid, action, key_arn, app_name),
    ]


if __name__ == "__main__":
    sys.exit(main())
