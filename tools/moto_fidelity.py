"""Where moto 5.2 answers differently from KMS, make it answer as KMS does.

- moto keeps encrypting and decrypting with a key after DisableKey or ScheduleKeyDeletion.
  KMS answers ``DisabledException`` (disabled) and ``KMSInvalidStateException`` (pending
  deletion); pii-vault maps both to 502 ``key_unavailable`` (chalicelib/support/aws_errors.py).
- moto's GenerateMac names the key used by its bare id; KMS by its ARN, which a stage pinned to
  its HMAC key by ARN (chalicelib.keys.kms.KmsMacKey, as every deployed stage is) checks.

``install()`` patches moto's KMS backend so the tests (tests/conftest.py) and the local stack
(tools/motoserver.py) see KMS's answers.
"""

from __future__ import annotations

from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.kms.models import KmsBackend


class DisabledException(JsonRESTError):
    code = 400

    def __init__(self) -> None:
        super().__init__("DisabledException", "the key is disabled")


class KMSInvalidStateException(JsonRESTError):
    code = 400

    def __init__(self) -> None:
        super().__init__("KMSInvalidStateException", "the key is pending deletion")


def _check(backend: KmsBackend, key_id: str) -> None:
    key = backend.keys.get(backend.any_id_to_key_id(key_id)) if key_id else None
    if key is None:
        return
    if key.key_state == "PendingDeletion":
        raise KMSInvalidStateException()
    if key.key_state == "Disabled" or not key.enabled:
        raise DisabledException()


_installed: list[bool] = []


def install() -> None:
    """Idempotent; patches the class (every backend, every region)."""
    if _installed:
        return
    _installed.append(True)
    encrypt, decrypt, re_encrypt = KmsBackend.encrypt, KmsBackend.decrypt, KmsBackend.re_encrypt
    generate_mac = KmsBackend.generate_mac

    def checked_encrypt(self: KmsBackend, key_id: str, *args: Any, **kwargs: Any) -> Any:
        _check(self, key_id)
        return encrypt(self, key_id, *args, **kwargs)

    def checked_decrypt(self: KmsBackend, *args: Any, **kwargs: Any) -> Any:
        plaintext, arn = decrypt(self, *args, **kwargs)
        _check(self, arn)
        return plaintext, arn

    def checked_re_encrypt(self: KmsBackend, *args: Any, **kwargs: Any) -> Any:
        blob, source_arn, target_arn = re_encrypt(self, *args, **kwargs)
        _check(self, source_arn)
        _check(self, target_arn)
        return blob, source_arn, target_arn

    def generate_mac_naming_the_arn(self: KmsBackend, *args: Any, **kwargs: Any) -> tuple[str, str, str]:
        mac, algorithm, key_id = generate_mac(self, *args, **kwargs)
        _check(self, key_id)
        return mac, algorithm, self.keys[self.any_id_to_key_id(key_id)].arn

    KmsBackend.generate_mac = generate_mac_naming_the_arn  # type: ignore[method-assign]
    KmsBackend.encrypt = checked_encrypt  # type: ignore[method-assign]
    KmsBackend.decrypt = checked_decrypt  # type: ignore[method-assign]
    KmsBackend.re_encrypt = checked_re_encrypt  # type: ignore[method-assign]
