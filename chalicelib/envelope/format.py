"""Field-level envelope encryption: format v2 written, v1 still read.

A random 256-bit data key from a ``DataKeySource`` (wrapped by KMS in production,
reused within a cache's bounds); every sensitive field sealed locally with AES-256-GCM.
The AAD binds each ciphertext to its tenant, record type, record id, field name and
key slot, so a ciphertext moved anywhere else fails authentication.

Stored field blob::

    v1: 0x01 |        slot_len (1) | slot (ASCII) | nonce (12) | ciphertext || tag (16)
    v2: 0x02 | kind | slot_len (1) | slot (ASCII) | nonce (12) | ciphertext || tag (16)

AAD::

    v1: 0x01 | lp("pii-vault") | lp(customer_id) | lp(record_type) | lp(record_id) | lp(field) | lp(slot)
    v2: 0x02 | kind | lp("pii-vault") | lp(customer_id) | lp(record_type) | lp(record_id)
             | lp(field) | lp(slot) | lp(binding)
    where lp(s) = uint16_be(len(utf8(s))) | utf8(s)

v2 adds two things. ``kind`` says under which KMS encryption context the slot's data
key is wrapped: 1 = the tenant's (``{"app", "customer_id"}``), 2 = the writer's pool
(``{"app", "scope": "pool"}``, one key per warm writer container and period, shared by
tenants: the tenant is still bound here, in the AAD); 3 and 4 are the same two contexts
with ``"view": "masked"`` added: the data keys of the masked projections (docs/masked.md),
which only the masked stage may unwrap, and which it alone opens (``Opener`` ``kinds``), so
a blob moved between the views fails before any KMS call. ``binding`` authenticates
plaintext metadata the reader reports (a person's version and timestamps, a secret's
incarnation): the service builds the same string from the stored attributes when
opening, so an edited attribute fails authentication like an edited ciphertext.

This module knows nothing about DynamoDB, HTTP or KMS: data keys and unwrapping are injected.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.support.errors import IntegrityError

FORMAT_V1 = 1
FORMAT_V2 = 2
FORMAT_VERSION = FORMAT_V2  # what sealing writes
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
_KNOWN_KINDS = FULL_KINDS | MASKED_KINDS
_MASKED_KIND_OF = {KIND_TENANT: KIND_MASKED_TENANT, KIND_POOL: KIND_MASKED_POOL}
_FULL_KIND_OF = {masked: full for full, masked in _MASKED_KIND_OF.items()}
DATA_KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
RECORD_SLOT = "0"
_AAD_LABEL = "pii-vault"
_MAX_SLOT_BYTES = 64


class KeyWrapper(Protocol):
    """Wraps a data key (writer side). Implementations must never be able to unwrap."""

    def wrap(self, data_key: bytes, context: Mapping[str, str]) -> WrappedKey: ...


class KeyUnwrapper(Protocol):
    """Unwraps a data key (reader side). Implementations must never be able to wrap."""

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes: ...


@dataclass(frozen=True)
class WrappedKey:
    blob: bytes
    key_id: str  # the KMS key ARN that wrapped it (plaintext metadata)


class DataKeySource(Protocol):
    """Hands the writer a data key and its wrapped form: fresh, or reused by a cache."""

    def data_key(self, context: Mapping[str, str]) -> tuple[bytes, WrappedKey]: ...


@dataclass(frozen=True)
class RecordRef:
    """Which record a ciphertext belongs to; every component goes into the AAD."""

    customer_id: str
    record_type: str
    record_id: str


@dataclass(frozen=True)
class SealedFields:
    """Ciphertexts of one write, all under one data key stored in one or more slots."""

    wrapped_key: WrappedKey
    blobs: dict[str, bytes]
    slot_names: tuple[str, ...]

    def slots(self) -> dict[str, bytes]:
        return {slot: self.wrapped_key.blob for slot in self.slot_names}


def _length_prefixed(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


def field_aad(ref: RecordRef, field: str, slot: str) -> bytes:
    """The v1 AAD (read only)."""
    parts = (_AAD_LABEL, ref.customer_id, ref.record_type, ref.record_id, field, slot)
    return bytes([FORMAT_V1]) + b"".join(_length_prefixed(p) for p in parts)


def field_aad_v2(ref: RecordRef, field: str, slot: str, kind: int, binding: str) -> bytes:
    parts = (_AAD_LABEL, ref.customer_id, ref.record_type, ref.record_id, field, slot, binding)
    return bytes([FORMAT_V2, kind]) + b"".join(_length_prefixed(p) for p in parts)


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
    if len(blob) < 2 or blob[0] not in (FORMAT_V1, FORMAT_V2):
        raise IntegrityError("ciphertext has an unknown format version")
    version = blob[0]
    kind, offset = (KIND_TENANT, 1) if version == FORMAT_V1 else (blob[1], 2)
    if kind not in _KNOWN_KINDS or len(blob) <= offset:
        raise IntegrityError("ciphertext header is corrupt")
    slot_len = blob[offset]
    start = offset + 1
    if slot_len == 0 or len(blob) < start + slot_len + NONCE_BYTES + TAG_BYTES:
        raise IntegrityError("ciphertext is truncated")
    try:
        slot = blob[start : start + slot_len].decode("ascii")
    except UnicodeDecodeError:
        raise IntegrityError("ciphertext header is corrupt") from None
    return BlobHeader(version, kind, slot, blob[start + slot_len :])


def seal_field(
    data_key: bytes, ref: RecordRef, field: str, slot: str, plaintext: bytes, *, kind: int, binding: str = ""
) -> bytes:
    """Encrypt one field value (format v2) under a fresh random nonce."""
    return _seal_field_with_nonce(data_key, ref, field, slot, plaintext, os.urandom(NONCE_BYTES), kind, binding)


def _seal_field_with_nonce(
    data_key: bytes, ref: RecordRef, field: str, slot: str, plaintext: bytes, nonce: bytes, kind: int, binding: str
) -> bytes:
    """``seal_field`` with a given nonce: production passes ``os.urandom``, the
    known-answer vectors (tests/unit/test_vectors.py) their recorded nonce."""
    slot_raw = slot.encode("ascii")
    if not 0 < len(slot_raw) <= _MAX_SLOT_BYTES:
        raise ValueError("slot name must be 1-64 ASCII characters")
    if kind not in _KNOWN_KINDS:
        raise ValueError("unknown data key kind")
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, field_aad_v2(ref, field, slot, kind, binding))
    return bytes([FORMAT_V2, kind, len(slot_raw)]) + slot_raw + nonce + ciphertext


def blob_slot(blob: bytes) -> str:
    """The key slot a stored field blob was sealed under (plaintext header)."""
    return parse_blob(blob).slot


def blob_version(blob: bytes) -> int:
    """The format version of a stored field blob (1 or 2)."""
    return parse_blob(blob).version


def open_field(data_key: bytes, ref: RecordRef, field: str, blob: bytes, binding: str = "") -> bytes:
    """Decrypt one field blob; any tampering raises IntegrityError naming the field.

    ``binding`` is the metadata the writer bound (v2); v1 blobs bind none, and the
    caller decides what a v1 blob may still vouch for.
    """
    return _open_parsed(AESGCM(data_key), ref, field, parse_blob(blob), binding)


def _open_parsed(cipher: AESGCM, ref: RecordRef, field: str, header: BlobHeader, binding: str) -> bytes:
    """``open_field`` for a header already parsed, under a cipher already keyed."""
    if header.version == FORMAT_V1:
        aad = field_aad(ref, field, header.slot)
    else:
        aad = field_aad_v2(ref, field, header.slot, header.kind, binding)
    nonce, ciphertext = header.body[:NONCE_BYTES], header.body[NONCE_BYTES:]
    try:
        return cipher.decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise IntegrityError(f"ciphertext of field {field} failed authentication", field=field) from None


class Sealer:
    """Writer-side envelope: one data key per write from ``data_keys``, any number of fields.

    ``data_keys`` is the write's only way to a key: a fresh key wrapped once per write
    (``keys.FreshDataKeys``) or one reused within bounds (``keys.CachingDataKeys``).
    """

    def __init__(
        self,
        data_keys: DataKeySource,
        app_name: str,
        scope: str = POOL_SCOPE,
        view: str = FULL_VIEW,
        own_key: Callable[[str], bool] | None = None,
    ) -> None:
        """``scope`` "pool": data keys shared by tenants (wrapped under the pool context);
        "tenant": one data key per tenant, the tenant named in the KMS context.
        ``view`` "masked": the data keys of masked projections (context adds ``"view": "masked"``).
        ``own_key(customer_id)`` true: that tenant has its own KMS key and always gets
        tenant-scoped data keys (chalicelib/keys/tenants.py), whatever ``scope`` says."""
        self._data_keys = data_keys
        self._app_name = app_name
        self._kind = view_kind(SCOPES[scope], view)
        self._tenant_kind = view_kind(KIND_TENANT, view)
        self._own_key = own_key

    def envelope(self, customer_id: str) -> Envelope:
        """A data key for this tenant's records and its wrapped form (at most one KMS call)."""
        kind = self._tenant_kind if self._own_key is not None and self._own_key(customer_id) else self._kind
        context = encryption_context(self._app_name, customer_id, kind)
        data_key, wrapped = self._data_keys.data_key(context)
        return Envelope(data_key, wrapped, customer_id, kind)

    def seal(
        self,
        ref: RecordRef,
        fields: Mapping[str, bytes],
        *,
        own_slots: bool = False,
        bindings: Mapping[str, str] | None = None,
    ) -> SealedFields:
        """Seal ``fields`` under one data key (see ``envelope`` and ``Envelope.seal``)."""
        return self.envelope(ref.customer_id).seal(ref, fields, own_slots=own_slots, bindings=bindings)


