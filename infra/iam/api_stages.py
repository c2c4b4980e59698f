"""The API stages' own grants: the writer encrypts and writes, the reader decrypts and reads,
the masked stage decrypts masked-view keys and reads masked attributes only.

A role that may ``kms:Decrypt`` holds no write on the PII table: any write permission is
read permission through ``ReturnValuesOnConditionCheckFailure=ALL_OLD``, which no IAM
condition key governs (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from chalicelib.store import key_table
from chalicelib.store.layout import BEACON_INDEX, MASKED_VIEW_ATTRIBUTES
from chalicelib.store.tables import WRITER_LEDGER_KINDS
from chalicelib.support.environment import Key, Table
from infra.arns import Arns
from infra.iam.statements import (
    Statement,
    full_view_only,
    kms_statements,
    ledger_statement,
    mac_statement,
    masked_kms_statements,
)

WRITER_ITEM_ACTIONS = ("dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
# ALL_OLD / ALL_NEW / UPDATED_OLD would hand stored items back to the writer.
WRITER_RETURN_VALUES = ("NONE", "UPDATED_NEW")
# Idempotency records hold request fingerprints and write responses (ids, versions), no PII.
# GetItem: Powertools' fallback when a refused conditional put hands back no old record
# (``exc.old_data_record or self._get_idempotency_record()``); the recorded requests never reach
# it (the put asks for ALL_OLD), and it reads nothing that PutItem's ALL_OLD does not.
IDEMPOTENCY_ACTIONS = ("dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
READER_TABLE_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query")
# The reader fleet's key table (chalicelib/keys/fleet.py): entries are read and written by the
# reader only, and sealed under keys derived by kms:GenerateMac with one HMAC key.
# (Query: a container fetches a day of pool keys at once, chalicelib/keys/fleet_buckets.py.)
FLEET_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query")
MASKED_READ_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query")
# The key table (format v3: wrapped data keys by reference). The writer files keys (PutItem, no
# read: what a failed condition hands back is a wrapped key it cannot open); the readers get
# them, each view only its own partitions (dynamodb:LeadingKeys).
KEY_TABLE_WRITER_ACTIONS = ("dynamodb:PutItem",)
KEY_TABLE_READ_ACTIONS = ("dynamodb:GetItem",)


def key_table_statement(sid: str, actions: tuple[str, ...], arns: Arns, partitions: tuple[str, ...] = ()) -> Statement:
    """A stage's grant on the key table; ``partitions``: the ``dynamodb:LeadingKeys`` patterns it may touch."""
    statement: Statement = {"Sid": sid, "Effect": "Allow", "Action": list(actions), "Resource": arns.table(Table.KEYS)}
    if partitions:
        statement["Condition"] = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(partitions)}}
    return statement


def writer(arns: Arns) -> list[Statement]:
    """Encrypt-only on the key (both views), write-only on the table, its idempotency records,
    append-only (PutItem) on the erasure ledger's person and secret partitions."""
    table = arns.table(Table.PII)
    return [
        *kms_statements("EncryptDataKeys", "kms:Encrypt", arns.key(Key.DATA)),
        *masked_kms_statements("EncryptMaskedViewDataKeys", "kms:Encrypt", arns.key(Key.DATA)),
        {
            "Sid": "WriteItemsWithoutReadBack",
            "Effect": "Allow",
            "Action": list(WRITER_ITEM_ACTIONS),
            "Resource": table,
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
            "Resource": table,
        },
        {
            "Sid": "IdempotencyRecords",
            "Effect": "Allow",
            "Action": list(IDEMPOTENCY_ACTIONS),
            "Resource": arns.table(Table.IDEMPOTENCY),
        },
        key_table_statement("FileDataKeys", KEY_TABLE_WRITER_ACTIONS, arns),
        # A person's DELETE and its ledger entry are one TransactWriteItems (IAM checks each
        # item's action). Append only, and only its own erasures: persons and secrets.
        ledger_statement(arns, WRITER_LEDGER_KINDS),
    ]


def reader(arns: Arns) -> list[Statement]:
    """Decrypt-only on the key (full view), read-only on the table; the key table's full-view
    partitions; the fleet key table (GenerateMac on its HMAC key, GetItem/PutItem/Query on its
    table); search (GenerateMac on the beacon key, Query of the beacon table's index)."""
    return [
        *full_view_only(kms_statements("DecryptDataKeys", "kms:Decrypt", arns.key(Key.DATA))),
        {
            "Sid": "ReadItems",
            "Effect": "Allow",
            "Action": list(READER_TABLE_ACTIONS),
            "Resource": arns.table(Table.PII),
        },
        key_table_statement("GetFullViewDataKeys", KEY_TABLE_READ_ACTIONS, arns, key_table.FULL_VIEW_PARTITIONS),
        mac_statement("DeriveFleetSealingKeys", arns.key(Key.FLEET_MAC)),
        {
            "Sid": "FleetKeyEntries",
            "Effect": "Allow",
            "Action": list(FLEET_TABLE_ACTIONS),
            "Resource": arns.table(Table.FLEET),
        },
        mac_statement("GenerateBeaconRootMac", arns.key(Key.BEACON_MAC)),
        {
            "Sid": "QueryBeaconIndex",
            "Effect": "Allow",
            "Action": "dynamodb:Query",
            "Resource": arns.index(Table.BEACONS, BEACON_INDEX),
        },
    ]


def masked(arns: Arns) -> list[Statement]:
    """Decrypt of masked-view data keys only (context ``view`` = ``masked``), GetItem/
    BatchGetItem/Query naming only the masked view's attributes (never a full ciphertext, key
    slot map or the KMS key id), GetItem of the key table's masked-view partitions. No write, no
    Encrypt, no search, no fleet table."""
    return [
        *masked_kms_statements("DecryptMaskedViewDataKeys", "kms:Decrypt", arns.key(Key.DATA)),
        {
            "Sid": "ReadMaskedViewAttributesOnly",
            "Effect": "Allow",
            "Action": list(MASKED_READ_ACTIONS),
            "Resource": arns.table(Table.PII),
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
        key_table_statement("GetMaskedViewDataKeys", KEY_TABLE_READ_ACTIONS, arns, key_table.MASKED_VIEW_PARTITIONS),
    ]
