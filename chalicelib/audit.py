"""Audit events: who touched which record's which fields. Never a value.

One JSON log line per completed operation, on the ``chalicelib.audit`` logger (Lambda
ships it to CloudWatch Logs). The caller comes from API Gateway's request context,
which the IAM authorizer fills with the SigV4 signer's identity; ``chalice local`` and
``chalice.test.Client`` give no identity, which is recorded as ``anonymous``.

    {"audit": "person.read", "actor": {"principal": "arn:aws:iam::1:role/app", ...},
     "customer_id": "acme", "record_type": "person", "record_ids": ["9f..."],
     "fields": ["email", "name"], "version": 3}
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping

ANONYMOUS_PRINCIPAL = "anonymous"
_LOGGER_NAME = "chalicelib.audit"
_MAX_ID_LEN = 256


@dataclass(frozen=True)
class Actor:
    """The authenticated caller as API Gateway saw it (no secrets: no keys, no tokens)."""

    principal: str = ANONYMOUS_PRINCIPAL
    account_id: str | None = None
    source_ip: str | None = None
    request_id: str | None = None

    @classmethod
    def from_request_context(cls, context: Mapping[str, Any] | None) -> "Actor":
        """``userArn`` (IAM authorizer), else ``caller``, else anonymous."""
        context = context if isinstance(context, Mapping) else {}
        identity = context.get("identity")
        identity = identity if isinstance(identity, Mapping) else {}

        def text(value: Any) -> str | None:
            return value[:_MAX_ID_LEN] if isinstance(value, str) and value else None

        return cls(
            principal=text(identity.get("userArn")) or text(identity.get("caller")) or ANONYMOUS_PRINCIPAL,
            account_id=text(identity.get("accountId")),
            source_ip=text(identity.get("sourceIp")),
            request_id=text(context.get("requestId")),
        )


ANONYMOUS = Actor()


class AuditLog:
    """Emits audit events. Tests inject their own ``logging.Logger`` or read caplog."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger(_LOGGER_NAME)

    def emit(
        self,
        event: str,
        actor: Actor,
        *,
        customer_id: str,
        record_type: str,
        record_ids: Iterable[str],
        fields: Iterable[str] = (),
        version: int | None = None,
    ) -> None:
        """``fields`` are names only; callers pass dict keys, never dict values."""
        entry: dict[str, Any] = {
            "audit": event,
            "actor": {k: v for k, v in asdict(actor).items() if v is not None},
            "customer_id": customer_id,
            "record_type": record_type,
            "record_ids": list(record_ids),
            "fields": list(fields),
        }
        if version is not None:
            entry["version"] = version
        self._logger.info("%s", json.dumps(entry, sort_keys=True, separators=(",", ":")))
