"""The PII table's layout: the only code that knows its key prefixes, attribute names and
sort-key formats. Tools and the benchmark import it instead of spelling keys. The tables
beside it (ledger, idempotency references, checkpoints, tenant registry) are ``tables``;
the page cursor's own format is ``page_token``.

Single table, ``pk``/``sk`` strings::

    person          pk=C#<customer>  sk=P#<person_id>
                    version N, created_at, updated_at, kms_key, slots {slot: B}, f_<field> B
                    (format v2) f__created, f__updated: sealed metadata, see records.META_*
                    (masked view) m_<field>, m__updated: masked projections and their sealed
                    metadata, mk_<slot> B: their wrapped data keys (KMS context view=masked)
                    beacon B, beacon_version N (indexer)        GSI beacon-index: pk + beacon
    secret head     pk=C#<customer>  sk=S#<secret_id>        latest N (version counter),
                    incarnation, legacy_until (format v2), deleting (during a DELETE)
    secret version  pk=C#<customer>  sk=S#<secret_id>#V#<0000000001>
                    version N, created_at, kms_key, slots {"0": B}, f_value B

Identity (tenant, record id, version) is always read from the key, never from attributes
a tamperer could edit: the AAD is then built from where an item sits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from chalicelib.domain.validation import PERSON_FIELDS
from chalicelib.store.page_token import decode_page_token, encode_page_token
from chalicelib.store.records import (
    META_CREATED,
    META_UPDATED,
    PersonRecord,
    PersonWrite,
    SecretHead,
    SecretVersion,
)
from chalicelib.support.errors import IntegrityError

# Attribute names.
PK = "pk"
SK = "sk"
VERSION = "version"
LATEST = "latest"  # a secret head's version counter
INCARNATION = "incarnation"  # a secret head's random id, bound into its versions (v2)
LEGACY_UNTIL = "legacy_until"  # versions up to this number predate the incarnation (v1)
DELETING = "deleting"  # a DELETE is under way: the secret reads as gone
CREATED_AT = "created_at"
UPDATED_AT = "updated_at"
KMS_KEY = "kms_key"
SLOTS = "slots"
FIELD_PREFIX = "f_"
# The masked view: projections m_<field> (and m__updated), each data key's slot mk_<slot>, as
# top-level attributes so the masked stage's IAM policy can name every attribute it may fetch.
MASKED_PREFIX = "m_"
MASKED_SLOT_PREFIX = "mk_"
SECRET_VALUE = "value"  # the one field of a secret version  # noqa: S105 - a field name
# Email beacon of a person (written by the indexer only) and the item version it was computed from.
BEACON = "beacon"
BEACON_VERSION = "beacon_version"
# Sparse GSI: hash PK (the tenant), range BEACON, keys only. Items without a beacon are not in it.
BEACON_INDEX = "beacon-index"


# Key prefixes: the sort key says what an item is (no item carries a type attribute; items
# written before 2026-11-30 still carry "person" / "secret" / "secret_version", ignored).
CUSTOMER_PREFIX = "C#"
PERSON_PREFIX = "P#"
SECRET_PREFIX = "S#"  # noqa: S105 - a sort-key prefix, not a credential
_VERSION_INFIX = "#V#"
_VERSION_DIGITS = 10
# The one canonical spelling of a version key: ASCII digits, zero-padded, nothing after.
_SECRET_VERSION_SK = re.compile(rf"S#([A-Za-z0-9_.-]{{1,128}})#V#([0-9]{{{_VERSION_DIGITS}}})", re.ASCII)
CREATED_META_ATTRIBUTE = FIELD_PREFIX + META_CREATED
# Every attribute the masked stage reads (and its IAM policy allows): the key, the plaintext
# metadata it reports, the masked projections and their key slots ("0" for POST/PUT, the
# field's own name for PATCH, as in the full view). Never f_*, slots or kms_key.
_MASKED_NAMES = (*PERSON_FIELDS, META_UPDATED)
MASKED_SLOT_ATTRIBUTES = tuple(MASKED_SLOT_PREFIX + slot for slot in ("0", *_MASKED_NAMES))
MASKED_VIEW_ATTRIBUTES = (
    PK,
    SK,
    VERSION,
    CREATED_AT,
    UPDATED_AT,
    *(MASKED_PREFIX + name for name in _MASKED_NAMES),
    *MASKED_SLOT_ATTRIBUTES,
)

# The indexer (chalicelib/service/indexer.py) reads a person only through this projection (a GetItem
# per stream record, the backfill's Scan) and its IAM policy allows no other attribute: the
# key, the plaintext metadata a record needs, the key slots, the email's ciphertext and the
# beacon. Never another field, a sealed metadata blob, a masked projection or kms_key.
# ``slots`` whole: IAM conditions name top-level attributes only, and a wrapped key opens
# nothing without a ciphertext; the email names its slot in its blob header.
INDEXED_FIELD = "email"
INDEXER_READ_ATTRIBUTES = (
    PK,
    SK,
    VERSION,
    CREATED_AT,
    UPDATED_AT,
    SLOTS,
    FIELD_PREFIX + INDEXED_FIELD,
    BEACON,
    BEACON_VERSION,
)
# A rewrap (chalicelib/service/rewrap.py) updates only these: the item's key, the key slots
# (full view), the masked view's key slots and the KMS key id; its IAM policy allows no other.
REWRAP_WRITE_ATTRIBUTES = (KMS_KEY, PK, SK, SLOTS, *MASKED_SLOT_ATTRIBUTES)

R = TypeVar("R")


# -- keys -------------------------------------------------------------------------


def partition_key(customer_id: str) -> str:
    return f"{CUSTOMER_PREFIX}{customer_id}"


def customer_of(partition: str) -> str | None:
    """The tenant of a partition key, or None for a key that is not a tenant's."""
    return partition[len(CUSTOMER_PREFIX) :] if partition.startswith(CUSTOMER_PREFIX) else None


