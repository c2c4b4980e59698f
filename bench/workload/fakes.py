"""Fakes the workload model runs the production key objects over: a simulated clock, counting KMS and fleet table."""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from typing import Any

from chalicelib.envelope.format import DATA_KEY_BYTES, WrappedKey
from chalicelib.keys.fleet_buckets import BucketEntry

FAKE_KEY_ARN = "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000"
FAKE_MAC_KEY_ARN = "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-0000000000ac"
_FAKE_MAC_SECRET = b"workload-model fleet HMAC key"  # one HMAC key: every fake derives the same sealing keys


class SimClock:
    """The simulated clock the caches read (``time.monotonic``'s stand-in)."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingBytes:
    """Deterministic "random" data keys: cheap, distinct, reproducible from a namespace."""

    def __init__(self, namespace: bytes) -> None:
        self._namespace = namespace
        self.count = 0

    def __call__(self, size: int) -> bytes:
        self.count += 1
        digest = hashlib.sha256(self._namespace + self.count.to_bytes(8, "big")).digest()
        return (digest * (size // len(digest) + 1))[:size]


def _context_digest(context: Mapping[str, str]) -> bytes:
    return hashlib.blake2b(repr(sorted(context.items())).encode(), digest_size=8).digest()


class FakeKmsClient:
    """A boto3-shaped KMS client: Encrypt returns a unique blob per call, calls are counted.

    The blob carries the plaintext, so Decrypt needs no table (history can hold millions of
    keys); Decrypt checks the encryption context as KMS does. ``namespace`` makes blobs of
    different fakes distinct; the same calls on a fake of the same namespace give the same
    blobs (history replays rely on that).
    """

    def __init__(self, namespace: bytes = b"live") -> None:
        self.namespace = namespace
        self.encrypt_calls = 0
        self.decrypt_calls = 0
        self.mac_calls = 0

    def encrypt(self, *, KeyId: str, Plaintext: bytes, EncryptionContext: Mapping[str, str]) -> dict[str, Any]:
        self.encrypt_calls += 1
        tag = self.namespace + b"#" + str(self.encrypt_calls).encode()
        blob = Plaintext + _context_digest(EncryptionContext) + tag
        return {"CiphertextBlob": blob, "KeyId": FAKE_KEY_ARN}

    def decrypt(self, *, KeyId: str, CiphertextBlob: bytes, EncryptionContext: Mapping[str, str]) -> dict[str, Any]:
        self.decrypt_calls += 1
        plaintext, digest = CiphertextBlob[:DATA_KEY_BYTES], CiphertextBlob[DATA_KEY_BYTES : DATA_KEY_BYTES + 8]
        if digest != _context_digest(EncryptionContext):
            raise ValueError("fake KMS: encryption context does not match")
        return {"Plaintext": plaintext, "KeyId": FAKE_KEY_ARN}

    def generate_mac(self, *, KeyId: str, MacAlgorithm: str, Message: bytes) -> dict[str, Any]:
        """HMAC-SHA-256 under one fixed secret (the fleet's HMAC key), counted."""
        self.mac_calls += 1
        if MacAlgorithm != "HMAC_SHA_256":
            raise ValueError("fake KMS: HMAC_SHA_256 only")
        return {"Mac": hmac.new(_FAKE_MAC_SECRET, Message, hashlib.sha256).digest(), "KeyId": KeyId}


# Billed sizes (bytes) of the items the model fetches, as DynamoDB counts them (names + values):
# a fleet entry (b "d<day>", r 16 B, e, x, s 60 B) and a key-table entry (p, r, w ~184 B on AWS, k ARN, t).
FLEET_ENTRY_BYTES = 100
KEY_TABLE_ENTRY_BYTES = 300
_RU_BYTES = 4096


class FakeFleetTable:
    """The reader fleet's table by day (``chalicelib.keys.fleet_buckets.BucketTable``) in memory:
    Query, GetItem and PutItem counted, and the read units they cost (eventually consistent)."""

    def __init__(self) -> None:
        self.days: dict[str, dict[bytes, BucketEntry]] = {}
        self.gets = 0
        self.puts = 0
        self.queries = 0
        self.read_units = 0.0

    @property
    def items(self) -> dict[tuple[str, bytes], BucketEntry]:
        return {(day, ref): entry for day, entries in self.days.items() for ref, entry in entries.items()}

    def query(self, bucket: str) -> dict[bytes, BucketEntry]:
        self.queries += 1
        found = dict(self.days.get(bucket, {}))
        self.read_units += 0.5 * max(1, math.ceil(len(found) * FLEET_ENTRY_BYTES / _RU_BYTES))
        return found

    def get(self, bucket: str, ref: bytes) -> BucketEntry | None:
        self.gets += 1
        self.read_units += 0.5
        return self.days.get(bucket, {}).get(ref)

    def put(self, bucket: str, ref: bytes, entry: tuple[int, int, bytes]) -> None:
        self.puts += 1
        self.days.setdefault(bucket, {})[ref] = BucketEntry(*entry)


class FakeKeyTable:
    """The key table (``chalicelib.keys.refs.KeyTable``) in memory; reads counted (strongly consistent)."""

    def __init__(self) -> None:
        self.entries: dict[tuple[tuple[tuple[str, str], ...], bytes], bytes] = {}
        self.gets = 0
        self.read_units = 0.0

    def put(self, context: Mapping[str, str], ref: bytes, wrapped: WrappedKey) -> None:
        self.entries.setdefault((tuple(sorted(context.items())), ref), wrapped.blob)

    def get(self, context: Mapping[str, str], ref: bytes) -> bytes | None:
        self.gets += 1
        self.read_units += max(1, math.ceil(KEY_TABLE_ENTRY_BYTES / _RU_BYTES))
        return self.entries.get((tuple(sorted(context.items())), ref))


class _Switch:
    """Delegates to ``target``, which can be re-pointed (primes a live writer with a history key)."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.target(*args, **kwargs)
