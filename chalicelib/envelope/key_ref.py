"""Key references: how a v3 person item names its data keys without holding them.

A KMS-wrapped data key is about 184 bytes on AWS; every person item used to repeat two of
them (the full and the masked view's), although the writer's pool keys are shared by many
thousands of records. Format v3 stores each wrapped data key once, in the key table, and
the item holds a 16-byte reference per key slot::

    ref = uint32_be(hour) | HMAC-SHA-256(data_key, "pii-vault/key-ref/v1" | uint32_be(hour))[:12]

``hour`` is when the writer made the key (hours since the Unix epoch); it says which day's
fleet bucket holds the key (``chalicelib/keys/fleet.py``). The rest commits to the data key
itself: whoever unwraps a key (from the key table through KMS, or from the fleet table)
checks it against the reference before using it, so a swapped key-table entry or a
poisoned fleet entry is refused (and KMS asked) instead of failing every record it opens.
A reference stays the same when the key is rewrapped under another KMS key. Publishing an
HMAC of a random 256-bit key under that key reveals nothing about it; 96 bits make a second
key with the same reference infeasible to find.

The HMAC is ``cryptography``'s over a key made with ``os.urandom`` (not a new primitive).
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives import constant_time, hashes
from cryptography.hazmat.primitives import hmac as _hmac

REF_BYTES = 16
_HOUR_BYTES = 4
_LABEL = b"pii-vault/key-ref/v1"
_MAX_HOUR = 2**32 - 1


def hour_of(epoch_seconds: float) -> int:
    """The hour (since the Unix epoch) a key made at ``epoch_seconds`` is filed under."""
    return int(epoch_seconds // 3600)


def key_ref(data_key: bytes, hour: int) -> bytes:
    """The reference of ``data_key``, made in ``hour``."""
    if not 0 <= hour <= _MAX_HOUR:
        raise ValueError("hour out of range")
    prefix = struct.pack(">I", hour)
    mac = _hmac.HMAC(data_key, hashes.SHA256())
    mac.update(_LABEL + prefix)
    return prefix + mac.finalize()[: REF_BYTES - _HOUR_BYTES]


def ref_hour(ref: bytes) -> int:
    """The hour a reference says its key was made in (plaintext; committed by the MAC)."""
    if len(ref) != REF_BYTES:
        raise ValueError("a key reference is 16 bytes")
    hour: int = struct.unpack(">I", ref[:_HOUR_BYTES])[0]
    return hour


def matches(data_key: bytes, ref: bytes) -> bool:
    """Is ``data_key`` the key ``ref`` names? (constant time)"""
    if len(ref) != REF_BYTES:
        return False
    return constant_time.bytes_eq(key_ref(data_key, ref_hour(ref)), ref)
