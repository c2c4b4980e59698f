"""The stored field blob and its AAD: formats v1 and v2 (read), v3 (written for people).

Stored field blob::

    v1: 0x01 |        slot_len (1) | slot (ASCII) | nonce (12) | ciphertext || tag (16)
    v2: 0x02 | kind | slot_len (1) | slot (ASCII) | nonce (12) | ciphertext || tag (16)
    v3: 0x03 | kind | slot (1 ASCII byte)         | nonce (12) | ciphertext || tag (16)

AAD::

    v1: 0x01 | lp("pii-vault") | lp(customer_id) | lp(record_type) | lp(record_id) | lp(field) | lp(slot)
    v2: 0x02 | kind | lp("pii-vault") | lp(customer_id) | lp(record_type) | lp(record_id)
             | lp(field) | lp(slot) | lp(binding)
    v3: 0x03 | kind | (the rest as v2)
    where lp(s) = uint16_be(len(utf8(s))) | utf8(s)

``kind`` says under which KMS encryption context the slot's data key is wrapped: 1 = the
tenant's (``{"app", "customer_id"}``), 2 = the writer's pool (``{"app", "scope": "pool"}``);
3 and 4 the same two with ``"view": "masked"`` (the masked view's projections). ``binding``
authenticates plaintext metadata the reader reports (docs/ARCHITECTURE.md, section 7).

What the slot names differs by version: in v1 and v2 a slot of the item's ``slots`` map (or a
masked ``mk_<slot>`` attribute), which holds the KMS-wrapped data key itself; in v3 a slot
whose attribute holds a 16-byte **key reference** (``chalicelib/envelope/key_ref.py``) into the
key table, where the wrapped data key is stored once for every record sealed under it. The
version byte is authenticated (it is the AAD's first byte), so a blob cannot be made to
claim the other kind of slot.

Knows nothing about DynamoDB, HTTP or KMS.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.support.errors import IntegrityError

FORMAT_V1 = 1
FORMAT_V2 = 2
FORMAT_V3 = 3
KIND_TENANT = 1
KIND_POOL = 2
KIND_MASKED_TENANT = 3  # the tenant's context + {"view": "masked"}
KIND_MASKED_POOL = 4  # the pool's context + {"view": "masked"}
SCOPES = {"tenant": KIND_TENANT, "pool": KIND_POOL}
POOL_SCOPE = "pool"
# The two views of a person: the full values (reader) and their masked projections (masked stage).
FULL_VIEW = "full"
MASKED_VIEW = "masked"
VIEW_KEY = "view"  # the encryption-context key that marks the masked view (absent: the full view)
FULL_KINDS = frozenset({KIND_TENANT, KIND_POOL})
MASKED_KINDS = frozenset({KIND_MASKED_TENANT, KIND_MASKED_POOL})
POOL_KINDS = frozenset({KIND_POOL, KIND_MASKED_POOL})
_KNOWN_KINDS = FULL_KINDS | MASKED_KINDS
_MASKED_KIND_OF = {KIND_TENANT: KIND_MASKED_TENANT, KIND_POOL: KIND_MASKED_POOL}
_FULL_KIND_OF = {masked: full for full, masked in _MASKED_KIND_OF.items()}
DATA_KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
RECORD_SLOT = "0"
_AAD_LABEL = "pii-vault"
_MAX_SLOT_BYTES = 64


@dataclass(frozen=True)
class RecordRef:
    """Which record a ciphertext belongs to; every component goes into the AAD."""

    customer_id: str
    record_type: str
    record_id: str


def _length_prefixed(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


def field_aad(ref: RecordRef, field: str, slot: str) -> bytes:
    """The v1 AAD (read only)."""
    parts = (_AAD_LABEL, ref.customer_id, ref.record_type, ref.record_id, field, slot)
    return bytes([FORMAT_V1]) + b"".join(_length_prefixed(p) for p in parts)


def field_aad_v2(ref: RecordRef, field: str, slot: str, kind: int, binding: str, version: int = FORMAT_V2) -> bytes:
    """The v2 AAD, and with ``version`` 3 the v3 AAD (the same parts after the version byte)."""
    parts = (_AAD_LABEL, ref.customer_id, ref.record_type, ref.record_id, field, slot, binding)
    return bytes([version, kind]) + b"".join(_length_prefixed(p) for p in parts)


def encryption_context(app_name: str, customer_id: str, kind: int = KIND_TENANT) -> dict[str, str]:
    """KMS encryption context of a data key of ``kind``: the tenant's, or the writer pool's;
    for a masked-view kind the same context with ``"view": "masked"`` added."""
    base = _FULL_KIND_OF.get(kind, kind)
    if base == KIND_POOL:
        context = {"app": app_name, "scope": POOL_SCOPE}
    else:
        context = {"app": app_name, "customer_id": customer_id}
    if kind in MASKED_KINDS:
        context[VIEW_KEY] = MASKED_VIEW
    return context


def view_kind(kind: int, view: str) -> int:
    """The kind of ``view`` for a scope's (full-view) ``kind``."""
    if view == FULL_VIEW:
        return kind
    if view == MASKED_VIEW:
        return _MASKED_KIND_OF[kind]
    raise ValueError("unknown view")