def person_sort_key(person_id: str) -> str:
    return f"{PERSON_PREFIX}{person_id}"


def person_id_of(sort_key: str) -> str | None:
    """The person id of a sort key, or None for a key that is not a person's."""
    return sort_key[len(PERSON_PREFIX) :] if sort_key.startswith(PERSON_PREFIX) else None


def secret_head_key(secret_id: str) -> str:
    return f"{SECRET_PREFIX}{secret_id}"


def secret_version_prefix(secret_id: str) -> str:
    return f"{SECRET_PREFIX}{secret_id}{_VERSION_INFIX}"


def secret_version_key(secret_id: str, version: int) -> str:
    return f"{secret_version_prefix(secret_id)}{version:0{_VERSION_DIGITS}d}"


def secret_version_of(sort_key: str) -> tuple[str, int]:
    """(secret id, version) of a secret version's sort key, in its canonical form only.

    Any other spelling of a number (unpadded, padded with a space, other digits) was
    written by someone other than pii-vault: an integrity error, never a version.
    """
    match = _SECRET_VERSION_SK.fullmatch(sort_key)
    if match is None:
        raise IntegrityError("a stored secret version key is not in canonical form")
    return match.group(1), int(match.group(2))


def item_key(customer_id: str, sort_key: str) -> dict[str, Any]:
    """The DynamoDB key of an item."""
    return {PK: {"S": partition_key(customer_id)}, SK: {"S": sort_key}}


def person_key(customer_id: str, person_id: str) -> dict[str, Any]:
    return item_key(customer_id, person_sort_key(person_id))


def key_condition(customer_id: str, sort_prefix: str | None = None) -> dict[str, Any]:
    """Query arguments for a tenant's items, optionally only those whose sort key has ``sort_prefix``."""
    values: dict[str, Any] = {":pk": {"S": partition_key(customer_id)}}
    expression = f"{PK} = :pk"
    if sort_prefix is not None:
        values[":prefix"] = {"S": sort_prefix}
        expression += f" AND begins_with({SK}, :prefix)"
    return {"KeyConditionExpression": expression, "ExpressionAttributeValues": values}


def people_condition(customer_id: str) -> dict[str, Any]:
    return key_condition(customer_id, PERSON_PREFIX)


