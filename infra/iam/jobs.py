"""The job stages' own grants: each job exactly its job.

- indexer: decrypts emails, writes the beacon table (and nothing else: no write of any kind on
  the PII table, whose failed conditional writes would hand it whole items), reads the stream;
- offboard: deletes a tenant's items by key, never reads a ciphertext, no KMS at all;
- rewrap: ReEncrypt only (never a plaintext data key), updates the key slots only.
"""

from __future__ import annotations

from chalicelib.store import key_table, layout
from chalicelib.store.tables import OFFBOARD_LEDGER_KINDS
from chalicelib.support.environment import Key, Table
from infra.arns import AccountArns, Arns, InvalidResourceError, key_scope
from infra.cfn import Json
from infra.iam.statements import (
    Statement,
    both_views,
    checkpoint_statement,
    full_view_only,
    kms_statements,
    ledger_statement,
    mac_statement,
)

# What the indexer may do to the beacon table (its only write anywhere).
BEACON_WRITE_ACTIONS = ("dynamodb:UpdateItem",)
# The rewrap job moves key-table entries (format v3) one data key at a time.
# Pages (Query by tenant, Scan by segment) and the conditional move; never a GetItem (unused, issue 21 B).
KEY_TABLE_REWRAP_ACTIONS = ("dynamodb:Query", "dynamodb:Scan", "dynamodb:UpdateItem")
STREAM_READ_ACTIONS = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator")
# The only attributes offboarding may read: the keys (never a ciphertext, nor a timestamp it needs no more).
OFFBOARD_READ_ATTRIBUTES = tuple(sorted((layout.PK, layout.SK)))
# A rewrap reads whole items (slots and the field blobs' headers) and writes two attributes.
REWRAP_READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan")


def _projected_reads(attributes: list[str]) -> dict[str, dict[str, object]]:
    """Every attribute named must be listed, Select must be SPECIFIC_ATTRIBUTES, and a request
    naming no attribute (no projection) is refused (ForAllValues alone is true of an absent key)."""
    return {
        "ForAllValues:StringEquals": {"dynamodb:Attributes": attributes},
        "StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
        "Null": {"dynamodb:Attributes": "false"},
    }


def indexer(arns: Arns) -> list[Statement]:
    """The stream-fed indexer and the backfill job: Decrypt (tenant or pool context, full view),
    GenerateMac on the beacon key, GetItem and Scan of the indexer's attributes only (the
    email's ciphertext, never another field's), GetItem of the key table's full-view partitions,
    UpdateItem of the beacon table, the table's stream (keys only), SendMessage to its failure
    queue, its checkpoints. No Encrypt, and no write of any kind on the PII table (a role that
    may Decrypt must not read whole items back through a failed conditional write,
    ``ReturnValuesOnConditionCheckFailure``)."""
    table = arns.table(Table.PII)
    return [
        *full_view_only(kms_statements("DecryptEmailDataKeys", "kms:Decrypt", arns.key(Key.DATA))),
        mac_statement("GenerateBeaconRootMac", arns.key(Key.BEACON_MAC)),
        {
            "Sid": "WriteBeaconTable",
            "Effect": "Allow",
            "Action": list(BEACON_WRITE_ACTIONS),
            "Resource": arns.table(Table.BEACONS),
        },
        {
            "Sid": "GetFullViewDataKeys",
            "Effect": "Allow",
            "Action": "dynamodb:GetItem",
            "Resource": arns.table(Table.KEYS),
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(key_table.FULL_VIEW_PARTITIONS)}},
        },
        {
            "Sid": "ReadEmailAttributesOnly",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:Scan"],
            "Resource": table,
            "Condition": _projected_reads(sorted(layout.INDEXER_READ_ATTRIBUTES)),
        },
        {
            "Sid": "ReadTableStream",
            "Effect": "Allow",
            "Action": list(STREAM_READ_ACTIONS),
            "Resource": arns.stream(Table.PII),
        },
        {
            # The event source mapping sends a batch that failed every retry to its on-failure
            # destination with the function's role: this queue, and nothing else on SQS.
            "Sid": "ParkFailedStreamBatches",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": arns.failure_queue(),
        },
        {
            # ListStreams has no resource-level permissions; it discloses stream ARNs only. Used
            # by Lambda's event source mapping with this role (the DynamoDB guide's "IAM policy to
            # allow an AWS Lambda function to access DynamoDB stream records" lists it), never by
            # the code: the stage is configured with its stream's ARN.
            "Sid": "ListStreamsForEventSourceMapping",
            "Effect": "Allow",
            "Action": "dynamodb:ListStreams",
            "Resource": "*",
        },
        checkpoint_statement(arns),
    ]


