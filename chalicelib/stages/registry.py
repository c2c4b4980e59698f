"""The stage registry: every stage of the app, stated once.

A stage is one deployment of the same code with one capability: its functions, the
settings it reads (and so the tables and keys it is configured with), and where its
handlers are registered. Everything that lists stages derives the list from here: the
app's wiring (``create_app``), the local stack and its stream poller, the templates and
the generated IAM policies (``infra``), the benchmark, the tests' stage lists and the
docs' stage tables. What each stage may *do* with a table or key (its IAM statements) is
the policy generator's knowledge (``infra/iam``), built from the store's layout.

This module imports nothing of the app's wiring (no Chalice, no boto3): the templates read
it without importing the app. ``register`` names the function that adds the stage's routes
or handlers to a Chalice app (``chalicelib.stages.wiring``), resolved only by ``create_app``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from chalicelib.support.config import Settings
from chalicelib.support.environment import VARIABLE, Key, LocalOnly, Table, Variable
from chalicelib.support.errors import ConfigurationError

API_TIMEOUT_SECONDS = 15  # an API function answers (or 503s) well within API Gateway's 29 s
JOB_TIMEOUT_SECONDS = 900  # a job segment stops at its deadline, before Lambda's maximum
MEMORY_MB = 512
API_FUNCTION = "api_handler"  # Chalice's name for the function that serves a stage's routes


@dataclass(frozen=True)
class StreamDelivery:
    """How the PII table's stream reaches the indexer, deployed (the event source mapping) and
    locally (``tools/streampoll.py``, its stand-in): batches of at most ``batch_size`` records;
    a batch whose invocation fails is split in two and each half delivered again (``bisect``);
    a batch of one that still fails is retried ``max_retry_attempts`` times, then its position
    in the stream is parked in the on-failure destination (an SQS queue; a file locally) and
    the shard moves on. Records the indexer cannot process never fail a batch (it skips and
    counts them); what reaches the destination failed transiently every time."""

    batch_size: int = 100
    bisect: bool = True
    max_retry_attempts: int = 3


STREAM_DELIVERY = StreamDelivery()


class Trigger(StrEnum):
    HTTP = "http"  # API Gateway (every route of the stage)
    STREAM = "stream"  # the PII table's DynamoDB stream (event source mapping)
    INVOKE = "invoke"  # lambda:Invoke, one job segment per invocation


@dataclass(frozen=True)
class Function:
    name: str
    trigger: Trigger
    timeout_seconds: int
    memory_mb: int = MEMORY_MB


@dataclass(frozen=True)
class Stage:
    name: str
    kind: Literal["api", "job"]
    summary: str
    functions: tuple[Function, ...]
    settings: tuple[str, ...]  # Settings fields the stage reads (chalicelib/support/environment.py)
    register: str  # "module:function" adding the stage's routes or handlers to an app

    @property
    def variables(self) -> tuple[Variable, ...]:
        return tuple(VARIABLE[name] for name in self.settings)

    @property
    def deployed_variables(self) -> tuple[Variable, ...]:
        """The variables a deployed function gets (local-only ones never are)."""
        return tuple(v for v in self.variables if not isinstance(v.source, LocalOnly))

    @property
    def tables(self) -> tuple[Table, ...]:
        return tuple(v.source.table for v in self.variables if hasattr(v.source, "table"))

    @property
    def keys(self) -> tuple[Key, ...]:
        return tuple(v.source.key for v in self.variables if hasattr(v.source, "key"))

    @property
    def tenant_keys(self) -> bool:
        """Whether the stage reaches tenants' own KMS keys (by tag, through the registry table)."""
        return Table.TENANTS in self.tables

    @property
    def opens_records(self) -> bool:
        """Whether the stage opens sealed records (kms:Decrypt of their data keys): it keeps the
        cache of unwrapped keys that opening needs."""
        return "reader_key_cache_seconds" in self.settings

    def function_for(self, trigger: Trigger) -> Function:
        """The stage's one function with this trigger."""
        (function,) = (f for f in self.functions if f.trigger == trigger)
        return function


def _api(name: str, summary: str, settings: tuple[str, ...]) -> Stage:
    callers = ("allowed_callers", "local_caller")
    return Stage(
        name,
        "api",
        summary,
        (Function(API_FUNCTION, Trigger.HTTP, API_TIMEOUT_SECONDS),),
        settings + callers,
        f"chalicelib.stages.wiring:register_{name}",
    )


