"""Person items and records, both generations, and the one conditional update of a person.

Format v3 items (``layout``'s two-character names, key references instead of wrapped keys)
are what the writer writes; v1/v2 items stay readable, attribute by attribute: a v3 write
of a v1/v2 item replaces the old attributes of what it writes (it cannot rename the others,
whose values it does not know), so an item may hold both generations. Each blob says by its
format where its key slot is (v3: a key reference; v1/v2: the ``slots`` map or an
``mk_<slot>``), and each attribute must hold a blob of its own generation.

The writer never reads: an update names the shape it builds on (``records.PersonShape``:
the version and how the creation time is vouched for) as its condition, and a failed
condition hands back the stored item (``ReturnValuesOnConditionCheckFailure``), whose shape
the next attempt builds on (``person_shape_of``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.domain.validation import PERSON_FIELDS
from chalicelib.envelope.blob import FORMAT_V3
from chalicelib.envelope.key_ref import REF_BYTES
from chalicelib.store import layout
from chalicelib.store.records import (
    ADOPT_V1,
    ADOPT_V2,
    CREATED_LEGACY,
    CREATED_SEALED,
    META_CREATED,
    META_LEGACY,
    META_UPDATED,
    LegacyProof,
    PersonRecord,
    PersonShape,
    PersonWrite,
    shape_of,
)
from chalicelib.support.errors import IntegrityError

_LEGACY_UPDATED = layout.FIELD_PREFIX + META_UPDATED
_LEGACY_MASKED_UPDATED = layout.MASKED_PREFIX + META_UPDATED
_FC, _FU, _FL = (layout.v3_field(name) for name in (META_CREATED, META_UPDATED, META_LEGACY))


def _b(blob: bytes) -> dict[str, Any]:
    return {"B": blob}


def person_item(record: PersonRecord) -> dict[str, Any]:
    """The v3 item a create stores."""
    r = record
    return {
        **layout.person_key(r.customer_id, r.person_id),
        layout.V3_VERSION: {"N": str(r.version)},
        layout.V3_CREATED_AT: {"S": r.created_at},
        layout.V3_UPDATED_AT: {"S": r.updated_at},
        **{layout.v3_field(name): _b(blob) for name, blob in r.fields.items()},
        **{layout.v3_key(slot): _b(ref) for slot, ref in r.refs.items()},
        **{layout.v3_masked(name): _b(blob) for name, blob in r.masked.items()},
        **{layout.v3_masked_key(slot): _b(ref) for slot, ref in r.masked_refs.items()},
    }


def _blob(attribute: Mapping[str, Any]) -> bytes:
    value = attribute["B"]
    return value if isinstance(value, bytes) else bytes(value)


def _one_of(item: Mapping[str, Any], v3: str, legacy: str) -> Any:
    if v3 in item and legacy in item:
        raise IntegrityError("a stored person holds two generations of one attribute")
    return item[v3] if v3 in item else item[legacy]


def _blobs(item: Mapping[str, Any], v3: Mapping[str, str], legacy: Mapping[str, str]) -> dict[str, bytes]:
    """Logical name -> blob, each attribute holding a blob of its own generation, none twice."""
    out: dict[str, bytes] = {}
    for generation, names in ((True, v3), (False, legacy)):
        for attribute, name in names.items():
            if attribute not in item:
                continue
            blob = _blob(item[attribute])
            if not blob or (blob[0] == FORMAT_V3) != generation:
                raise IntegrityError(f"a stored blob of {name} is not in its attribute's format", field=name)
            if name in out:
                raise IntegrityError(f"a stored person holds two blobs of {name}", field=name)
            out[name] = blob
    return out


def _refs(item: Mapping[str, Any], slots: tuple[str, ...], attribute_of: Any) -> dict[str, bytes]:
    refs = {slot: _blob(item[attribute_of(slot)]) for slot in slots if attribute_of(slot) in item}
    if any(len(ref) != REF_BYTES for ref in refs.values()):
        raise IntegrityError("a stored key reference is malformed")
    return refs


def person_from_item(customer_id: str, item: Mapping[str, Any]) -> PersonRecord:
    """The record of a stored person item (either generation, or both); a malformed item is
    an integrity error, never a crash."""
    try:
        legacy_names = layout.V3_VERSION not in item
        proof_blob, proof_binding = item.get(layout.V3_PROOF), item.get(layout.V3_PROOF_BINDING)
        if (proof_blob is None) != (proof_binding is None):
            raise IntegrityError("a stored person's legacy proof is incomplete")
        return PersonRecord(
            customer_id=customer_id,
            person_id=item[layout.SK]["S"][len(layout.PERSON_PREFIX) :],  # from the key, as for secrets
            version=int(_one_of(item, layout.V3_VERSION, layout.VERSION)["N"]),
            created_at=_one_of(item, layout.V3_CREATED_AT, layout.CREATED_AT)["S"],
            updated_at=_one_of(item, layout.V3_UPDATED_AT, layout.UPDATED_AT)["S"],
            fields=_blobs(item, layout.V3_FIELD_ATTRIBUTES, layout.LEGACY_FIELD_ATTRIBUTES),
            refs=_refs(item, layout.V3_FULL_SLOTS, layout.v3_key),
            slots={slot: _blob(value) for slot, value in item.get(layout.SLOTS, {}).get("M", {}).items()},
            masked=_blobs(item, layout.V3_MASKED_ATTRIBUTES, layout.LEGACY_MASKED_ATTRIBUTES),
            masked_refs=_refs(item, layout.V3_MASKED_SLOTS, layout.v3_masked_key),
            masked_slots={
                attribute[len(layout.MASKED_SLOT_PREFIX) :]: _blob(item[attribute])
                for attribute in layout.MASKED_SLOT_ATTRIBUTES
                if attribute in item
            },
            kms_key=item.get(layout.KMS_KEY, {}).get("S", ""),
            proof=None if proof_blob is None or proof_binding is None else _proof(proof_blob, proof_binding),
            legacy_names=legacy_names,
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise IntegrityError("a stored item is malformed") from None


def _proof(blob: Mapping[str, Any], binding: Mapping[str, Any]) -> LegacyProof:
    return LegacyProof(_blob(blob), str(binding["S"]))


def is_person_write(item: Mapping[str, Any] | None, version: int, fields: Mapping[str, bytes]) -> bool:
    """True when ``item`` (handed back by a failed condition) holds exactly this write: its
    version, and its sealed metadata blob (fresh random bytes per write attempt, so no other
    write stores the same). A retry of a write whose answer was lost meets itself (issue 19)."""
    if not item or META_UPDATED not in fields:
        return False
    stored = item.get(_FU, {}).get("B")
    return (
        item.get(layout.V3_VERSION, {}).get("N") == str(version)
        and stored is not None
        and bytes(stored) == fields[META_UPDATED]
    )


def person_shape_of(item: Mapping[str, Any] | None) -> PersonShape | None:
    """The shape of the item a failed condition handed back (None: no such person)."""
    if not item:
        return None
    return shape_of(person_from_item("", item))


class _Expression:
    """Placeholders for one UpdateItem: ``#a<n>`` per attribute name, ``:v<n>`` per value."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attribute: str) -> str:
        for placeholder, known in self.names.items():
            if known == attribute:
                return placeholder
        placeholder = f"#a{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder


def _condition(shape: PersonShape, e: _Expression) -> str:
    """The write's condition: the stored item is at ``shape.version``, its creation time
    vouched for as ``shape.created`` says (the sealed metadata the write carries binds both)."""
    expected = e.value({"N": str(shape.version)})
    if shape.legacy_names:
        version = f"{e.name(layout.VERSION)} = {expected} AND attribute_not_exists({e.name(layout.V3_VERSION)})"
    else:
        version = f"{e.name(layout.V3_VERSION)} = {expected}"
    created_any = (_FC, layout.CREATED_META_ATTRIBUTE)
    if shape.created == CREATED_SEALED:
        created = " OR ".join(f"attribute_exists({e.name(a)})" for a in created_any)
        return f"{version} AND ({created})"
    if shape.created == CREATED_LEGACY:
        return f"{version} AND attribute_exists({e.name(_FL)})"
    absent = [*created_any, _FL, _FU]
    if shape.created == ADOPT_V1:
        absent.append(_LEGACY_UPDATED)
    clauses = [version, *(f"attribute_not_exists({e.name(a)})" for a in absent)]
    if shape.created == ADOPT_V2:
        if shape.proof is None:
            raise ValueError("adopting a v2 legacy record needs its update metadata")
        clauses.append(f"{e.name(_LEGACY_UPDATED)} = {e.value(_b(shape.proof.blob))}")
    return " AND ".join(clauses)


def person_update(write: PersonWrite) -> dict[str, Any]:
    """UpdateItem arguments (but Key and TableName) storing ``write`` over the shape it names."""
    e = _Expression()
    sets: dict[str, Any] = {
        layout.V3_VERSION: {"N": str(write.version)},
        layout.V3_UPDATED_AT: {"S": write.updated_at},
        **{layout.v3_field(name): _b(blob) for name, blob in write.fields.items()},
        **{layout.v3_key(slot): _b(ref) for slot, ref in write.refs.items()},
        **{layout.v3_masked(name): _b(blob) for name, blob in write.masked.items()},
        **{layout.v3_masked_key(slot): _b(ref) for slot, ref in write.masked_refs.items()},
    }
    proof = write.shape.proof if write.shape.created == ADOPT_V2 else None
    if proof is not None:
        sets[layout.V3_PROOF] = _b(proof.blob)
        sets[layout.V3_PROOF_BINDING] = {"S": proof.binding}
    # What the write replaces of the earlier generation (no-ops where absent), and the slots it drops.
    removes = [layout.FIELD_PREFIX + name for name in write.fields if name in PERSON_FIELDS]
    removes += [layout.MASKED_PREFIX + name for name in (*write.masked, *write.drop_masked)]
    removes += [layout.v3_masked(name) for name in write.drop_masked]
    removes += [layout.v3_key(slot) for slot in write.drop_refs if slot not in write.refs]
    removes += [layout.v3_masked_key(slot) for slot in write.drop_masked_refs if slot not in write.masked_refs]
    if write.shape.legacy_names:
        removes += [layout.VERSION, layout.UPDATED_AT, _LEGACY_UPDATED, _LEGACY_MASKED_UPDATED]
    removes = [name for name in dict.fromkeys(removes) if name not in sets]
    expression = "SET " + ", ".join(f"{e.name(a)} = {e.value(v)}" for a, v in sets.items())
    if removes:
        expression += " REMOVE " + ", ".join(e.name(a) for a in removes)
    condition = _condition(write.shape, e)
    return {
        "UpdateExpression": expression,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": e.names,
        "ExpressionAttributeValues": e.values,
    }
