"""Person items as earlier versions wrote them (format v1 and v2), for the tests of old items.

The writer writes format v3 only; readers still read v1 and v2, and a v3 write of an old item
must keep it readable. These builders seal exactly what the v1/v2 writers sealed (the layouts
frozen by tests/vectors/field-v1.json and field-v2.json, written here with raw AES-GCM and the
v2 sealing seam), wrapping each data key with the given ``wrap`` (moto's KMS, or the fake).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.domain import masking
from chalicelib.domain.validation import encode_field
from chalicelib.envelope import bound_metadata
from chalicelib.envelope.format import (
    FORMAT_V2,
    KIND_POOL,
    KIND_TENANT,
    RecordRef,
    encryption_context,
    field_aad,
    seal_field,
    view_kind,
)
from chalicelib.store import layout
from chalicelib.store.records import META_CREATED

Wrap = Callable[[bytes, Mapping[str, str]], tuple[bytes, str]]  # (data key, context) -> (wrapped, key ARN)
APP = "pii-vault"


def moto_wrap(kms: Any, key_id: str = "alias/pii-vault") -> Wrap:
    def wrap(data_key: bytes, context: Mapping[str, str]) -> tuple[bytes, str]:
        answer = kms.encrypt(KeyId=key_id, Plaintext=data_key, EncryptionContext=dict(context))
        return answer["CiphertextBlob"], answer["KeyId"]

    return wrap


def _v1_blob(data_key: bytes, ref: RecordRef, field: str, slot: str, plaintext: bytes) -> bytes:
    nonce = os.urandom(12)
    raw = slot.encode("ascii")
    sealed = AESGCM(data_key).encrypt(nonce, plaintext, field_aad(ref, field, slot))
    return bytes([1, len(raw)]) + raw + nonce + sealed


def person_item(
    customer_id: str,
    person_id: str,
    person: Mapping[str, Any],
    wrap: Wrap,
    *,
    at: str = "2025-06-01T08:00:00.000Z",
    version: int = 1,
    fmt: int = FORMAT_V2,
    created_sealed: bool = True,
    updated_meta: bool = True,
    masked: bool = True,
    kind: int = KIND_POOL,
) -> dict[str, Any]:
    """A stored person as the v2 writer made it (``fmt`` 2: sealed creation and update metadata,
    the masked view) or the v1 writer (``fmt`` 1: v1 blobs, no metadata, no masked view).
    ``created_sealed`` False and ``updated_meta`` True: created in v1, then written by a v2 writer
    (its update metadata says ``created=legacy``)."""
    ref = RecordRef(customer_id, "person", person_id)
    kind = KIND_TENANT if fmt == 1 else kind  # v1 data keys are wrapped under the tenant context
    data_key = os.urandom(32)
    slot = META_CREATED if fmt == FORMAT_V2 and created_sealed else "0"
    wrapped, key_arn = wrap(data_key, encryption_context(APP, customer_id, kind))
    fields = {name: encode_field(value) for name, value in person.items()}
    if fmt == 1:
        blobs = {name: _v1_blob(data_key, ref, name, slot, value) for name, value in fields.items()}
    else:
        blobs = {
            name: seal_field(data_key, ref, name, slot, value, kind=kind, version=FORMAT_V2)
            for name, value in fields.items()
        }
    if fmt == FORMAT_V2 and updated_meta:
        binding = bound_metadata.person_updated(version, at, created_sealed)
        blobs["_updated"] = seal_field(
            data_key, ref, "_updated", slot, b"", kind=kind, binding=binding, version=FORMAT_V2
        )
        if created_sealed:
            binding = bound_metadata.person_created(at)
            blobs["_created"] = seal_field(
                data_key, ref, "_created", slot, b"", kind=kind, binding=binding, version=FORMAT_V2
            )
    item: dict[str, Any] = {
        **layout.person_key(customer_id, person_id),
        layout.VERSION: {"N": str(version)},
        layout.CREATED_AT: {"S": at},
        layout.UPDATED_AT: {"S": at},
        layout.KMS_KEY: {"S": key_arn},
        layout.SLOTS: layout.slots_attribute({slot: wrapped}),
        **{layout.FIELD_PREFIX + name: {"B": blob} for name, blob in blobs.items()},
    }
    if fmt == FORMAT_V2 and masked:
        masked_kind = view_kind(kind, "masked")
        masked_key = os.urandom(32)
        masked_wrapped, _ = wrap(masked_key, encryption_context(APP, customer_id, masked_kind))
        projections = {name: encode_field(value) for name, value in masking.masked(dict(person)).items()}
        for name, value in projections.items():
            blob = seal_field(masked_key, ref, name, "0", value, kind=masked_kind, version=FORMAT_V2)
            item[layout.MASKED_PREFIX + name] = {"B": blob}
        binding = bound_metadata.person_masked_updated(version, at)
        blob = seal_field(masked_key, ref, "_updated", "0", b"", kind=masked_kind, binding=binding, version=FORMAT_V2)
        item[layout.MASKED_PREFIX + "_updated"] = {"B": blob}
        item[layout.MASKED_SLOT_PREFIX + "0"] = {"B": masked_wrapped}
    return item