def secret_versions_condition(customer_id: str, secret_id: str) -> dict[str, Any]:
    return key_condition(customer_id, secret_version_prefix(secret_id))


# -- page cursor (chalicelib/store/page_token.py: the token's own format) ------------------


def page_token_after(last_key: Mapping[str, Any] | None) -> str | None:
    """The cursor continuing after ``last_key`` (an item or a key of one; None: no more pages)."""
    return encode_page_token(last_key[SK]["S"][len(PERSON_PREFIX) :]) if last_key else None


def page_start(customer_id: str, token: str | None) -> dict[str, Any]:
    """Query arguments resuming after the cursor ``token`` (none for the first page)."""
    return {} if token is None else {"ExclusiveStartKey": person_key(customer_id, decode_page_token(token))}


# -- items <-> records ---------------------------------------------------------------


def slots_attribute(slots: Mapping[str, bytes]) -> dict[str, Any]:
    """Slot name -> wrapped data key, as one DynamoDB map of binaries."""
    return {"M": {slot: {"B": blob} for slot, blob in slots.items()}}


def field_attributes(fields: Mapping[str, bytes]) -> dict[str, Any]:
    """Field name -> ciphertext, as ``f_<field>`` binary attributes."""
    return {FIELD_PREFIX + name: {"B": blob} for name, blob in fields.items()}


def _sealed_item(
    key: dict[str, Any],
    version: int,
    created_at: str,
    kms_key: str,
    slots: Mapping[str, bytes],
    fields: Mapping[str, bytes],
) -> dict[str, Any]:
    return {
        **key,
        VERSION: {"N": str(version)},
        CREATED_AT: {"S": created_at},
        KMS_KEY: {"S": kms_key},
        SLOTS: slots_attribute(slots),
        **field_attributes(fields),
    }


def masked_attributes(masked: Mapping[str, bytes], masked_slots: Mapping[str, bytes]) -> dict[str, Any]:
    """The masked view's attributes: ``m_<field>`` projections and ``mk_<slot>`` wrapped keys."""
    return {
        **{MASKED_PREFIX + name: {"B": blob} for name, blob in masked.items()},
        **{MASKED_SLOT_PREFIX + slot: {"B": blob} for slot, blob in masked_slots.items()},
    }


def _projection(attributes: tuple[str, ...], tag: str) -> dict[str, Any]:
    names = {f"#{tag}{index}": name for index, name in enumerate(attributes)}
    return {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}


def masked_projection() -> dict[str, Any]:
    """GetItem/Query/BatchGetItem arguments fetching ``MASKED_VIEW_ATTRIBUTES`` and nothing else."""
    return _projection(MASKED_VIEW_ATTRIBUTES, "m")


def indexer_projection() -> dict[str, Any]:
    """GetItem/Scan arguments fetching ``INDEXER_READ_ATTRIBUTES`` and nothing else."""
    return _projection(INDEXER_READ_ATTRIBUTES, "i")


def person_item(record: PersonRecord) -> dict[str, Any]:
    key = person_key(record.customer_id, record.person_id)
    r = record
    item = _sealed_item(key, r.version, r.created_at, r.kms_key, r.slots, r.fields)
    return {**item, UPDATED_AT: {"S": r.updated_at}, **masked_attributes(r.masked, r.masked_slots)}


def person_removals(write: PersonWrite) -> list[str]:
    """Attribute paths a write removes: the key slots it drops and does not rewrite."""
    masked = [MASKED_SLOT_PREFIX + slot for slot in write.drop_masked_slots if slot not in write.masked_slots]
    masked += [MASKED_PREFIX + name for name in write.drop_masked if name not in write.masked]
    return [f"{SLOTS}.{slot}" for slot in write.drop_slots if slot not in write.slots] + masked


def person_updates(write: PersonWrite) -> dict[str, dict[str, Any]]:
    """Attribute path -> new value. Slots are set one by one: a replace keeps the slot
    of the creation metadata, which only the create writes."""
    slots = {f"{SLOTS}.{slot}": {"B": blob} for slot, blob in write.slots.items()}
    return {
        VERSION: {"N": str(write.version)},
        UPDATED_AT: {"S": write.updated_at},
        KMS_KEY: {"S": write.kms_key},
        **slots,
        **field_attributes(write.fields),
        **masked_attributes(write.masked, write.masked_slots),
    }


