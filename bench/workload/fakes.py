"""Fakes the workload model runs the production key objects over: a simulated clock, counting KMS and fleet table."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from chalicelib.envelope.format import DATA_KEY_BYTES

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


class FakeFleetTable:
    """The reader fleet's key table (``chalicelib.keys.fleet.FleetTable``) in memory, DynamoDB calls counted."""

    def __init__(self) -> None:
        self.items: dict[bytes, dict[str, Any]] = {}
        self.gets = 0
        self.puts = 0

    def get(self, entry_id: bytes) -> dict[str, Any] | None:
        self.gets += 1
        item = self.items.get(entry_id)
        return dict(item) if item is not None else None

    def put(self, entry_id: bytes, entry: dict[str, Any]) -> None:
        self.puts += 1
        self.items[entry_id] = dict(entry)


class _Switch:
    """Delegates to ``target``, which can be re-pointed (primes a live writer with a history key)."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.target(*args, **kwargs)
