"""KMS key wrapping, split by capability.

``KmsEncryptor`` only calls ``kms:Encrypt`` (never ``GenerateDataKey``, which would
hand the writer plaintext keys KMS chose, nor ``Decrypt``); ``KmsDecryptor`` only calls
``kms:Decrypt``. Each stage gets exactly one of them, matching its IAM policy.
"""

from __future__ import annotations

from typing import Any, Mapping

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.crypto import WrappedKey
from chalicelib.aws_errors import translate
from chalicelib.config import KEY_ARN
from chalicelib.errors import KeyServiceError

_INTEGRITY_CODES = ("InvalidCiphertextException", "IncorrectKeyException")


def _kms_call(operation: str, call: Any, **kwargs: Any) -> dict[str, Any]:
    """Run one KMS call, translating failures into pii-vault errors without data."""
    try:
        return call(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, "kms", operation, KeyServiceError, _INTEGRITY_CODES) from exc


def _check_key(configured: str, used: str, operation: str) -> None:
    """When configured by ARN, KMS must have used exactly that key (belt and braces)."""
    if KEY_ARN.fullmatch(configured) and used != configured:
        raise KeyServiceError(f"kms {operation} answered with another key than the configured one")


class KmsEncryptor:
    """Writer side: wraps data keys with ``kms:Encrypt`` under an encryption context."""

    def __init__(self, kms_client: Any, key_id: str) -> None:
        self._kms = kms_client
        self._key_id = key_id

    def wrap(self, data_key: bytes, context: Mapping[str, str]) -> WrappedKey:
        response = _kms_call(
            "Encrypt",
            self._kms.encrypt,
            KeyId=self._key_id,
            Plaintext=data_key,
            EncryptionContext=dict(context),
        )
        _check_key(self._key_id, response["KeyId"], "Encrypt")
        return WrappedKey(blob=response["CiphertextBlob"], key_id=response["KeyId"])


class KmsDecryptor:
    """Reader side: unwraps data keys with ``kms:Decrypt``, pinned to the configured key."""

    def __init__(self, kms_client: Any, key_id: str) -> None:
        self._kms = kms_client
        self._key_id = key_id

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        response = _kms_call(
            "Decrypt",
            self._kms.decrypt,
            KeyId=self._key_id,
            CiphertextBlob=wrapped,
            EncryptionContext=dict(context),
        )
        _check_key(self._key_id, response.get("KeyId", ""), "Decrypt")
        return response["Plaintext"]
