"""``kms:ReEncrypt`` by capability: move a wrapped data key from one KMS key to another
without ever seeing its plaintext (the rewrap job; ``chalicelib.service.rewrap``).

``KmsReEncryptor`` pins the source key (``SourceKeyId``) and keeps the encryption context
identical on both sides; a blob that is not under the source comes back as None, never as
an error. ``RewrapMap`` remembers, for one run, the new blob of every (context, old blob)
already moved, so a pool data key shared by many records of many tenants costs one call.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol

from botocore.exceptions import ClientError

from chalicelib.support.aws_errors import translated
from chalicelib.support.errors import KeyServiceError

# KMS answers meaning "this blob is not under the key you named" (moto says AccessDenied).
_NOT_UNDER_KEY = ("IncorrectKeyException", "AccessDeniedException", "InvalidCiphertextException")


class ReEncryptor(Protocol):
    calls: int

    def reencrypt(self, blob: bytes, context: Mapping[str, str]) -> bytes | None:
        """The blob under the target, or None when it is not under the source key."""
        ...


class _NotUnderKey(Exception):
    pass


def _not_under_key(_exc: ClientError) -> Exception:
    return _NotUnderKey()


class KmsReEncryptor:
    """``kms:ReEncrypt`` only: from ``source`` (pinned) to ``target``, same context both sides."""

    def __init__(self, kms_client: Any, source: str, target: str) -> None:
        self._kms = kms_client
        self._source = source
        self._target = target
        self.calls = 0

    def reencrypt(self, blob: bytes, context: Mapping[str, str]) -> bytes | None:
        self.calls += 1
        try:
            with translated(
                "kms", "ReEncrypt", KeyServiceError, raise_for=dict.fromkeys(_NOT_UNDER_KEY, _not_under_key)
            ):
                response = self._kms.re_encrypt(
                    CiphertextBlob=blob,
                    SourceEncryptionContext=dict(context),
                    SourceKeyId=self._source,
                    DestinationKeyId=self._target,
                    DestinationEncryptionContext=dict(context),
                )
        except _NotUnderKey:
            return None
        if not same_key(response.get("SourceKeyId", ""), self._source):
            return None  # KMS decides by the blob when a key id is not enforced (moto)
        if not same_key(response.get("KeyId", ""), self._target):
            raise KeyServiceError("kms ReEncrypt answered with another key than the target")
        new: bytes = response["CiphertextBlob"]
        return new


def same_key(answered: str, wanted: str) -> bool:
    """KMS answers with ARNs; a plan may name a key by id or ARN."""
    return answered == wanted or answered.endswith(f":key/{wanted}") or answered.endswith(f"/{wanted.split('/')[-1]}")


class RewrapMap:
    """Run-local memory: (context, old blob) -> new blob (None: not under the source)."""

    def __init__(self, reencryptor: ReEncryptor) -> None:
        self._reencryptor = reencryptor
        self._done: dict[tuple[tuple[tuple[str, str], ...], bytes], bytes | None] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._done)

    @property
    def calls(self) -> int:
        return self._reencryptor.calls

    def new_blob(self, blob: bytes, context: Mapping[str, str]) -> bytes | None:
        key = (tuple(sorted(context.items())), blob)
        with self._lock:
            if key in self._done:
                return self._done[key]
        new = self._reencryptor.reencrypt(blob, context)
        with self._lock:
            self._done.setdefault(key, new)
            return self._done[key]

    def produced(self, blob: bytes) -> bool:
        """Is ``blob`` one this run made (already under the target)?"""
        with self._lock:
            return blob in {v for v in self._done.values() if v is not None}
