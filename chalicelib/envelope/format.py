"""Field-level envelope encryption: who seals and opens, under which data key.

A random 256-bit data key from a ``DataKeySource`` (wrapped by KMS in production,
reused within a cache's bounds); every sensitive field sealed locally with AES-256-GCM.
The AAD binds each ciphertext to its tenant, record type, record id, field name and
key slot, so a ciphertext moved anywhere else fails authentication. The blob formats
(v1 and v2 read, v3 written for people, v2 for secret versions) and their AADs are in
``chalicelib/envelope/blob.py``; key references (v3) in ``chalicelib/envelope/key_ref.py``.

A v3 blob's slot names a **key reference**, resolved by a ``KeyResolver`` (the key table,
behind caches and the reader fleet, ``chalicelib/keys``); a v1/v2 blob's slot names the
wrapped data key itself, opened by a ``KeyUnwrapper``. The ``Opener`` takes both.

This module knows nothing about DynamoDB, HTTP or KMS: data keys and unwrapping are injected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.envelope.blob import (
    DATA_KEY_BYTES,
    FORMAT_V1,
    FORMAT_V2,
    FORMAT_V3,
    FULL_KINDS,
    FULL_VIEW,
    KIND_MASKED_POOL,
    KIND_MASKED_TENANT,
    KIND_POOL,
    KIND_TENANT,
    MASKED_KINDS,
    MASKED_VIEW,
    NONCE_BYTES,
    POOL_KINDS,
    POOL_SCOPE,
    RECORD_SLOT,
    SCOPES,
    TAG_BYTES,
    VIEW_KEY,
    BlobHeader,
    RecordRef,
    _seal_field_with_nonce,
    blob_slot,
    blob_version,
    encryption_context,
    field_aad,
    field_aad_v2,
    open_field,
    open_parsed,
    parse_blob,
    seal_field,
    view_kind,
)
from chalicelib.support.errors import IntegrityError

# The blob codec's names, for the modules that import them from here.
__all__ = [
    "DATA_KEY_BYTES",
    "FORMAT_V1",
    "FORMAT_V2",
    "FORMAT_V3",
    "FULL_KINDS",
    "FULL_VIEW",
    "KIND_MASKED_POOL",
    "KIND_MASKED_TENANT",
    "KIND_POOL",
    "KIND_TENANT",
    "MASKED_KINDS",
    "MASKED_VIEW",
    "NONCE_BYTES",
    "POOL_KINDS",
    "POOL_SCOPE",
    "RECORD_SLOT",
    "SCOPES",
    "TAG_BYTES",
    "VIEW_KEY",
    "BlobHeader",
    "DataKeySource",
    "Envelope",
    "KeyResolver",
    "KeyUnwrapper",
    "KeyWrapper",
    "Opener",
    "RecordRef",
    "RequestMemo",
    "SealedFields",
    "Sealer",
    "WrappedKey",
    "_seal_field_with_nonce",
    "blob_slot",
    "blob_version",
    "encryption_context",
    "field_aad",
    "field_aad_v2",
    "open_field",
    "parse_blob",
    "seal_field",
    "view_kind",
]


class KeyWrapper(Protocol):
    """Wraps a data key (writer side). Implementations must never be able to unwrap."""

    def wrap(self, data_key: bytes, context: Mapping[str, str]) -> WrappedKey: ...


class KeyUnwrapper(Protocol):
    """Unwraps a data key (reader side). Implementations must never be able to wrap."""

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes: ...


class KeyResolver(Protocol):
    """The data key a v3 key reference names (reader side), checked against the reference."""

    def resolve(self, ref: bytes, context: Mapping[str, str]) -> bytes: ...


@dataclass(frozen=True)
class WrappedKey:
    blob: bytes
    key_id: str  # the KMS key ARN that wrapped it (plaintext metadata)
    ref: bytes = b""  # its key reference, once filed in the key table (format v3)


class DataKeySource(Protocol):
    """Hands the writer a data key and its wrapped form: fresh, or reused by a cache."""

    def data_key(self, context: Mapping[str, str]) -> tuple[bytes, WrappedKey]: ...


@dataclass(frozen=True)
class SealedFields:
    """Ciphertexts of one write, all under one data key named by one or more slots."""

    wrapped_key: WrappedKey
    blobs: dict[str, bytes]
    slot_names: tuple[str, ...]

    def slots(self) -> dict[str, bytes]:
        """Slot -> the wrapped data key (v1/v2 items: a secret version's ``slots``)."""
        return {slot: self.wrapped_key.blob for slot in self.slot_names}

    def refs(self) -> dict[str, bytes]:
        """Slot -> the data key's reference (v3 items)."""
        return {slot: self.wrapped_key.ref for slot in self.slot_names}


class Sealer:
    """Writer-side envelope: one data key per write from ``data_keys``, any number of fields.

    ``data_keys`` is the write's only way to a key: a fresh key wrapped once per write
    (``keys.FreshDataKeys``) or one reused within bounds (``keys.CachingDataKeys``), filed
    in the key table when made (``keys.refs.PublishedDataKeys``).
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

    def seal(self, ref: RecordRef, fields: Mapping[str, bytes], **options: Any) -> SealedFields:
        """Seal ``fields`` under one data key (``envelope`` then ``Envelope.seal``)."""
        return self.envelope(ref.customer_id).seal(ref, fields, **options)


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
        slots: Mapping[str, str] | None = None,
        bindings: Mapping[str, str] | None = None,
        version: int = FORMAT_V3,
    ) -> SealedFields:
        """Seal ``fields`` for the record ``ref`` of this envelope's tenant.

        Every field uses ``slot``, or its own entry of ``slots`` (a PATCH files its key under
        each field's own slot, so it replaces exactly the slots of the fields it rewrites).
        ``bindings`` maps a field to the metadata its AAD authenticates ("" if absent).
        ``version`` 3 (people) needs a key reference; 2 is what secret versions keep.
        """
        if ref.customer_id != self.customer_id:
            raise ValueError("an envelope seals records of its own tenant only")
        if version == FORMAT_V3 and not self.wrapped_key.ref:
            raise ValueError("format v3 needs a data key filed in the key table")
        bound = bindings or {}
        slot_of = {name: (slots or {}).get(name, slot) for name in fields}
        blobs = {
            name: seal_field(
                self._data_key,
                ref,
                name,
                slot_of[name],
                value,
                kind=self.kind,
                binding=bound.get(name, ""),
                version=version,
            )
            for name, value in fields.items()
        }
        return SealedFields(
            wrapped_key=self.wrapped_key, blobs=blobs, slot_names=tuple(dict.fromkeys(slot_of.values()))
        )


class RequestMemo:
    """A ``KeyUnwrapper`` and ``KeyResolver`` remembering every key it got, for one request or page.

    Records of one page often share a data key (the writer's cache): each distinct
    wrapped key or reference is then unwrapped once per request. Unbounded, so never kept longer.
    """

    def __init__(self, unwrapper: KeyUnwrapper, resolver: KeyResolver | None = None) -> None:
        self._unwrapper = unwrapper
        self._resolver = resolver
        self._keys: dict[tuple[str, tuple[tuple[str, str], ...], bytes], bytes] = {}

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        key = ("wrapped", tuple(sorted(context.items())), wrapped)
        if key not in self._keys:
            self._keys[key] = self._unwrapper.unwrap(wrapped, context)
        return self._keys[key]

    def resolve(self, ref: bytes, context: Mapping[str, str]) -> bytes:
        if self._resolver is None:
            raise IntegrityError("a v3 record needs the key table, which this stage is not given")
        key = ("ref", tuple(sorted(context.items())), ref)
        if key not in self._keys:
            self._keys[key] = self._resolver.resolve(ref, context)
        return self._keys[key]


class Opener:
    """Reader-side envelope: gets each distinct data key of a record once.

    ``kinds`` are the data key kinds this opener accepts: the full view's (reader,
    indexer) or the masked view's (masked stage). A blob of another kind is an integrity
    error before any KMS call: a masked projection moved into a full attribute, or a
    full value moved into a masked one, is never unwrapped, let alone answered.
    ``resolver`` resolves the key references of v3 blobs; ``unwrapper`` the wrapped keys
    v1/v2 items carry inline.
    """

    def __init__(
        self,
        unwrapper: KeyUnwrapper,
        app_name: str,
        kinds: frozenset[int] = FULL_KINDS,
        resolver: KeyResolver | None = None,
    ) -> None:
        self._unwrapper = unwrapper
        self._resolver = resolver
        self._app_name = app_name
        self._kinds = kinds

    def for_request(self) -> Opener:
        """An opener sharing keys across the records of one request (``RequestMemo``)."""
        memo = RequestMemo(self._unwrapper, self._resolver)
        return Opener(memo, self._app_name, self._kinds, memo)

    def open(
        self,
        ref: RecordRef,
        blobs: Mapping[str, bytes],
        slots: Mapping[str, bytes],
        wanted: Iterable[str],
        bindings: Mapping[str, str] | None = None,
        refs: Mapping[str, bytes] | None = None,
    ) -> dict[str, bytes]:
        """Decrypt the ``wanted`` fields present in ``blobs``. A v1/v2 blob's slot names a
        wrapped key in ``slots``; a v3 blob's a key reference in ``refs``.

        ``bindings`` maps a field to the metadata its v2/v3 AAD must authenticate.
        """
        bound = bindings or {}
        ciphers: dict[tuple[int, int, bytes], AESGCM] = {}  # (format, kind, key) -> keyed cipher: slots share one
        out: dict[str, bytes] = {}
        for field in wanted:
            blob = blobs.get(field)
            if blob is None:
                continue
            header = parse_blob(blob)
            if header.kind not in self._kinds:
                raise IntegrityError(f"field {field} is sealed for another view", field=field)
            v3 = header.version == FORMAT_V3
            handle = (refs or {}).get(header.slot) if v3 else slots.get(header.slot)
            if handle is None:
                raise IntegrityError(f"field {field} refers to a missing key slot", field=field)
            cache_key = (FORMAT_V3 if v3 else FORMAT_V2, header.kind, handle)
            if cache_key not in ciphers:
                context = encryption_context(self._app_name, ref.customer_id, header.kind)
                if v3:
                    if self._resolver is None:
                        raise IntegrityError(f"field {field} needs the key table", field=field)
                    data_key = self._resolver.resolve(handle, context)
                else:
                    data_key = self._unwrapper.unwrap(handle, context)
                if len(data_key) != DATA_KEY_BYTES:
                    raise IntegrityError(f"data key of field {field} has the wrong size", field=field)
                ciphers[cache_key] = AESGCM(data_key)
            out[field] = open_parsed(ciphers[cache_key], ref, field, header, bound.get(field, ""))
        return out
