"""The reader fleet's shared data key table: one KMS Decrypt per data key per fleet.

Every reader container used to unwrap every data key it met by itself, so reads over a
long history cost about one ``kms:Decrypt`` each however warm the fleet was. Readers
now share unwrapped *pool* data keys through a DynamoDB table of their own:

- An entry is the data key sealed with AES-256-GCM under a **fleet sealing key** for the
  entry's epoch. That key is ``kms:GenerateMac`` (HMAC-SHA-256) of a fixed label and the
  epoch number under a KMS HMAC key that only the reader role may use, so it is never
  stored anywhere, is the same in every reader container, and costs one KMS call per
  container per epoch.
- The AAD binds the entry id (SHA-256 of the encryption context and the wrapped key),
  the epoch and the expiry time. A table writer without the reader's KMS rights can
  neither read an entry nor forge, move or extend one; an entry that fails
  authentication is logged as an integrity error and ignored (the reader then asks KMS,
  whose answer is authoritative), so a poisoned entry can cost a KMS call, never data.
- Entries expire (``lifetime_seconds``, checked by the reader itself from the
  authenticated expiry; DynamoDB's TTL only cleans up). The table has no backups, so an
  entry lives no longer than its lifetime: disabling or deleting the KMS key takes
  effect fleet-wide within that lifetime (plus the container cache's age).

Only pool data keys (encryption context scope ``pool``) go through the table. Data keys
of tenants with their own KMS key never do: deleting such a key must shred the tenant's
data at once, not after the entries expire.

The table is an optimisation: if it throttles or is unavailable, the reader falls back
to KMS for that key and says so in the log.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.envelope.format import DATA_KEY_BYTES, NONCE_BYTES, TAG_BYTES, KeyUnwrapper
from chalicelib.support.errors import PiiVaultError

logger = logging.getLogger(__name__)

_ENTRY_LABEL = b"pii-vault/fleet-entry/v1"
_SEALING_KEY_LABEL = b"pii-vault/fleet-sealing-key/v1|"
POOL_SCOPE = "pool"
# Sealing keys of this many recent epochs stay in memory (an entry is readable until it
# expires, so a reader may meet entries sealed in earlier epochs).
_EPOCHS_KEPT = 8


class MacKey(Protocol):
    """``kms:GenerateMac`` with one HMAC key: 32 bytes for a message."""

    def mac(self, message: bytes) -> bytes: ...


class FleetTable(Protocol):
    """Storage of sealed entries; the DynamoDB implementation lives in chalicelib/store."""

    def get(self, entry_id: bytes) -> dict[str, Any] | None: ...

    def put(self, entry_id: bytes, entry: dict[str, Any]) -> None: ...


def entry_id(wrapped: bytes, context: Mapping[str, str]) -> bytes:
    import hashlib

    canonical = json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(struct.pack(">I", len(canonical)) + canonical + wrapped).digest()


def _entry_aad(entry_id_: bytes, epoch: int, expires_at: int) -> bytes:
    return _ENTRY_LABEL + entry_id_ + struct.pack(">QQ", epoch, expires_at)


class FleetSealingKeys:
    """The fleet sealing key of an epoch, derived by KMS and kept for a few epochs."""

    def __init__(self, mac_key: MacKey) -> None:
        self._mac = mac_key
        self._keys: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def key(self, epoch: int) -> bytes:
        with self._lock:
            known = self._keys.get(epoch)
        if known is not None:
            return known
        derived = self._mac.mac(_SEALING_KEY_LABEL + str(epoch).encode("ascii"))
        if len(derived) != DATA_KEY_BYTES:
            raise ValueError("the fleet MAC key must be an HMAC_256 key")
        with self._lock:
            self._keys[epoch] = derived
            for old in sorted(self._keys)[:-_EPOCHS_KEPT]:
                del self._keys[old]
        return derived


class FleetKeyTable:
    """A ``KeyUnwrapper`` in front of KMS that shares pool data keys across the fleet."""

    def __init__(
        self,
        backing: KeyUnwrapper,
        table: FleetTable,
        sealing_keys: FleetSealingKeys,
        *,
        lifetime_seconds: int,
        epoch_seconds: int = 86_400,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if lifetime_seconds <= 0 or epoch_seconds <= 0:
            raise ValueError("fleet lifetimes must be positive (wire the backing unwrapper to turn the table off)")
        self._backing = backing
        self._table = table
        self._sealing = sealing_keys
        self._lifetime = lifetime_seconds
        self._epoch_seconds = epoch_seconds
        self._clock = clock
        self._random = random_bytes

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        if context.get("scope") != POOL_SCOPE:
            return self._backing.unwrap(wrapped, context)
        ident = entry_id(wrapped, context)
        now = int(self._clock())
        found = self._lookup(ident, now)
        if found is not None:
            return found
        data_key = self._backing.unwrap(wrapped, context)
        self._store(ident, data_key, now)
        return data_key

    def _lookup(self, ident: bytes, now: int) -> bytes | None:
        try:
            entry = self._table.get(ident)
        except Exception as exc:  # noqa: BLE001 - an optimisation must not fail the read
            logger.warning("fleet key table read failed (%s); asking KMS", type(exc).__name__)
            return None
        if entry is None:
            return None
        try:
            epoch, expires_at, sealed = int(entry["epoch"]), int(entry["expires_at"]), bytes(entry["sealed"])
        except (KeyError, TypeError, ValueError, AttributeError):
            logger.error("fleet key table entry is malformed: integrity_error; asking KMS")
            return None
        if len(sealed) < NONCE_BYTES + TAG_BYTES:  # AES-GCM raises ValueError, not InvalidTag, on a short nonce
            logger.error("fleet key table entry is truncated: integrity_error; asking KMS")
            return None
        if expires_at <= now:
            return None
        # An entry cannot be older than its lifetime: any other epoch is forged, and is
        # refused before it could make us derive (and pay for) a sealing key.
        oldest = (now - self._lifetime) // self._epoch_seconds
        if not oldest <= epoch <= now // self._epoch_seconds or expires_at > now + self._lifetime:
            logger.error("fleet key table entry has an impossible epoch or expiry: integrity_error; asking KMS")
            return None
        try:
            sealing_key = self._sealing.key(epoch)
        except PiiVaultError as exc:
            logger.warning("fleet sealing key unavailable (%s); asking KMS", exc.code)
            return None
        try:
            key = AESGCM(sealing_key).decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _entry_aad(ident, epoch, expires_at)
            )
        except InvalidTag:
            logger.error("fleet key table entry failed authentication: integrity_error; asking KMS")
            return None
        return key if len(key) == DATA_KEY_BYTES else None

    def _store(self, ident: bytes, data_key: bytes, now: int) -> None:
        epoch = now // self._epoch_seconds
        expires_at = now + self._lifetime
        try:
            sealing_key = self._sealing.key(epoch)
        except PiiVaultError as exc:
            logger.warning("fleet sealing key unavailable (%s); entry not shared", exc.code)
            return
        nonce = self._random(NONCE_BYTES)
        sealed = nonce + AESGCM(sealing_key).encrypt(nonce, data_key, _entry_aad(ident, epoch, expires_at))
        try:
            self._table.put(ident, {"epoch": epoch, "expires_at": expires_at, "sealed": sealed})
        except Exception as exc:  # noqa: BLE001 - the next reader will simply ask KMS too
            logger.warning("fleet key table write failed (%s)", type(exc).__name__)