class Envelope:
    """One wrapped data key of one tenant; seals any number of fields locally.

    Sealing again under the same envelope costs no KMS call, which is what a writer
    retrying with another record id (a secret's next version number) needs.
    """

    def __init__(self, data_key: bytes, wrapped_key: WrappedKey, customer_id: str, kind: int) -> None:
        self._data_key = data_key
        self.wrapped_key = wrapped_key
        self.customer_id = customer_id
        self.kind = kind

    def seal(
        self,
        ref: RecordRef,
        fields: Mapping[str, bytes],
        *,
        slot: str = RECORD_SLOT,
        own_slots: bool = False,
        bindings: Mapping[str, str] | None = None,
    ) -> SealedFields:
        """Seal ``fields`` for the record ``ref`` of this envelope's tenant.

        By default every field uses ``slot`` (the record slot). ``own_slots`` (PATCH) files the
        wrapped key under each field's own name instead, so a partial update replaces
        exactly the slots of the fields it rewrites and the slot map stays bounded.
        ``bindings`` maps a field to the metadata its AAD authenticates ("" if absent).
        """
        if ref.customer_id != self.customer_id:
            raise ValueError("an envelope seals records of its own tenant only")
        bound = bindings or {}
        slot_of = {name: (name if own_slots else slot) for name in fields}
        blobs = {
            name: seal_field(
                self._data_key, ref, name, slot_of[name], value, kind=self.kind, binding=bound.get(name, "")
            )
            for name, value in fields.items()
        }
        return SealedFields(
            wrapped_key=self.wrapped_key, blobs=blobs, slot_names=tuple(dict.fromkeys(slot_of.values()))
        )


