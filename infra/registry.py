"""INTERIM: the stage facts infra needs, in the shape of the stage registry (``chalicelib.stages``).

Every other infra module imports stages, tables, keys and settings from here and nowhere
else, so that switching to the registry is replacing this module by
``from chalicelib.stages import ...``. Nothing here is infra's knowledge: it is what the
registry states (names, kinds, functions, the settings each stage reads).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from chalicelib import config


class Table(StrEnum):
    pii = "pii"
    idempotency = "idempotency"
    ledger = "ledger"
    jobs = "jobs"
    fleet = "fleet"
    tenants = "tenants"


class Key(StrEnum):
    data = "data"
    fleet_mac = "fleet_mac"
    beacon = "beacon"


@dataclass(frozen=True)
class Function:
    name: str
    trigger: str  # "http" | "stream" | "invoke"
    timeout_seconds: int = 15
    memory_mb: int = 512


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
class LocalOnly:
    pass


@dataclass(frozen=True)
class Tunable:
    default: str
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    is_list: bool = False


Source = TableName | KeyArn | StreamArn | Callers | LocalOnly | Tunable


@dataclass(frozen=True)
class Setting:
    field: str
    env: str
    source: Source


@dataclass(frozen=True)
class Stage:
    name: str
    kind: str  # "api" | "job"
    summary: str
    functions: tuple[Function, ...]
    settings: tuple[Setting, ...]
    tenant_keys: bool = False
    tables: tuple[Table, ...] = field(init=False)
    keys: tuple[Key, ...] = field(init=False)

    def __post_init__(self) -> None:
        sources = [s.source for s in self.settings]
        object.__setattr__(self, "tables", tuple(s.table for s in sources if isinstance(s, TableName)))
        object.__setattr__(self, "keys", tuple(s.key for s in sources if isinstance(s, KeyArn)))


def _tunable(name: str, *, default: object, choices: tuple[str, ...] = (), is_list: bool = False) -> Setting:
    env = f"PII_VAULT_{name}"
    bounds = {v: (lo, hi) for v, lo, hi in config._INT_SETTINGS.values()}.get(env)
    minimum, maximum = bounds if bounds else (None, None)
    return Setting(name.lower(), env, Tunable(str(default), minimum, maximum, choices=choices, is_list=is_list))


_TABLE = Setting("table_name", "PII_VAULT_TABLE", TableName(Table.pii))
_KMS_KEY = Setting("kms_key_id", "PII_VAULT_KMS_KEY_ID", KeyArn(Key.data))
_IDEMPOTENCY = Setting("idempotency_table_name", "PII_VAULT_IDEMPOTENCY_TABLE", TableName(Table.idempotency))
_LEDGER = Setting("ledger_table_name", "PII_VAULT_LEDGER_TABLE", TableName(Table.ledger))
_JOBS = Setting("jobs_table_name", "PII_VAULT_JOBS_TABLE", TableName(Table.jobs))
_TENANTS = Setting("tenants_table_name", "PII_VAULT_TENANTS_TABLE", TableName(Table.tenants))
_FLEET = Setting("fleet_table_name", "PII_VAULT_FLEET_TABLE", TableName(Table.fleet))
_FLEET_KEY = Setting("fleet_mac_key_id", "PII_VAULT_FLEET_MAC_KEY_ID", KeyArn(Key.fleet_mac))
_BEACON_KEY = Setting("beacon_key_id", "PII_VAULT_BEACON_KEY_ID", KeyArn(Key.beacon))
_CALLERS = Setting("allowed_callers", "PII_VAULT_ALLOWED_CALLERS", Callers())
_LOCAL = Setting("local_caller", "PII_VAULT_LOCAL_CALLER", LocalOnly())
_STREAM = Setting("stream_arn", "PII_VAULT_STREAM_ARN", StreamArn())
_READER_CACHE = (
    _tunable("READER_KEY_CACHE_SECONDS", default=config.DEFAULT_READER_KEY_CACHE_SECONDS),
    _tunable("READER_KEY_CACHE_MAX_ENTRIES", default=config.DEFAULT_READER_KEY_CACHE_MAX_ENTRIES),
)
_TENANT_CACHE = _tunable("TENANT_KEY_CACHE_SECONDS", default=config.DEFAULT_TENANT_KEY_CACHE_SECONDS)
_PREVIOUS = _tunable("PREVIOUS_KMS_KEY_IDS", default="", is_list=True)
_BEACON_BYTES = _tunable("BEACON_BYTES", default=config.DEFAULT_BEACON_BYTES)
_API = (Function("api_handler", "http"),)

STAGES: tuple[Stage, ...] = (
    Stage(
        "writer",
        "api",
        "encrypts and writes people and secrets; never decrypts",
        _API,
        (
            _TABLE,
            _KMS_KEY,
            _IDEMPOTENCY,
            _LEDGER,
            _TENANTS,
            _CALLERS,
            _LOCAL,
            _tunable("WRITER_KEY_CACHE_SECONDS", default=config.DEFAULT_WRITER_KEY_CACHE_SECONDS),
            _tunable("WRITER_KEY_CACHE_MAX_RECORDS", default=config.DEFAULT_WRITER_KEY_CACHE_MAX_RECORDS),
            _tunable("KEY_SCOPE", default=config.DEFAULT_KEY_SCOPE, choices=config.KEY_SCOPES),
            _tunable("IDEMPOTENCY_TTL_SECONDS", default=config.DEFAULT_IDEMPOTENCY_TTL_SECONDS),
            _TENANT_CACHE,
        ),
        tenant_keys=True,
    ),
    Stage(
        "reader",
        "api",
        "reads, decrypts and searches; never writes",
        _API,
        (
            _TABLE,
            _KMS_KEY,
            _FLEET,
            _FLEET_KEY,
            _BEACON_KEY,
            _TENANTS,
            _CALLERS,
            _LOCAL,
            *_READER_CACHE,
            _tunable("FLEET_KEY_LIFETIME_SECONDS", default=config.DEFAULT_FLEET_KEY_LIFETIME_SECONDS),
            _BEACON_BYTES,
            _TENANT_CACHE,
            _PREVIOUS,
        ),
        tenant_keys=True,
    ),
    Stage(
        "masked",
        "api",
        "masked projections of people only",
        _API,
        (_TABLE, _KMS_KEY, _TENANTS, _CALLERS, _LOCAL, *_READER_CACHE, _TENANT_CACHE, _PREVIOUS),
        tenant_keys=True,
    ),
    Stage(
        "indexer",
        "job",
        "computes email beacons from the table's stream; backfills them",
        (Function("index_beacons", "stream"), Function("backfill", "invoke", timeout_seconds=900)),
        (
            _TABLE,
            _KMS_KEY,
            _JOBS,
            _BEACON_KEY,
            _STREAM,
            _TENANTS,
            *_READER_CACHE,
            _BEACON_BYTES,
            _TENANT_CACHE,
            _PREVIOUS,
        ),
        tenant_keys=True,
    ),
    Stage(
        "offboard",
        "job",
        "deletes a tenant's records and records the erasure",
        (Function("offboard", "invoke", timeout_seconds=900),),
        (_TABLE, _KMS_KEY, _IDEMPOTENCY, _LEDGER, _JOBS),
    ),
    Stage(
        "rewrap",
        "job",
        "moves data keys from one KMS key to another (ReEncrypt)",
        (Function("rewrap", "invoke", timeout_seconds=900),),
        (_TABLE, _KMS_KEY, _JOBS),
        tenant_keys=True,
    ),
)
API_STAGES = tuple(s for s in STAGES if s.kind == "api")
JOB_STAGES = tuple(s for s in STAGES if s.kind == "job")


def stage(name: str) -> Stage:
    for entry in STAGES:
        if entry.name == name:
            return entry
    raise KeyError(f"unknown stage {name!r}")
