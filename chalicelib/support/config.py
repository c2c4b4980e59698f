"""Settings read from the environment, in one place.

Everything else in chalicelib receives a ``Settings`` object (or the values in it);
no other module reads ``os.environ``. Which variables exist and where their values come
from is stated in ``chalicelib.support.environment``; which of them a stage reads, in the
stage registry (``chalicelib.stages``). Settings read for a stage hold only what that stage
declares: reading any other setting is a ``ConfigurationError``, so a stage cannot come to
depend on a variable its templates do not set. boto3 itself still honours the standard AWS
variables (``AWS_ENDPOINT_URL``, credentials), which is how the local stack points
the same code at moto.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.support.environment import ROLE_VARIABLE, TABLE_SUFFIXES, VARIABLE, Table
from chalicelib.support.errors import ConfigurationError

APP_NAME = "pii-vault"
DEFAULT_TABLE_NAME = "pii-vault"
DEFAULT_KMS_KEY_ID = "alias/pii-vault"
# Email beacons: a KMS HMAC_256 key (kms:GenerateMac) and the stored beacon length.
DEFAULT_BEACON_KEY_ID = "alias/pii-vault-beacon"
DEFAULT_BEACON_BYTES = 16  # see chalicelib/keys/beacons.py for the choice
MIN_BEACON_BYTES = 2
MAX_BEACON_BYTES = 32
# Tables named after the PII table (chalicelib/support/environment.py states the suffixes).
LEDGER_SUFFIX = TABLE_SUFFIXES[Table.LEDGER]
JOBS_SUFFIX = TABLE_SUFFIXES[Table.JOBS]
IDEMPOTENCY_SUFFIX = TABLE_SUFFIXES[Table.IDEMPOTENCY]
FLEET_TABLE_SUFFIX = TABLE_SUFFIXES[Table.FLEET]
BEACONS_SUFFIX = TABLE_SUFFIXES[Table.BEACONS]
KEYS_SUFFIX = TABLE_SUFFIXES[Table.KEYS]
KEY_ARN = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/(mrk-)?[0-9a-f-]{32,36}")
# Data key cache bounds (see chalicelib/keys/kms.py for the trade-off). Zero wires the uncached source.
# The writer's pool data key (docs/ARCHITECTURE.md, key hierarchy) lives an hour per warm container.
DEFAULT_WRITER_KEY_CACHE_SECONDS = 3600
DEFAULT_WRITER_KEY_CACHE_MAX_RECORDS = 100_000
DEFAULT_READER_KEY_CACHE_SECONDS = 300
DEFAULT_READER_KEY_CACHE_MAX_ENTRIES = 1000
MAX_KEY_CACHE_SECONDS = 3600
DEFAULT_IDEMPOTENCY_TTL_SECONDS = 24 * 3600
MAX_IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600
# AES-GCM with random nonces: 2**32 seals per key keeps nonce-collision risk under 2**-32;
# a record seals up to 5 fields, so 2**24 records per key leaves a wide margin.
MAX_WRITER_KEY_CACHE_RECORDS = 2**24
MAX_READER_KEY_CACHE_ENTRIES = 100_000
# Data key scope: "pool" (one data key per warm writer container and period, any tenant)
# or "tenant" (one per tenant; the tenant named in the KMS context and so in CloudTrail).
KEY_SCOPES = ("pool", "tenant")
DEFAULT_KEY_SCOPE = "pool"
# The reader fleet's shared key table (chalicelib/keys/fleet.py): entry lifetime; 0 turns it off.
DEFAULT_FLEET_KEY_LIFETIME_SECONDS = 86_400
MAX_FLEET_KEY_LIFETIME_SECONDS = 7 * 86_400
# Callers (chalicelib/api/callers.py): IAM role ARNs, with an optional path; and the STS
# assumed-role ARN of a session of such a role (API Gateway's ``userArn``), which drops the path.
ROLE_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):iam::(?P<account>[0-9]{12}):role/"
    r"(?P<path>(?:[!-.0-~]{1,512}/)*)(?P<name>[A-Za-z0-9_+=,.@-]{1,64})"
)
# Per-tenant KMS keys (chalicelib/keys/tenants.py, tools/tenants.py): the tag every tenant key
# carries (value: the customer id; the stages' IAM policies reach tenant keys by it; tenant-scoped
# callers carry the same tag, tools/access.py), the
# registry table of tenant -> key ARN, how long a stage trusts a registry answer, and the
# waiting period of ScheduleKeyDeletion when an offboarded tenant's key is shredded.
TENANT_KEY_TAG = "pii-vault-tenant"
TENANTS_SUFFIX = TABLE_SUFFIXES[Table.TENANTS]
DEFAULT_TENANT_KEY_CACHE_SECONDS = 300
MAX_TENANT_KEY_CACHE_SECONDS = 3600
MIN_KEY_DELETION_DAYS = 7  # KMS's own bounds for PendingWindowInDays
MAX_KEY_DELETION_DAYS = 30
DEFAULT_KEY_DELETION_DAYS = 30
ASSUMED_ROLE_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):sts::(?P<account>[0-9]{12}):assumed-role/"
    r"(?P<name>[A-Za-z0-9_+=,.@-]{1,64})/(?P<session>[A-Za-z0-9_+=,.@-]{2,64})"
)


@dataclass(frozen=True)
class Settings:
    """What one deployed function needs to know about its world.

    ``declared`` (set by ``from_env``): the fields the stage reads; any other field raises.
    ``None`` (a ``Settings`` built in code, e.g. by a test or the benchmark) allows every field.
    """

    role: str
    table_name: str = DEFAULT_TABLE_NAME
    kms_key_id: str = DEFAULT_KMS_KEY_ID
    region: str | None = None
    app_name: str = APP_NAME
    idempotency_table_name: str = DEFAULT_TABLE_NAME + IDEMPOTENCY_SUFFIX
    idempotency_ttl_seconds: int = DEFAULT_IDEMPOTENCY_TTL_SECONDS
    writer_key_cache_seconds: int = DEFAULT_WRITER_KEY_CACHE_SECONDS
    writer_key_cache_max_records: int = DEFAULT_WRITER_KEY_CACHE_MAX_RECORDS
    reader_key_cache_seconds: int = DEFAULT_READER_KEY_CACHE_SECONDS
    reader_key_cache_max_entries: int = DEFAULT_READER_KEY_CACHE_MAX_ENTRIES
    beacon_key_id: str = DEFAULT_BEACON_KEY_ID
    beacon_bytes: int = DEFAULT_BEACON_BYTES
    beacons_table_name: str = DEFAULT_TABLE_NAME + BEACONS_SUFFIX  # written by the indexer, queried by search
    keys_table_name: str = DEFAULT_TABLE_NAME + KEYS_SUFFIX  # wrapped data keys by reference (format v3)
    ledger_table_name: str = DEFAULT_TABLE_NAME + LEDGER_SUFFIX
    jobs_table_name: str = DEFAULT_TABLE_NAME + JOBS_SUFFIX
    stream_arn: str = ""  # the PII table's stream (indexer stage)
    # Role ARNs whose sessions may call this stage; empty refuses everyone.
    allowed_callers: tuple[str, ...] = ()
    # Outside Lambda only (chalice local, tests): the assumed-role ARN that stands in for
    # the IAM authorizer's identity on requests that carry none.
    local_caller: str | None = None
    key_scope: str = DEFAULT_KEY_SCOPE
    # Reader fleet key table and the KMS HMAC key that derives its sealing keys; no
    # MAC key (or a lifetime of 0) means no fleet table: each container asks KMS itself.
    fleet_table_name: str = DEFAULT_TABLE_NAME + FLEET_TABLE_SUFFIX
    fleet_mac_key_id: str = ""
    fleet_key_lifetime_seconds: int = DEFAULT_FLEET_KEY_LIFETIME_SECONDS
    # Per-tenant keys: the registry table (empty: no registry, every tenant on the shared key)
    # and how long a registry answer is cached; the shared keys a rewrap moves data away from.
    tenants_table_name: str = ""
    tenant_key_cache_seconds: int = DEFAULT_TENANT_KEY_CACHE_SECONDS
    previous_kms_key_ids: tuple[str, ...] = ()
    declared: frozenset[str] | None = field(default=None, compare=False, repr=False)

    def __getattribute__(self, name: str) -> Any:
        if name in VARIABLE:
            declared = object.__getattribute__(self, "declared")
            if declared is not None and name not in declared:
                role = object.__getattribute__(self, "role")
                raise ConfigurationError(f"the {role} stage does not declare {VARIABLE[name].env}")
        return object.__getattribute__(self, name)

    def __post_init__(self) -> None:
        get = object.__getattribute__  # validation sees every field, declared or not
        for name, (_variable, minimum, maximum) in _INT_SETTINGS.items():
            value = get(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
                raise ConfigurationError(_bounds_message(name))
        allowed_callers = get(self, "allowed_callers")
        if not isinstance(allowed_callers, tuple) or not all(
            isinstance(arn, str) and ROLE_ARN.fullmatch(arn) for arn in allowed_callers
        ):
            raise ConfigurationError(
                "PII_VAULT_ALLOWED_CALLERS must be comma-separated IAM role ARNs "
                "such as arn:aws:iam::111122223333:role/app"
            )
        if get(self, "key_scope") not in KEY_SCOPES:
            raise ConfigurationError(f"PII_VAULT_KEY_SCOPE must be one of {', '.join(KEY_SCOPES)}")
        local_caller = get(self, "local_caller")
        if local_caller is not None and not ASSUMED_ROLE_ARN.fullmatch(local_caller):
            raise ConfigurationError(
                "PII_VAULT_LOCAL_CALLER must be an assumed-role ARN such as "
                "arn:aws:sts::000000000000:assumed-role/app/local"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, role: str, fields: Iterable[str]) -> Settings:
        """The settings of stage ``role``, reading only the variables of ``fields`` (its declared
        settings; ``chalicelib.stages.settings_for`` passes the registry's). Unset means the default."""
        env = environ
        declared = frozenset(fields)
        unknown = declared - VARIABLE.keys()
        if unknown:
            raise ConfigurationError(f"unknown settings declared: {', '.join(sorted(unknown))}")
        in_lambda = bool(env.get("AWS_LAMBDA_FUNCTION_NAME"))
        values: dict[str, Any] = {}
        table_name = _str_env(env, "table_name") or DEFAULT_TABLE_NAME
        for name in sorted(declared):
            variable = VARIABLE[name]
            if name in _INT_SETTINGS:
                values[name] = _int_env(env, name)
            elif name in _LIST_SETTINGS:
                values[name] = _list_env(env, variable.env)
            elif name == "table_name":
                values[name] = table_name
            elif name in _TABLE_FIELDS:
                default = "" if name == "tenants_table_name" else table_name + TABLE_SUFFIXES[_TABLE_FIELDS[name]]
                values[name] = _str_env(env, name) or default
            else:
                values[name] = _str_env(env, name)
        if "kms_key_id" in declared:
            values["kms_key_id"] = values["kms_key_id"] or DEFAULT_KMS_KEY_ID
            # In Lambda the key must be pinned by ARN: an alias can be re-pointed by whoever
            # administers aliases, silently moving every new data key under another key.
            # `chalice local`, the tests and `chalice package` (no Lambda) may use the alias.
            if in_lambda and not KEY_ARN.fullmatch(values["kms_key_id"]):
                raise ConfigurationError(
                    "PII_VAULT_KMS_KEY_ID must be the key ARN in a deployed function, not an alias; "
                    "set it from the base stack's KeyArn output (docs/deploy.md)"
                )
        if "beacon_key_id" in declared:
            explicit = values["beacon_key_id"]
            values["beacon_key_id"] = explicit or DEFAULT_BEACON_KEY_ID
            if in_lambda and explicit and not KEY_ARN.fullmatch(explicit):
                raise ConfigurationError("PII_VAULT_BEACON_KEY_ID must be the HMAC key ARN in a deployed function")
        if "key_scope" in declared:
            values["key_scope"] = values["key_scope"] or DEFAULT_KEY_SCOPE
        if "local_caller" in declared:
            # The local caller replaces the IAM authorizer where there is none. A deployed
            # function has one, and must never take an identity from its configuration.
            values["local_caller"] = values["local_caller"] or None
            if values["local_caller"] is not None and in_lambda:
                raise ConfigurationError("PII_VAULT_LOCAL_CALLER is for chalice local and tests; unset it in Lambda")
        return cls(
            role=role,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            declared=declared,
            **values,
        )


def role_from_env(environ: Mapping[str, str]) -> str:
    """The stage this process serves (``PII_VAULT_ROLE``)."""
    return environ.get(ROLE_VARIABLE, "").strip()


# Integer settings: field -> (environment variable, minimum, maximum).
_INT_SETTINGS = {
    "idempotency_ttl_seconds": ("PII_VAULT_IDEMPOTENCY_TTL_SECONDS", 60, MAX_IDEMPOTENCY_TTL_SECONDS),
    "writer_key_cache_seconds": ("PII_VAULT_WRITER_KEY_CACHE_SECONDS", 0, MAX_KEY_CACHE_SECONDS),
    "writer_key_cache_max_records": ("PII_VAULT_WRITER_KEY_CACHE_MAX_RECORDS", 0, MAX_WRITER_KEY_CACHE_RECORDS),
    "reader_key_cache_seconds": ("PII_VAULT_READER_KEY_CACHE_SECONDS", 0, MAX_KEY_CACHE_SECONDS),
    "reader_key_cache_max_entries": ("PII_VAULT_READER_KEY_CACHE_MAX_ENTRIES", 0, MAX_READER_KEY_CACHE_ENTRIES),
    "beacon_bytes": ("PII_VAULT_BEACON_BYTES", MIN_BEACON_BYTES, MAX_BEACON_BYTES),
    "fleet_key_lifetime_seconds": ("PII_VAULT_FLEET_KEY_LIFETIME_SECONDS", 0, MAX_FLEET_KEY_LIFETIME_SECONDS),
    "tenant_key_cache_seconds": ("PII_VAULT_TENANT_KEY_CACHE_SECONDS", 0, MAX_TENANT_KEY_CACHE_SECONDS),
}
_LIST_SETTINGS = frozenset({"allowed_callers", "previous_kms_key_ids"})
_TABLE_FIELDS = {
    variable.field: variable.source.table for variable in VARIABLE.values() if hasattr(variable.source, "table")
}


def _bounds_message(field: str) -> str:
    variable, minimum, maximum = _INT_SETTINGS[field]
    return f"{variable} must be an integer from {minimum} to {maximum}"


def _str_env(env: Mapping[str, str], field: str) -> str:
    return env.get(VARIABLE[field].env, "").strip()


def _int_env(env: Mapping[str, str], field: str) -> int:
    """Unset means the field's default; anything but a plain integer is a startup error."""
    raw = env.get(_INT_SETTINGS[field][0])
    if raw is None or raw.strip() == "":
        return Settings.__dataclass_fields__[field].default  # type: ignore[return-value]
    if not re.fullmatch(r"[0-9]{1,10}", raw.strip()):
        raise ConfigurationError(_bounds_message(field))
    return int(raw.strip())


def _list_env(env: Mapping[str, str], variable: str) -> tuple[str, ...]:
    """Comma-separated; unset or blank is the empty list, an empty entry is an error."""
    raw = env.get(variable, "").strip()
    if not raw:
        return ()
    items = tuple(part.strip() for part in raw.split(","))
    if not all(items):
        raise ConfigurationError(f"{variable} has an empty entry")
    return items


def process_environment() -> Mapping[str, str]:
    """This process's environment: the one place chalicelib reads ``os.environ``."""
    return os.environ


def setting_domain(field_name: str) -> tuple[str, tuple[object, ...]]:
    """What values a setting takes, for a template parameter that checks them before a deploy:
    ``("int", (minimum, maximum))``, ``("choice", choices)``, ``("list", ())`` or ``("text", ())``."""
    if field_name in _INT_SETTINGS:
        _, minimum, maximum = _INT_SETTINGS[field_name]
        return "int", (minimum, maximum)
    if field_name == "key_scope":
        return "choice", KEY_SCOPES
    if field_name in _LIST_SETTINGS:
        return "list", ()
    return "text", ()


def default_text(field_name: str) -> str:
    """A setting's default as its environment variable would spell it (templates, local stack)."""
    value = Settings.__dataclass_fields__[field_name].default
    if isinstance(value, tuple):
        return ",".join(value)
    return "" if value is None else str(value)
