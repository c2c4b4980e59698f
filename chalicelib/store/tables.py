"""Layouts of the tables beside the PII table (``layout`` is the PII table's): the
erasure ledger, the idempotency references, the jobs' checkpoints and the tenant key
registry. Key attribute names, key shapes and item shapes, stated once for the stores,
the templates (``infra``) and the local stack's bootstrap::

    ledger (<table>-erasures)   customer S (hash) + erasure S "<erased_at>#<kind>#<record_id>" (range)
                                kind, record_id, erased_at: ids and times only, never PII
    idempotency (<table>-idempotency, Powertools' ``id`` + ``expiration``)
                                id "ref#<customer>#<kind>#<record_id>" -> record (Powertools' id)
    jobs (<table>-jobs)         job S (hash) + segment N (range): last_key S (JSON), counters, done
    tenants (<table>-tenants)   customer_id S (hash): key_arn, owner, state, updated_at
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LEDGER_PK = "customer"
LEDGER_SK = "erasure"
LEDGER_KIND = "kind"
LEDGER_RECORD_ID = "record_id"
LEDGER_ERASED_AT = "erased_at"
IDEMPOTENCY_ID = "id"
IDEMPOTENCY_EXPIRATION = "expiration"
REF_PREFIX = "ref#"
REF_TARGET = "record"
JOB_PK = "job"
JOB_SK = "segment"


def ledger_item(customer_id: str, kind: str, record_id: str, erased_at: str) -> dict[str, Any]:
    return {
        LEDGER_PK: {"S": customer_id},
        LEDGER_SK: {"S": f"{erased_at}#{kind}#{record_id}"},
        LEDGER_KIND: {"S": kind},
        LEDGER_RECORD_ID: {"S": record_id},
        LEDGER_ERASED_AT: {"S": erased_at},
    }


def ledger_entry_of(item: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(customer_id, kind, record_id, erased_at) of a ledger item."""
    return (item[LEDGER_PK]["S"], item[LEDGER_KIND]["S"], item[LEDGER_RECORD_ID]["S"], item[LEDGER_ERASED_AT]["S"])


def ref_prefix(customer_id: str) -> str:
    """Every idempotency reference of a tenant starts with this (the tenant id ends at '#')."""
    return f"{REF_PREFIX}{customer_id}#"


def ref_id(customer_id: str, kind: str, record_id: str) -> str:
    return f"{ref_prefix(customer_id)}{kind}#{record_id}"


def ref_key(customer_id: str, kind: str, record_id: str) -> dict[str, Any]:
    return {IDEMPOTENCY_ID: {"S": ref_id(customer_id, kind, record_id)}}


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
