"""Audit events: who touched which record's which fields. Never a value.

One JSON log line per completed operation, on the ``chalicelib.audit`` logger (Lambda
ships it to CloudWatch Logs). The caller comes from API Gateway's request context,
which the IAM authorizer fills with the SigV4 signer's identity. ``chalice local`` and
``chalice.test.Client`` give none: there the configured local caller stands in
(``PII_VAULT_LOCAL_CALLER``, see chalicelib/api/callers.py), else ``anonymous``.

    {"audit": "person.read", "actor": {"principal": "arn:aws:sts::1:assumed-role/app/s1", ...},
     "customer_id": "acme", "record_type": "person", "record_ids": ["9f..."],
     "fields": ["email", "name"], "version": 3}

A refused request (a caller not on the stage's list, a 404 probe, an integrity failure)
is audited the same way, as ``request.refused`` with the error code as ``outcome`` and
the route template (never the path or query as sent):

    {"audit": "request.refused", "outcome": "not_found", "route": "GET /customers/{customer_id}/people/{person_id}",
     "actor": {...}, "customer_id": "acme", "record_type": "person", "record_ids": ["9f..."], "fields": []}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

ANONYMOUS_PRINCIPAL = "anonymous"
REFUSED = "request.refused"
_LOGGER_NAME = "chalicelib.audit"  # stable: operators filter on it (it predates the support package)
_MAX_ID_LEN = 256


@dataclass(frozen=True)
class Actor:
    """The authenticated caller as API Gateway saw it (no secrets: no keys, no tokens)."""

    principal: str = ANONYMOUS_PRINCIPAL
    account_id: str | None = None
    source_ip: str | None = None
    request_id: str | None = None

    @classmethod
    def from_request_context(cls, context: Mapping[str, Any] | None) -> Actor:
        """``userArn`` (IAM authorizer), else ``caller``, else anonymous."""
        context = context if isinstance(context, Mapping) else {}
        identity = context.get("identity")
        identity = identity if isinstance(identity, Mapping) else {}
        return cls(
            principal=text(identity.get("userArn")) or text(identity.get("caller")) or ANONYMOUS_PRINCIPAL,
            account_id=text(identity.get("accountId")),
            source_ip=text(identity.get("sourceIp")),
            request_id=text(context.get("requestId")),
        )


ANONYMOUS = Actor()


def text(value: Any) -> str | None:
    """A non-empty string, cut to a bounded length (ids from a refused request are unchecked)."""
    return value[:_MAX_ID_LEN] if isinstance(value, str) and value else None


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
        outcome: str | None = None,
        route: str | None = None,
    ) -> None:
        """``fields`` are names only; callers pass dict keys, never dict values.
        ``outcome`` (an error code) and ``route`` are set for refusals only."""
        entry: dict[str, Any] = {
            "audit": event,
            "actor": {k: v for k, v in asdict(actor).items() if v is not None},
            "customer_id": text(customer_id) or "",
            "record_type": record_type,
            "record_ids": [text(record_id) or "" for record_id in record_ids],
            "fields": list(fields),
        }
        if version is not None:
            entry["version"] = version
        if outcome is not None:
            entry["outcome"] = outcome
        if route is not None:
            entry["route"] = route
        self._logger.info("%s", json.dumps(entry, sort_keys=True, separators=(",", ":")))
