"""The PII table's layout: the only code that knows its key prefixes, attribute names and
sort-key formats, and the beacon table's (keyed as the PII table). Tools and the benchmark
import it instead of spelling keys. How a person item turns into a record and back (and the
conditions of its writes) is ``person_item``; the tables beside it (ledger, idempotency
references, checkpoints, tenant registry) are ``tables``, the key table ``key_table``, the
fleet table ``fleet_table``; the page cursor's own format is ``page_token``.

Single table, ``pk``/``sk`` strings::

    person (v3)     pk=C#<customer>  sk=P#<person_id>
                    v N, c S, u S (version, created_at, updated_at)
                    f<code> B (fields: fn fs fe fd fa; sealed metadata: fc fu fl), k<slot> B
                    (16-byte key references: kc k0 kn ks ke kd ka); the masked view: m<code> B
                    (mn ms me md ma, mu), j<slot> B (j0 jn js je jd ja); fp B + lb S (the v2
                    update metadata a legacy record keeps as proof, records.LegacyProof)
    person (v1/v2)  version N, created_at, updated_at, kms_key, slots {slot: wrapped key},
                    f_<field> B, f__created, f__updated; m_<field> B, m__updated, mk_<slot> B;
                    a v3 write replaces the v1/v2 attributes of what it writes (an item may
                    hold both generations: each blob's format says where its key slot is)
    secret head     pk=C#<customer>  sk=S#<secret_id>        latest N (version counter),
                    incarnation, legacy_until (format v2), deleting (during a DELETE)
    secret version  pk=C#<customer>  sk=S#<secret_id>#V#<0000000001>
                    version N, created_at, kms_key, slots {"0": B}, f_value B (format v2)

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
    CREATE_SLOT,
    FIELD_CODES,
    META_CREATED,
    META_LEGACY,
    META_UPDATED,
    METADATA_CODES,
    SecretHead,
    SecretVersion,
)
from chalicelib.support.errors import IntegrityError

# Attribute names.
PK = "pk"
SK = "sk"
LATEST = "latest"  # a secret head's version counter
INCARNATION = "incarnation"  # a secret head's random id, bound into its versions (v2)
LEGACY_UNTIL = "legacy_until"  # versions up to this number predate the incarnation (v1)
DELETING = "deleting"  # a DELETE is under way: the secret reads as gone
# Secret versions, and person items written before format v3 (read; a v3 write replaces them).
VERSION = "version"
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
# Key prefixes: the sort key says what an item is (no item carries a type attribute; items
# written before 2026-11-30 still carry "person" / "secret" / "secret_version", ignored).
CUSTOMER_PREFIX = "C#"
PERSON_PREFIX = "P#"
SECRET_PREFIX = "S#"  # noqa: S105 - a sort-key prefix, not a credential
_VERSION_INFIX = "#V#"
_VERSION_DIGITS = 10
# The one canonical spelling of a version key: ASCII digits, zero-padded, nothing after.
_SECRET_VERSION_SK = re.compile(rf"S#([A-Za-z0-9_.-]{{1,128}})#V#([0-9]{{{_VERSION_DIGITS}}})", re.ASCII)
# Person items of format v3: two-character names (the item is billed by its names' bytes too).
V3_VERSION = "v"
V3_CREATED_AT = "c"
V3_UPDATED_AT = "u"
V3_PROOF = "fp"
V3_PROOF_BINDING = "lb"
_CODES = {**FIELD_CODES, **METADATA_CODES}
V3_FULL_SLOTS = (CREATE_SLOT, "0", *FIELD_CODES.values())
V3_MASKED_SLOTS = ("0", *FIELD_CODES.values())


def v3_field(name: str) -> str:
    """A field's (or sealed metadata's) blob attribute in the full view: ``f`` + its code."""
    return "f" + _CODES[name]


def v3_masked(name: str) -> str:
    """A field's masked projection (or the masked view's metadata): ``m`` + its code."""
    return "m" + _CODES[name]


def v3_key(slot: str) -> str:
    """The key reference attribute of a full-view slot: ``k`` + the slot."""
    return "k" + slot


def v3_masked_key(slot: str) -> str:
    """The key reference attribute of a masked-view slot: ``j`` + the slot."""
    return "j" + slot


# Attribute -> logical name, per generation and view.
_MASKED_NAMES = (*PERSON_FIELDS, META_UPDATED)
V3_FIELD_ATTRIBUTES = {v3_field(name): name for name in (*PERSON_FIELDS, META_CREATED, META_UPDATED, META_LEGACY)}
V3_MASKED_ATTRIBUTES = {v3_masked(name): name for name in _MASKED_NAMES}
LEGACY_FIELD_ATTRIBUTES = {FIELD_PREFIX + name: name for name in (*PERSON_FIELDS, META_CREATED, META_UPDATED)}
LEGACY_MASKED_ATTRIBUTES = {MASKED_PREFIX + name: name for name in _MASKED_NAMES}
V3_KEY_ATTRIBUTES = tuple(v3_key(slot) for slot in V3_FULL_SLOTS)
V3_MASKED_KEY_ATTRIBUTES = tuple(v3_masked_key(slot) for slot in V3_MASKED_SLOTS)
CREATED_META_ATTRIBUTE = FIELD_PREFIX + META_CREATED
# Every attribute the masked stage reads (and its IAM policy allows): the key, the plaintext
# metadata it reports, the masked projections and their key slots, both generations. Never
# a full-view blob, key reference, ``slots`` or ``kms_key``.
MASKED_SLOT_ATTRIBUTES = tuple(MASKED_SLOT_PREFIX + slot for slot in ("0", *_MASKED_NAMES))
MASKED_VIEW_ATTRIBUTES = (
    PK,
    SK,
    V3_VERSION,
    V3_CREATED_AT,
    V3_UPDATED_AT,
    *V3_MASKED_ATTRIBUTES,
    *V3_MASKED_KEY_ATTRIBUTES,
    VERSION,
    CREATED_AT,
    UPDATED_AT,
    *LEGACY_MASKED_ATTRIBUTES,
    *MASKED_SLOT_ATTRIBUTES,
)

# The indexer (chalicelib/service/indexer.py) reads a person only through this projection (a GetItem
# per stream record, the backfill's Scan) and its IAM policy allows no other attribute: the
# key, the plaintext metadata a record needs, the email's ciphertext and the key slots it may
# name (v3: the create's, a replace's, an email PATCH's reference; v1/v2: ``slots`` whole, as
# IAM conditions name top-level attributes only, and a wrapped key opens nothing without a
# ciphertext). Never another field, a sealed metadata blob, a masked projection or kms_key.
INDEXED_FIELD = "email"
INDEXER_READ_ATTRIBUTES = (
    PK,
    SK,
    V3_VERSION,
    V3_CREATED_AT,
    V3_UPDATED_AT,
    v3_field(INDEXED_FIELD),
    *(v3_key(slot) for slot in (CREATE_SLOT, "0", FIELD_CODES[INDEXED_FIELD])),
    VERSION,
    CREATED_AT,
    UPDATED_AT,
    SLOTS,
    FIELD_PREFIX + INDEXED_FIELD,
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


def person_exists_condition(expected_version: int | None) -> dict[str, Any]:
    """DeleteItem arguments: the person exists (and, given an If-Match version, is at that version
    under either generation's name: a v1/v2 item keeps ``version`` until its first v3 write)."""
    condition: dict[str, Any] = {"ConditionExpression": f"attribute_exists({PK})"}
    if expected_version is not None:
        condition["ConditionExpression"] += " AND (#v = :expected OR #version = :expected)"
        condition["ExpressionAttributeNames"] = {"#v": V3_VERSION, "#version": VERSION}
        condition["ExpressionAttributeValues"] = {":expected": {"N": str(expected_version)}}
    return condition


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


# -- items <-> records (person items: chalicelib/store/person_item.py) -------------------


def slots_attribute(slots: Mapping[str, bytes]) -> dict[str, Any]:
    """Slot -> wrapped data key, as one DynamoDB map of binaries."""
    return {"M": {slot: {"B": blob} for slot, blob in slots.items()}}


def field_attributes(fields: Mapping[str, bytes]) -> dict[str, Any]:
    """Field name -> ciphertext, as ``f_<field>`` binary attributes (secret versions, v1/v2 people)."""
    return {FIELD_PREFIX + name: {"B": blob} for name, blob in fields.items()}


def _projection(attributes: tuple[str, ...], tag: str) -> dict[str, Any]:
    names = {f"#{tag}{index}": name for index, name in enumerate(attributes)}
    return {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}


def masked_projection() -> dict[str, Any]:
    """GetItem/Query/BatchGetItem arguments fetching ``MASKED_VIEW_ATTRIBUTES`` and nothing else."""
    return _projection(MASKED_VIEW_ATTRIBUTES, "m")


def indexer_projection() -> dict[str, Any]:
    """GetItem/Scan arguments fetching ``INDEXER_READ_ATTRIBUTES`` and nothing else."""
    return _projection(INDEXER_READ_ATTRIBUTES, "i")


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
    return {
        **item_key(secret.customer_id, secret_version_key(secret.secret_id, secret.version)),
        VERSION: {"N": str(secret.version)},
        CREATED_AT: {"S": secret.created_at},
        KMS_KEY: {"S": secret.kms_key},
        SLOTS: slots_attribute(secret.slots),
        **field_attributes({SECRET_VALUE: secret.value}),
    }


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


# -- email beacons (a table of their own: <table>-beacons; chalicelib/store/beacons.py) ----------
#
#   beacon item     pk=C#<customer>  sk=P#<person_id>   (as the person's key in the PII table)
#                   beacon B, version N (the person version it was computed from);
#                   after the person's REMOVE: gone BOOL and ttl N (a tombstone, no beacon)
#   GSI beacon-index: hash pk, range beacon, keys only (items without a beacon are not in it)
#
# Only the indexer writes this table and only the reader (search) queries it; the writer has
# no access to it, and the PII table holds no beacon (docs/find-and-forget.md).
BEACON = "beacon"
BEACON_VERSION = "version"
BEACON_GONE = "gone"
BEACON_TTL = "ttl"  # the beacon table's TimeToLiveSpecification attribute (tombstones only)
BEACON_INDEX = "beacon-index"
# What the indexer kept on person items before the beacon table (and the PII table's GSI on it):
# removed from deployed tables by tools/migrate_beacons.py, never written or read any more.
LEGACY_BEACON_ATTRIBUTES = ("beacon", "beacon_version")
LEGACY_BEACON_INDEX = "beacon-index"


def beacon_condition(customer_id: str, beacon: bytes) -> dict[str, Any]:
    """Query arguments for the beacon index: a tenant's people carrying ``beacon``."""
    return {
        "KeyConditionExpression": "#pk = :pk AND #b = :b",
        "ExpressionAttributeNames": {"#pk": PK, "#b": BEACON},
        "ExpressionAttributeValues": {":pk": {"S": partition_key(customer_id)}, ":b": {"B": beacon}},
    }
