"""Every environment variable a stage may read: its setting, and where its value comes from.

Stated once, here. ``chalicelib.support.config`` parses them into ``Settings``; the stage
registry (``chalicelib.stages``) says which of them each stage reads; the templates
(``infra``) and the local stack (``tools.devstack``) derive each stage's function
environment from the same entries, so a deployed stage and its local twin get the same
variables (a test holds them equal).

A variable's **source** tells a template or the local stack how to fill it:

- ``TableName(table)``: the name of one of the tables (the base stack exports it);
- ``KeyArn(key)``: the ARN of one of the KMS keys (pinned by ARN in a deployed function);
- ``StreamArn()``: the PII table's stream;
- ``Callers()``: the stage's caller allow-list (a per-environment parameter);
- ``Tunable()``: a per-environment value with a safe default (deploy params may set it);
- ``LocalOnly()``: never in a deployed function (the local stand-in for the IAM authorizer).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Table(StrEnum):
    """The DynamoDB tables. Their names follow the PII table's (``TABLE_SUFFIXES``)."""

    PII = "pii"
    IDEMPOTENCY = "idempotency"
    LEDGER = "ledger"
    JOBS = "jobs"
    FLEET = "fleet"
    TENANTS = "tenants"
    BEACONS = "beacons"
    KEYS = "keys"


# Each table is named after the PII table: "<pii table><suffix>".
TABLE_SUFFIXES: dict[Table, str] = {
    Table.PII: "",
    Table.IDEMPOTENCY: "-idempotency",
    Table.LEDGER: "-erasures",
    Table.JOBS: "-jobs",
    Table.FLEET: "-fleet",
    Table.TENANTS: "-tenants",
    Table.BEACONS: "-beacons",
    Table.KEYS: "-keys",
}


class Key(StrEnum):
    """The KMS keys a stage may be configured with (tenants' own keys are reached by tag)."""

    DATA = "data"  # the shared symmetric key that wraps data keys
    FLEET_MAC = "fleet-mac"  # HMAC key: the reader fleet's sealing keys
    BEACON_MAC = "beacon-mac"  # HMAC key: email beacons


@dataclass(frozen=True)
class TableName:
    table: Table


@dataclass(frozen=True)
class KeyArn:
    key: Key


@dataclass(frozen=True)
class StreamArn:
    pass


@dataclass(frozen=True)
class Callers:
    pass


@dataclass(frozen=True)
class Tunable:
    pass


@dataclass(frozen=True)
class LocalOnly:
    pass


Source = TableName | KeyArn | StreamArn | Callers | Tunable | LocalOnly


@dataclass(frozen=True)
class Variable:
    """One environment variable: the ``Settings`` field it fills and where its value comes from."""

    field: str
    env: str
    source: Source
    doc: str


ROLE_VARIABLE = "PII_VAULT_ROLE"  # the stage's name; every function has it

VARIABLES: tuple[Variable, ...] = (
    Variable("table_name", "PII_VAULT_TABLE", TableName(Table.PII), "the PII table"),
    Variable("kms_key_id", "PII_VAULT_KMS_KEY_ID", KeyArn(Key.DATA), "the shared KMS key (an ARN when deployed)"),
    Variable("idempotency_table_name", "PII_VAULT_IDEMPOTENCY_TABLE", TableName(Table.IDEMPOTENCY), "idempotency"),
    Variable("ledger_table_name", "PII_VAULT_LEDGER_TABLE", TableName(Table.LEDGER), "the erasure ledger"),
    Variable("jobs_table_name", "PII_VAULT_JOBS_TABLE", TableName(Table.JOBS), "bulk jobs' checkpoints"),
    Variable("fleet_table_name", "PII_VAULT_FLEET_TABLE", TableName(Table.FLEET), "the reader fleet's key table"),
    Variable("tenants_table_name", "PII_VAULT_TENANTS_TABLE", TableName(Table.TENANTS), "the tenant key registry"),
    Variable("beacons_table_name", "PII_VAULT_BEACONS_TABLE", TableName(Table.BEACONS), "email beacons"),
    Variable("keys_table_name", "PII_VAULT_KEYS_TABLE", TableName(Table.KEYS), "data keys by reference"),
    Variable("fleet_mac_key_id", "PII_VAULT_FLEET_MAC_KEY_ID", KeyArn(Key.FLEET_MAC), "the fleet HMAC key"),
    Variable("beacon_key_id", "PII_VAULT_BEACON_KEY_ID", KeyArn(Key.BEACON_MAC), "the beacon HMAC key"),
    Variable("stream_arn", "PII_VAULT_STREAM_ARN", StreamArn(), "the PII table's stream"),
    Variable("allowed_callers", "PII_VAULT_ALLOWED_CALLERS", Callers(), "role ARNs allowed to call the stage"),
    Variable("local_caller", "PII_VAULT_LOCAL_CALLER", LocalOnly(), "chalice local's stand-in caller"),
    Variable("idempotency_ttl_seconds", "PII_VAULT_IDEMPOTENCY_TTL_SECONDS", Tunable(), "idempotency record life"),
    Variable("writer_key_cache_seconds", "PII_VAULT_WRITER_KEY_CACHE_SECONDS", Tunable(), "writer data key life"),
    Variable(
        "writer_key_cache_max_records", "PII_VAULT_WRITER_KEY_CACHE_MAX_RECORDS", Tunable(), "records per data key"
    ),
    Variable("reader_key_cache_seconds", "PII_VAULT_READER_KEY_CACHE_SECONDS", Tunable(), "unwrapped key life"),
    Variable(
        "reader_key_cache_max_entries", "PII_VAULT_READER_KEY_CACHE_MAX_ENTRIES", Tunable(), "unwrapped keys kept"
    ),
    Variable("key_scope", "PII_VAULT_KEY_SCOPE", Tunable(), "pool or tenant data keys"),
    Variable("fleet_key_lifetime_seconds", "PII_VAULT_FLEET_KEY_LIFETIME_SECONDS", Tunable(), "fleet entry life"),
    Variable("tenant_key_cache_seconds", "PII_VAULT_TENANT_KEY_CACHE_SECONDS", Tunable(), "registry answer life"),
    Variable("previous_kms_key_ids", "PII_VAULT_PREVIOUS_KMS_KEY_IDS", Tunable(), "shared keys a rewrap moves from"),
    Variable("beacon_bytes", "PII_VAULT_BEACON_BYTES", Tunable(), "stored beacon length"),
)
VARIABLE: dict[str, Variable] = {variable.field: variable for variable in VARIABLES}