class RequestMemo:
    """A ``KeyUnwrapper`` remembering every key it unwrapped, for one request or page.

    Records of one page often share a data key (the writer's cache): each distinct
    wrapped key is then unwrapped once per request. Unbounded, so never kept longer.
    """

    def __init__(self, unwrapper: KeyUnwrapper) -> None:
        self._unwrapper = unwrapper
        self._keys: dict[tuple[tuple[tuple[str, str], ...], bytes], bytes] = {}

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        key = (tuple(sorted(context.items())), wrapped)
        if key not in self._keys:
            self._keys[key] = self._unwrapper.unwrap(wrapped, context)
        return self._keys[key]


class Opener:
    """Reader-side envelope: unwraps each distinct wrapped key of a record once.

    ``kinds`` are the data key kinds this opener accepts: the full view's (reader,
    indexer) or the masked view's (masked stage). A blob of another kind is an integrity
    error before any KMS call: a masked projection moved into a full attribute, or a
    full value moved into a masked one, is never unwrapped, let alone answered.
    """

    def __init__(self, unwrapper: KeyUnwrapper, app_name: str, kinds: frozenset[int] = FULL_KINDS) -> None:
        self._unwrapper = unwrapper
        self._app_name = app_name
        self._kinds = kinds

    def for_request(self) -> Opener:
        """An opener sharing unwrapped keys across the records of one request (``RequestMemo``)."""
        return Opener(RequestMemo(self._unwrapper), self._app_name, self._kinds)

    def open(
        self,
        ref: RecordRef,
        blobs: Mapping[str, bytes],
        slots: Mapping[str, bytes],
        wanted: Iterable[str],
        bindings: Mapping[str, str] | None = None,
    ) -> dict[str, bytes]:
        """Decrypt the ``wanted`` fields present in ``blobs``; ``slots`` maps slot name -> wrapped key.

        ``bindings`` maps a field to the metadata its v2 AAD must authenticate.
        """
        bound = bindings or {}
        ciphers: dict[tuple[int, bytes], AESGCM] = {}  # (kind, wrapped) -> keyed cipher: slots often share one
        out: dict[str, bytes] = {}
        for field in wanted:
            blob = blobs.get(field)
            if blob is None:
                continue
            header = parse_blob(blob)
            if header.kind not in self._kinds:
                raise IntegrityError(f"field {field} is sealed for another view", field=field)
            wrapped = slots.get(header.slot)
            if wrapped is None:
                raise IntegrityError(f"field {field} refers to a missing key slot", field=field)
            if (header.kind, wrapped) not in ciphers:
                context = encryption_context(self._app_name, ref.customer_id, header.kind)
                data_key = self._unwrapper.unwrap(wrapped, context)
                if len(data_key) != DATA_KEY_BYTES:
                    raise IntegrityError(f"data key of field {field} has the wrong size", field=field)
                ciphers[(header.kind, wrapped)] = AESGCM(data_key)
            out[field] = _open_parsed(ciphers[(header.kind, wrapped)], ref, field, header, bound.get(field, ""))
        return out