@dataclass(frozen=True)
class BlobHeader:
    """The plaintext header of a stored field blob (authenticated through the AAD)."""

    version: int
    kind: int
    slot: str
    body: bytes  # nonce | ciphertext || tag


def parse_blob(blob: bytes) -> BlobHeader:
    """Strict header parse: an unknown version or kind, or a short blob, is an integrity error."""
    if len(blob) < 2 or blob[0] not in (FORMAT_V1, FORMAT_V2, FORMAT_V3):
        raise IntegrityError("ciphertext has an unknown format version")
    version = blob[0]
    kind, offset = (KIND_TENANT, 1) if version == FORMAT_V1 else (blob[1], 2)
    if kind not in _KNOWN_KINDS or len(blob) <= offset:
        raise IntegrityError("ciphertext header is corrupt")
    if version == FORMAT_V3:
        slot_len, start = 1, offset
    else:
        slot_len, start = blob[offset], offset + 1
    if slot_len == 0 or len(blob) < start + slot_len + NONCE_BYTES + TAG_BYTES:
        raise IntegrityError("ciphertext is truncated")
    try:
        slot = blob[start : start + slot_len].decode("ascii")
    except UnicodeDecodeError:
        raise IntegrityError("ciphertext header is corrupt") from None
    return BlobHeader(version, kind, slot, blob[start + slot_len :])


def seal_field(
    data_key: bytes,
    ref: RecordRef,
    field: str,
    slot: str,
    plaintext: bytes,
    *,
    kind: int,
    binding: str = "",
    version: int = FORMAT_V3,
) -> bytes:
    """Encrypt one field value (format v3, or v2 for a secret version) under a fresh random nonce."""
    nonce = os.urandom(NONCE_BYTES)
    return _seal_field_with_nonce(data_key, ref, field, slot, plaintext, nonce, kind, binding, version)


def _seal_field_with_nonce(
    data_key: bytes,
    ref: RecordRef,
    field: str,
    slot: str,
    plaintext: bytes,
    nonce: bytes,
    kind: int,
    binding: str,
    version: int = FORMAT_V2,
) -> bytes:
    """``seal_field`` with a given nonce: production passes ``os.urandom``, the
    known-answer vectors (tests/unit/test_vectors.py) their recorded nonce."""
    slot_raw = slot.encode("ascii")
    if version == FORMAT_V3:
        if len(slot_raw) != 1:
            raise ValueError("a v3 slot name is one ASCII character")
        header = bytes([FORMAT_V3, kind]) + slot_raw
    elif version == FORMAT_V2:
        if not 0 < len(slot_raw) <= _MAX_SLOT_BYTES:
            raise ValueError("slot name must be 1-64 ASCII characters")
        header = bytes([FORMAT_V2, kind, len(slot_raw)]) + slot_raw
    else:
        raise ValueError("sealing writes format v2 or v3 only")
    if kind not in _KNOWN_KINDS:
        raise ValueError("unknown data key kind")
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, field_aad_v2(ref, field, slot, kind, binding, version))
    return header + nonce + ciphertext


def blob_slot(blob: bytes) -> str:
    """The key slot a stored field blob was sealed under (plaintext header)."""
    return parse_blob(blob).slot


def blob_version(blob: bytes) -> int:
    """The format version of a stored field blob (1, 2 or 3)."""
    return parse_blob(blob).version


def open_field(data_key: bytes, ref: RecordRef, field: str, blob: bytes, binding: str = "") -> bytes:
    """Decrypt one field blob; any tampering raises IntegrityError naming the field.

    ``binding`` is the metadata the writer bound (v2, v3); v1 blobs bind none, and the
    caller decides what a v1 blob may still vouch for.
    """
    return open_parsed(AESGCM(data_key), ref, field, parse_blob(blob), binding)


def open_parsed(cipher: AESGCM, ref: RecordRef, field: str, header: BlobHeader, binding: str) -> bytes:
    """``open_field`` for a header already parsed, under a cipher already keyed."""
    if header.version == FORMAT_V1:
        aad = field_aad(ref, field, header.slot)
    else:
        aad = field_aad_v2(ref, field, header.slot, header.kind, binding, header.version)
    nonce, ciphertext = header.body[:NONCE_BYTES], header.body[NONCE_BYTES:]
    try:
        return cipher.decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise IntegrityError(f"ciphertext of field {field} failed authentication", field=field) from None