def person_version_of(item: Mapping[str, Any] | None) -> tuple[int | None, bool]:
    """(stored version, has sealed creation metadata) of an item a failed condition handed back."""
    if not item:
        return None, False
    try:
        return int(item[VERSION]["N"]), CREATED_META_ATTRIBUTE in item
    except (KeyError, TypeError, ValueError):
        raise IntegrityError("a stored item is malformed") from None


def secret_head_of(item: Mapping[str, Any] | None) -> SecretHead:
    """The head an item holds (an empty head for none). Plaintext metadata: what the
    versions' AAD binds is checked when a version is opened."""
    if not item:
        return SecretHead()
    try:
        incarnation = item.get(INCARNATION, {}).get("S")
        return SecretHead(
            latest=int(item.get(LATEST, {}).get("N", 0)),
            incarnation=incarnation,
            legacy_until=int(item.get(LEGACY_UNTIL, {}).get("N", 0)),
            deleting=bool(item.get(DELETING, {}).get("BOOL", False)),
        )
    except (TypeError, ValueError, AttributeError):
        raise IntegrityError("a stored secret head is malformed") from None


def secret_version_item(secret: SecretVersion) -> dict[str, Any]:
    key = item_key(secret.customer_id, secret_version_key(secret.secret_id, secret.version))
    s = secret
    return _sealed_item(key, s.version, s.created_at, s.kms_key, s.slots, {SECRET_VALUE: s.value})


def _blob(attribute: dict[str, Any]) -> bytes:
    value = attribute["B"]
    return value if isinstance(value, bytes) else bytes(value)


def _slots_from(item: dict[str, Any]) -> dict[str, bytes]:
    return {slot: _blob(value) for slot, value in item.get(SLOTS, {}).get("M", {}).items()}


def _parsed(parse: Callable[[str, dict[str, Any]], R]) -> Callable[[str, dict[str, Any]], R]:
    """A stored item missing an attribute or holding the wrong type was tampered with:
    an integrity error, like a ciphertext that fails authentication, never a crash."""

    def parse_checked(customer_id: str, item: dict[str, Any]) -> R:
        try:
            return parse(customer_id, item)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise IntegrityError("a stored item is malformed") from None

    return parse_checked


@_parsed
def person_from_item(customer_id: str, item: dict[str, Any]) -> PersonRecord:
    return PersonRecord(
        customer_id=customer_id,
        person_id=item[SK]["S"][len(PERSON_PREFIX) :],  # from the key, as for secrets
        version=int(item[VERSION]["N"]),
        created_at=item[CREATED_AT]["S"],
        updated_at=item[UPDATED_AT]["S"],
        kms_key=item.get(KMS_KEY, {}).get("S", ""),
        slots=_slots_from(item),
        fields={
            name[len(FIELD_PREFIX) :]: _blob(value) for name, value in item.items() if name.startswith(FIELD_PREFIX)
        },
        masked={
            name[len(MASKED_PREFIX) :]: _blob(value) for name, value in item.items() if name.startswith(MASKED_PREFIX)
        },
        masked_slots={
            name[len(MASKED_SLOT_PREFIX) :]: _blob(value)
            for name, value in item.items()
            if name.startswith(MASKED_SLOT_PREFIX)
        },
    )


@_parsed
def secret_from_item(customer_id: str, item: dict[str, Any]) -> SecretVersion:
    # Identity comes from the key: bytes moved between versions then fail the AAD.
    secret_id, version = secret_version_of(item[SK]["S"])
    return SecretVersion(
        customer_id=customer_id,
        secret_id=secret_id,
        version=version,
        created_at=item[CREATED_AT]["S"],
        kms_key=item.get(KMS_KEY, {}).get("S", ""),
        slots=_slots_from(item),
        value=_blob(item.get(FIELD_PREFIX + SECRET_VALUE, {"B": b""})),
    )
