"""Layouts of the tables beside the PII table (``layout`` is the PII table's): the
erasure ledger, the idempotency references, the jobs' checkpoints and the tenant key
registry. Key attribute names, key shapes and item shapes, stated once for the stores,
the templates (``infra``) and the local stack's bootstrap::

    ledger (<table>-erasures)   customer S "<kind>#<customer_id>" (hash) + erasure S
                                "<erased_at>#<kind>#<record_id>" (range); customer_id, kind,
                                record_id, erased_at: ids and times only, never PII
    idempotency (<table>-idempotency, Powertools' ``id`` + ``expiration``)
                                id "ref#<customer>#<kind>#<record_id>" -> records SS (Powertools' ids)
    jobs (<table>-jobs)         job S (hash) + segment N (range): last_key S (JSON), counters, done
    tenants (<table>-tenants)   customer_id S (hash): key_arn, owner, state, updated_at
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LEDGER_PK = "customer"  # "<kind>#<customer id>": the partition names who may append (see below)
LEDGER_SK = "erasure"  # "<erased_at>#<kind>#<record id>"
LEDGER_CUSTOMER = "customer_id"
LEDGER_KIND = "kind"
LEDGER_RECORD_ID = "record_id"
LEDGER_ERASED_AT = "erased_at"
# What an entry erased. The writer appends ``person`` and ``secret`` entries (its own erasures,
# dated when it made them); offboarding alone appends ``tenant`` entries and, once a final query
# found the tenant empty, ``tenant_done``, both in the tenant's ``tenant#`` partition. IAM holds
# each role to its partitions (``dynamodb:LeadingKeys``, ``ledger_partitions``), so a leaked
# writer cannot plant a tenant-wide entry. Entries from before this shape have the bare customer
# id as partition key ("legacy": nothing held their appender to their kind).
LEDGER_PERSON = "person"
LEDGER_SECRET = "secret"  # noqa: S105 - a record kind
LEDGER_TENANT = "tenant"
LEDGER_TENANT_DONE = "tenant_done"
_LEDGER_PARTITION_OF = {
    LEDGER_PERSON: LEDGER_PERSON,
    LEDGER_SECRET: LEDGER_SECRET,
    LEDGER_TENANT: LEDGER_TENANT,
    LEDGER_TENANT_DONE: LEDGER_TENANT,
}
LEDGER_KINDS = tuple(_LEDGER_PARTITION_OF)
WRITER_LEDGER_KINDS = (LEDGER_PERSON, LEDGER_SECRET)
OFFBOARD_LEDGER_KINDS = (LEDGER_TENANT, LEDGER_TENANT_DONE)

IDEMPOTENCY_ID = "id"
IDEMPOTENCY_EXPIRATION = "expiration"
REF_PREFIX = "ref#"
REF_TARGET = "record"  # one Powertools record id (references filed before ``records``)
REF_TARGETS = "records"  # string set: every Powertools record id the reference collects
JOB_PK = "job"
JOB_SK = "segment"


def ledger_partition(kind: str, customer_id: str) -> str:
    return f"{_LEDGER_PARTITION_OF[kind]}#{customer_id}"


def ledger_partitions(kinds: tuple[str, ...]) -> list[str]:
    """The ``dynamodb:LeadingKeys`` patterns of the partitions entries of ``kinds`` go to."""
    return sorted({f"{_LEDGER_PARTITION_OF[kind]}#*" for kind in kinds})


def ledger_key(kind: str, customer_id: str, record_id: str, erased_at: str) -> dict[str, Any]:
    return {
        LEDGER_PK: {"S": ledger_partition(kind, customer_id)},
        LEDGER_SK: {"S": f"{erased_at}#{kind}#{record_id}"},
    }


def ledger_item(kind: str, customer_id: str, record_id: str, erased_at: str) -> dict[str, Any]:
    return {
        **ledger_key(kind, customer_id, record_id, erased_at),
        LEDGER_CUSTOMER: {"S": customer_id},
        LEDGER_KIND: {"S": kind},
        LEDGER_RECORD_ID: {"S": record_id},
        LEDGER_ERASED_AT: {"S": erased_at},
    }


def ledger_fields(item: Mapping[str, Any]) -> tuple[str, str, str, str, bool]:
    """(kind, customer id, record id, erased_at, legacy) of a ledger item, as stored: the
    kind from the partition key (which IAM vouches for), the rest from the attributes.
    KeyError/TypeError for an item missing any of them."""
    partition = item[LEDGER_PK]["S"]
    kind, customer = (item[LEDGER_KIND]["S"], partition) if "#" not in partition else partition.split("#", 1)
    legacy = "#" not in partition
    if not legacy and kind == LEDGER_TENANT:
        kind = item[LEDGER_KIND]["S"]  # the tenant partition holds both offboarding kinds
        if kind not in OFFBOARD_LEDGER_KINDS:
            raise TypeError("a ledger entry of another kind in a tenant partition")
    elif not legacy and item[LEDGER_KIND]["S"] != kind:
        raise TypeError("a ledger entry whose kind is not its partition's")
    return kind, customer, item[LEDGER_RECORD_ID]["S"], item[LEDGER_ERASED_AT]["S"], legacy


def ref_prefix(customer_id: str) -> str:
    """Every idempotency reference of a tenant starts with this (the tenant id ends at '#')."""
    return f"{REF_PREFIX}{customer_id}#"


def ref_id(customer_id: str, kind: str, record_id: str) -> str:
    return f"{ref_prefix(customer_id)}{kind}#{record_id}"


def ref_key(customer_id: str, kind: str, record_id: str) -> dict[str, Any]:
    return {IDEMPOTENCY_ID: {"S": ref_id(customer_id, kind, record_id)}}


def ref_targets(item: Mapping[str, Any]) -> list[str]:
    """The Powertools record ids a reference item names (both shapes)."""
    targets = list(item.get(REF_TARGETS, {}).get("SS", []))
    single = item.get(REF_TARGET, {}).get("S")
    return sorted({*targets, *([single] if single else [])})


def job_key(job_id: str, segment: int) -> dict[str, Any]:
    return {JOB_PK: {"S": job_id}, JOB_SK: {"N": str(segment)}}


# -- the tenant key registry (its own table; chalicelib/keys/tenants.py, tools/tenants.py) --
# One item per tenant with its own KMS key: pk = the customer id, the key ARN, who owns the
# key ("pii-vault": created by tools.tenants onboard; "customer": a key in the customer's
# account), its state ("active"; "shredded" once ScheduleKeyDeletion ran) and when.
TENANT_PK = "customer_id"
TENANT_KEY_ARN = "key_arn"
TENANT_KEY_OWNER = "owner"
TENANT_STATE = "state"
TENANT_UPDATED_AT = "updated_at"


def tenant_registry_key(customer_id: str) -> dict[str, Any]:
    return {TENANT_PK: {"S": customer_id}}


def tenant_registry_item(customer_id: str, key_arn: str, owner: str, state: str, at: str) -> dict[str, Any]:
    return {
        **tenant_registry_key(customer_id),
        TENANT_KEY_ARN: {"S": key_arn},
        TENANT_KEY_OWNER: {"S": owner},
        TENANT_STATE: {"S": state},
        TENANT_UPDATED_AT: {"S": at},
    }


def tenant_registry_of(item: Mapping[str, Any]) -> dict[str, str]:
    """A registry item as plain strings (customer_id, key_arn, owner, state, updated_at)."""
    names = (TENANT_PK, TENANT_KEY_ARN, TENANT_KEY_OWNER, TENANT_STATE, TENANT_UPDATED_AT)
    return {name: str(item.get(name, {}).get("S", "")) for name in names}