def _job(name: str, summary: str, functions: tuple[Function, ...], settings: tuple[str, ...]) -> Stage:
    return Stage(name, "job", summary, functions, settings, f"chalicelib.stages.wiring:register_{name}")


_READER_KEYS = ("reader_key_cache_seconds", "reader_key_cache_max_entries")
_TENANT_KEYS = ("tenants_table_name", "tenant_key_cache_seconds")
_OPENS = ("table_name", "keys_table_name", "kms_key_id", *_READER_KEYS, *_TENANT_KEYS, "previous_kms_key_ids")

STAGES: tuple[Stage, ...] = (
    _api(
        "writer",
        "creates, replaces, patches and deletes people and secrets: kms:Encrypt only",
        (
            "table_name",
            "keys_table_name",
            "kms_key_id",
            "idempotency_table_name",
            "idempotency_ttl_seconds",
            "ledger_table_name",
            "writer_key_cache_seconds",
            "writer_key_cache_max_records",
            "key_scope",
            *_TENANT_KEYS,
        ),
    ),
    _api(
        "reader",
        "reads people and secrets and searches by email: kms:Decrypt of the full view",
        (
            *_OPENS,
            "fleet_table_name",
            "fleet_mac_key_id",
            "fleet_key_lifetime_seconds",
            "beacon_key_id",
            "beacon_bytes",
            "beacons_table_name",
        ),
    ),
    _api("masked", "reads people's masked projections only", _OPENS),
    _job(
        "indexer",
        "keeps email beacons in step with the PII table's stream; beacon backfill",
        (
            Function("index_beacons", Trigger.STREAM, API_TIMEOUT_SECONDS),
            Function("backfill", Trigger.INVOKE, JOB_TIMEOUT_SECONDS),
        ),
        (*_OPENS, "beacon_key_id", "beacon_bytes", "beacons_table_name", "jobs_table_name", "stream_arn"),
    ),
    _job(
        "offboard",
        "deletes one tenant's items and records the erasure",
        (Function("offboard", Trigger.INVOKE, JOB_TIMEOUT_SECONDS),),
        ("table_name", "idempotency_table_name", "ledger_table_name", "jobs_table_name"),
    ),
    _job(
        "rewrap",
        "moves wrapped data keys to another KMS key (kms:ReEncrypt only)",
        (Function("rewrap", Trigger.INVOKE, JOB_TIMEOUT_SECONDS),),
        ("table_name", "keys_table_name", "jobs_table_name"),
    ),
)
_BY_NAME = {s.name: s for s in STAGES}
STAGE_NAMES: tuple[str, ...] = tuple(_BY_NAME)
API_STAGES: tuple[Stage, ...] = tuple(s for s in STAGES if s.kind == "api")
JOB_STAGES: tuple[Stage, ...] = tuple(s for s in STAGES if s.kind == "job")
API_STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in API_STAGES)
JOB_STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in JOB_STAGES)


def stage(name: str) -> Stage:
    """The stage called ``name``; an unknown name is a startup error that lists the known ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ConfigurationError(
            f"PII_VAULT_ROLE must be one of {', '.join(STAGE_NAMES)}; got {name!r}. Deploy with --stage <one of them>."
        ) from None


def settings_for(environ: Mapping[str, str] | None = None, *, role: str | None = None) -> Settings:
    """The settings of stage ``role`` (default: ``PII_VAULT_ROLE``) from ``environ`` (default: this
    process's environment), reading only the variables the stage declares."""
    from chalicelib.support.config import process_environment, role_from_env

    env = process_environment() if environ is None else environ
    name = role_from_env(env) if role is None else role
    return Settings.from_env(env, role=name, fields=stage(name).settings)


OPERATOR = "operator"  # not a stage: the command-line tools an administrator runs (tools.tenants, shredding)


def operator_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Every variable, for the operator's tools, which act across stages with the operator's own
    credentials (onboarding tenant keys, shredding); never used to build a stage's app."""
    from chalicelib.support.config import process_environment

    env = process_environment() if environ is None else environ
    return Settings.from_env(env, role=OPERATOR, fields=VARIABLE)
