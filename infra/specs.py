"""The tables and KMS keys of one environment, each stated once.

``infra.tables`` and ``infra.keys`` render these specs as CloudFormation resources of the
base stack; ``infra.local`` creates the same tables and keys on moto (``make dev``, the
tests, the benchmark). Attribute names come from the store's layout (and the fleet table's
module), table-name suffixes from the registry's variables: nothing here spells either.

Adding a table: a ``Table`` member and its suffix (chalicelib/support/environment.py), a
``TableSpec`` below, and the grants
of the roles that use it (``infra.iam``). Nothing else names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chalicelib.store import fleet_table, key_table, layout, tables
from chalicelib.support.environment import TABLE_SUFFIXES, Key, Table
from infra.cfn import APP


@dataclass(frozen=True)
class Attribute:
    name: str
    type: str  # "S" | "N" | "B"


@dataclass(frozen=True)
class Index:
    """A global secondary index (on demand, like its table)."""

    name: str
    hash_key: Attribute
    range_key: Attribute | None = None
    projection: str = "KEYS_ONLY"

    def key_schema(self) -> list[dict[str, str]]:
        return _key_schema(self.hash_key, self.range_key)

    def definition(self) -> dict[str, object]:
        return {
            "IndexName": self.name,
            "KeySchema": self.key_schema(),
            "Projection": {"ProjectionType": self.projection},
        }


@dataclass(frozen=True)
class TableSpec:
    """One DynamoDB table: on demand, the AWS owned key at rest (see ``TYPE_SKIPS``).

    ``protected``: deletion protection, and retained when the stack goes (else deleted with
    it). ``backups``: point-in-time recovery. ``skips``: checkov checks this table answers
    differently from other tables, with the reason.
    """

    table: Table
    logical_id: str
    hash_key: Attribute
    range_key: Attribute | None = None
    indexes: tuple[Index, ...] = ()
    stream: str | None = None  # StreamViewType
    ttl: str | None = None  # TimeToLiveSpecification attribute
    backups: bool = True
    protected: bool = True
    output: str = ""  # the base stack's output (and export) of the table's name
    label: str = ""  # the local bootstrap's result keys: <label>_name, <label>_arn
    skips: Mapping[str, str] = field(default_factory=dict)

    @property
    def suffix(self) -> str:
        """The name is the environment's (or the local) base name + the table's suffix (the registry's)."""
        return TABLE_SUFFIXES[self.table]

    def name(self, base: str = APP) -> str:
        return base + self.suffix

    def key_schema(self) -> list[dict[str, str]]:
        return _key_schema(self.hash_key, self.range_key)

    def attribute_definitions(self) -> list[dict[str, str]]:
        """The key attributes, then each index's that the table's key does not already define."""
        attributes: list[Attribute] = []
        for attribute in (self.hash_key, self.range_key, *(a for i in self.indexes for a in (i.hash_key, i.range_key))):
            if attribute is not None and attribute not in attributes:
                attributes.append(attribute)
        return [{"AttributeName": a.name, "AttributeType": a.type} for a in attributes]


@dataclass(frozen=True)
class KeySpec:
    """One KMS key and its alias (``alias/pii-vault-<env><alias_suffix>``; locally
    ``alias/pii-vault<alias_suffix>``). HMAC keys have no automatic rotation."""

    key: Key
    logical_id: str
    alias_suffix: str
    purpose: str  # the key's description after "pii-vault <env>: "
    spec: str = "SYMMETRIC_DEFAULT"
    usage: str = "ENCRYPT_DECRYPT"
    output: str = ""  # the base stack's output (and export) of the key's ARN
    label: str = ""  # the local bootstrap's result keys: <label>_arn, <label>_id
    skips: Mapping[str, str] = field(default_factory=dict)

    @property
    def rotates(self) -> bool:
        return self.spec == "SYMMETRIC_DEFAULT"

    def alias(self, base: str = APP) -> str:
        return f"alias/{base}{self.alias_suffix}"


def _key_schema(hash_key: Attribute, range_key: Attribute | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": hash_key.name, "KeyType": "HASH"}]
    if range_key is not None:
        schema.append({"AttributeName": range_key.name, "KeyType": "RANGE"})
    return schema


_AWS_OWNED_KEY_AT_REST = (
    "SSE under a CMK would need a key-policy statement for DynamoDB with Principal '*'. AWS owned key at rest."
)
_PK, _SK = Attribute(layout.PK, "S"), Attribute(layout.SK, "S")

TABLES: Mapping[Table, TableSpec] = {
    spec.table: spec
    for spec in (
        TableSpec(
            Table.PII,
            "PiiTable",
            _PK,
            _SK,
            # Keys only: the indexer reads each changed person's email attributes by projection.
            # No beacon index: beacons have a table of their own, which the writer cannot reach.
            stream="KEYS_ONLY",
            output="TableName",
            label="table",
        ),
        # Every data key of a format v3 record, filed once by reference (chalicelib/store/key_table.py):
        # losing it loses the records, so it is kept like the PII table.
        TableSpec(
            Table.KEYS,
            "KeyTable",
            Attribute(key_table.PARTITION, "S"),
            Attribute(key_table.REFERENCE, "B"),
            output="KeysTableName",
            label="keys_table",
            skips={"CKV_AWS_119": "Holds KMS-wrapped data keys only; " + _AWS_OWNED_KEY_AT_REST},
        ),
        # Email beacons (chalicelib/store/beacons.py): the indexer's only writes, the reader's search
        # (GSI: hash pk = the tenant, range beacon, keys only); TTL on REMOVE tombstones. Derived
        # data rebuilt by the backfill: no backups (an erased person's beacon must not outlive it
        # in one), deleted with the stack.
        TableSpec(
            Table.BEACONS,
            "BeaconTable",
            _PK,
            _SK,
            indexes=(Index(layout.BEACON_INDEX, _PK, Attribute(layout.BEACON, "B")),),
            ttl=layout.BEACON_TTL,
            backups=False,
            protected=False,
            output="BeaconsTableName",
            label="beacons_table",
            skips={
                "CKV_AWS_119": "Holds keyed HMACs of emails and ids, no PII in clear; " + _AWS_OWNED_KEY_AT_REST,
                "CKV_AWS_28": "No point-in-time recovery on purpose: beacons are derived from the PII table and "
                "rebuilt by the backfill job; a backup would keep erased people's beacons "
                "(docs/find-and-forget.md).",
            },
        ),
        # Idempotency-Key records (aws-lambda-powertools layout): the writer reads them without
        # any read right on the PII table.
        TableSpec(
            Table.IDEMPOTENCY,
            "IdempotencyTable",
            Attribute(tables.IDEMPOTENCY_ID, "S"),
            ttl=tables.IDEMPOTENCY_EXPIRATION,
            output="IdempotencyTableName",
            label="idempotency_table",
        ),
        # The reader fleet's key table: only expiring entries a reader can rebuild from KMS, so no
        # backups (an entry must not outlive its lifetime), no protection, deleted with the stack.
        TableSpec(
            Table.FLEET,
            "FleetKeyTable",
            Attribute(fleet_table.BUCKET, "S"),
            Attribute(fleet_table.REFERENCE, "B"),
            ttl=fleet_table.TTL,
            backups=False,
            protected=False,
            output="FleetTableName",
            label="fleet_table",
            skips={
                "CKV_AWS_119": "Entries are data keys sealed with AES-256-GCM under keys only the reader role can "
                "derive (kms:GenerateMac); table SSE under a CMK would need a key-policy statement for DynamoDB "
                "with Principal '*'. AWS owned key at rest.",
                "CKV_AWS_28": "No point-in-time recovery on purpose: the table holds only expiring, rebuildable "
                "cache entries, and a backup would let an entry outlive its lifetime (and a disabled KMS key).",
            },
        ),
        # The erasure ledger (ids and times only): kept like the PII table, since replaying it
        # after a point-in-time restore is what keeps erased people erased.
        TableSpec(
            Table.LEDGER,
            "ErasureLedgerTable",
            Attribute(tables.LEDGER_PK, "S"),
            Attribute(tables.LEDGER_SK, "S"),
            output="LedgerTableName",
            label="ledger_table",
        ),
        # Checkpoints of the bulk jobs: deleted with the stack, no backups.
        TableSpec(
            Table.JOBS,
            "JobsTable",
            Attribute(tables.JOB_PK, "S"),
            Attribute(tables.JOB_SK, "N"),
            backups=False,
            protected=False,
            output="JobsTableName",
            label="jobs_table",
            skips={
                "CKV_AWS_28": "No point-in-time recovery on purpose: checkpoints only (job id, segment, the scan "
                "position as key ids, counters); a lost checkpoint means a job re-runs its segment, which is "
                "idempotent.",
            },
        ),
        # The tenant key registry: customer id -> own KMS key (written by tools.tenants only).
        # Recoverable and retained like the PII table: it decides which key shreds a tenant, and
        # its history is what shows a downgrade (docs/tenant-keys.md).
        TableSpec(
            Table.TENANTS,
            "TenantsTable",
            Attribute(tables.TENANT_PK, "S"),
            output="TenantsTableName",
            label="tenants_table",
            skips={"CKV_AWS_119": "Holds tenant ids and key ARNs, no PII; " + _AWS_OWNED_KEY_AT_REST},
        ),
    )
}

KEYS: Mapping[Key, KeySpec] = {
    spec.key: spec
    for spec in (
        KeySpec(Key.DATA, "Key", "", "wraps per-record data keys", output="KeyArn", label="key"),
        KeySpec(
            Key.FLEET_MAC,
            "FleetMacKey",
            "-fleet",
            "derives the reader fleet's key-table sealing keys",
            spec="HMAC_256",
            usage="GENERATE_VERIFY_MAC",
            output="FleetMacKeyArn",
            label="fleet_mac_key",
            skips={
                "CKV_AWS_7": "An HMAC_256 key: KMS offers no automatic rotation for HMAC keys. The sealing keys it "
                "derives change every epoch (chalicelib/keys/fleet.py); rotate by a new key, entries expire.",
            },
        ),
        KeySpec(
            Key.BEACON_MAC,
            "BeaconKey",
            "-beacon",
            "email beacons (root MAC of the per-tenant keys)",
            spec="HMAC_256",
            usage="GENERATE_VERIFY_MAC",
            output="BeaconKeyArn",
            label="beacon_key",
            skips={
                "CKV_AWS_7": "An HMAC_256 key: KMS offers no automatic rotation for HMAC keys. Change it by a new key "
                "and the backfill job (docs/find-and-forget.md, 'Changing the beacon key').",
            },
        ),
    )
}
# The PII table's stream, exported for the indexer's event source mapping.
STREAM_OUTPUT = "TableStreamArn"


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    suffix: str  # the queue is named "pii-vault-<env><suffix>"
    output: str  # the base stack's output (and export) of its ARN
    purpose: str
    retention_seconds: int = 14 * 24 * 3600  # SQS's longest: time to look before a message ages out

    def name(self, base: str = APP) -> str:
        return f"{base}{self.suffix}"


# The indexer's on-failure destination: the stream's event source mapping parks here the
# position (shard, sequence numbers, batch size; never a record) of a batch that failed every
# retry (chalicelib.stages.registry.STREAM_DELIVERY). Encrypted at rest (SSE-SQS); an alarm
# reports any message; the indexer's role may only send to it.
FAILURE_QUEUE = QueueSpec(
    "IndexerFailureQueue",
    "-indexer-failures",
    "IndexerFailureQueueArn",
    "stream batches the indexer failed on every retry (positions only)",
)
