"""Settings read from the environment, in one place.

Everything else in chalicelib receives a ``Settings`` object (or the values in it);
no other module reads ``os.environ``. boto3 itself still honours the standard AWS
variables (``AWS_ENDPOINT_URL``, credentials), which is how the local stack points
the same code at moto.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from chalicelib.errors import ConfigurationError

APP_NAME = "pii-vault"
ROLES = ("writer", "reader")
DEFAULT_TABLE_NAME = "pii-vault"
DEFAULT_KMS_KEY_ID = "alias/pii-vault"


@dataclass(frozen=True)
class Settings:
    """What one deployed function needs to know about its world."""

    role: str
    table_name: str = DEFAULT_TABLE_NAME
    kms_key_id: str = DEFAULT_KMS_KEY_ID
    region: str | None = None
    app_name: str = APP_NAME
    idempotency_table_name: str = DEFAULT_TABLE_NAME + "-idempotency"
    idempotency_ttl_seconds: int = 24 * 3600

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ConfigurationError(
                f"PII_VAULT_ROLE must be one of {', '.join(ROLES)}; "
                f"got {self.role!r}. Deploy with --stage writer or --stage reader."
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, role: str | None = None) -> "Settings":
        """Read settings; ``role`` (tests building both apps in one process) overrides the env."""
        env = os.environ if environ is None else environ
        table_name = env.get("PII_VAULT_TABLE", DEFAULT_TABLE_NAME)
        return cls(
            role=env.get("PII_VAULT_ROLE", "") if role is None else role,
            table_name=table_name,
            kms_key_id=env.get("PII_VAULT_KMS_KEY_ID", DEFAULT_KMS_KEY_ID),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            idempotency_table_name=env.get("PII_VAULT_IDEMPOTENCY_TABLE", table_name + "-idempotency"),
            idempotency_ttl_seconds=_int(env, "PII_VAULT_IDEMPOTENCY_TTL_SECONDS", 24 * 3600),
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer") from None
    if value < 0:
        raise ConfigurationError(f"{name} must not be negative")
    return value