def offboard(arns: Arns) -> list[Statement]:
    """Tenant offboarding: delete-only. Query of keys (never an encrypted attribute), DeleteItem,
    the tenant's idempotency records, the tenant-wide ledger entries, its checkpoints."""
    table = arns.table(Table.PII)
    return [
        {
            "Sid": "QueryKeysOnly",
            "Effect": "Allow",
            "Action": "dynamodb:Query",
            "Resource": table,
            "Condition": {
                "ForAllValues:StringEquals": {"dynamodb:Attributes": list(OFFBOARD_READ_ATTRIBUTES)},
                "StringEquals": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
            },
        },
        {
            "Sid": "DeleteItems",
            "Effect": "Allow",
            "Action": "dynamodb:DeleteItem",
            "Resource": table,
            "Condition": {"StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE"]}},
        },
        {
            "Sid": "DeleteTenantIdempotencyRecords",
            "Effect": "Allow",
            "Action": ["dynamodb:DeleteItem", "dynamodb:Scan"],
            "Resource": arns.table(Table.IDEMPOTENCY),
        },
        # The tenant-wide entries (and the mark that a final query found the tenant empty):
        # offboarding's alone, in the tenant partitions only.
        ledger_statement(arns, OFFBOARD_LEDGER_KINDS),
        checkpoint_statement(arns),
    ]


def rewrap(arns: Arns, target_key: Json = None) -> list[Statement]:
    """``kms:ReEncryptFrom`` on the shared key, ``kms:ReEncryptTo`` on ``target_key`` (either
    context kind, either view); reads whole items, updates only ``slots``, the masked view's
    ``mk_<slot>`` and ``kms_key`` (ReturnValues NONE: items written before format v3); moves the
    key table's entries (format v3). No Decrypt, Encrypt or GenerateDataKey:
    ReEncrypt never hands out a plaintext. ``target_key`` None: tenant keys (reached by tag) are
    the only targets, as the base stack's role; a move to a new shared or multi-Region key
    generates this policy with that key as the target."""
    source = arns.key(Key.DATA)
    targets: list[Statement] = []
    if target_key is not None:
        if isinstance(arns, AccountArns) and key_scope(target_key, "the rewrap target key") != arns.scope:
            raise InvalidResourceError("the rewrap target key must be in the stage's partition, region and account")
        if target_key == source:
            raise InvalidResourceError("the rewrap source and target keys must differ")
        targets = both_views("ReEncryptToTarget", "kms:ReEncryptTo", target_key)
    table = arns.table(Table.PII)
    return [
        *both_views("ReEncryptFromSource", "kms:ReEncryptFrom", source),
        *targets,
        {"Sid": "ReadItems", "Effect": "Allow", "Action": list(REWRAP_READ_ACTIONS), "Resource": table},
        {
            "Sid": "UpdateSlotsAndKeyIdOnly",
            "Effect": "Allow",
            "Action": "dynamodb:UpdateItem",
            "Resource": table,
            "Condition": {
                "ForAllValues:StringEquals": {"dynamodb:Attributes": sorted(layout.REWRAP_WRITE_ATTRIBUTES)},
                "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE"]},
            },
        },
        {
            "Sid": "MoveDataKeys",
            "Effect": "Allow",
            "Action": list(KEY_TABLE_REWRAP_ACTIONS),
            "Resource": arns.table(Table.KEYS),
        },
        checkpoint_statement(arns),
    ]
