"""Idempotent creates: a retried request with the same ``Idempotency-Key`` gets the
first answer back instead of writing again.

Built on aws-lambda-powertools' idempotency utility and its DynamoDB store, in a
table of its own (the writer may read it; it holds no PII). What is stored per key:
a hash of (scope, key), a fingerprint of the body and the first response (ids,
versions, timestamps). The fingerprint is an HMAC keyed by the client's idempotency
key, so a table reader cannot test guesses of the PII in a body without that key.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable

from chalicelib.errors import (
    IdempotencyKeyReusedError,
    RequestInProgressError,
    ServiceUnavailableError,
    ValidationError,
)

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def parse_key(raw: str | None) -> str | None:
    """The header value, or None when absent; printable ASCII, 1-255 characters."""
    if raw is None:
        return None
    if not _KEY.fullmatch(raw):
        raise ValidationError(f"{HEADER} must be 1-255 printable ASCII characters", field=HEADER)
    return raw


class IdempotentWrites:
    """Runs a write at most once per (scope, Idempotency-Key) within the TTL."""

    def __init__(self, persistence_layer: Any, *, ttl_seconds: int, key_prefix: str) -> None:
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

        self._persistence = persistence_layer
        self.ttl_seconds = ttl_seconds

        self._config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="fingerprint",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=ttl_seconds,
            hash_function="sha256",
            response_hook=_mark_replayed,
        )
        self._run = idempotent_function(
            data_keyword_argument="request",
            persistence_store=persistence_layer,
            config=self._config,
            key_prefix=key_prefix,
        )(_invoke)

    def run(
        self, scope: str, key: str, body: bytes, write: Callable[[], dict[str, Any]], lambda_context: Any = None
    ) -> dict[str, Any]:
        """``write()`` returns a JSON-able response dict; a replay returns the stored one."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyInconsistentStateError,
            IdempotencyPersistenceLayerError,
            IdempotencyValidationError,
        )

        import hashlib  # here: OpenSSL's hashlib only when a request carries a key
        import hmac

        if lambda_context is not None:
            self._config.register_lambda_context(lambda_context)
        fingerprint = hmac.new(key.encode("ascii"), body, hashlib.sha256).hexdigest()
        request = {"key": f"{scope}\n{key}", "fingerprint": fingerprint}
        done: list[dict[str, Any]] = []

        def write_once() -> dict[str, Any]:
            done.append(write())
            return done[0]

        try:
            return self._run(request=request, write=write_once)
        except IdempotencyValidationError:
            raise IdempotencyKeyReusedError(
                f"{HEADER} was already used with a different request body", field=HEADER
            ) from None
        except (IdempotencyAlreadyInProgressError, IdempotencyInconsistentStateError):
            raise RequestInProgressError(
                f"a request with this {HEADER} is still in progress; retry later", field=HEADER
            ) from None
        except IdempotencyPersistenceLayerError as exc:
            if done:
                # The write happened; only recording its answer failed. Answer it: a 503
                # would invite a retry that, once the in-progress record expires, writes
                # a second time.
                logger.warning("idempotency record not saved after a successful write: %s", type(exc).__name__)
                return done[0]
            raise ServiceUnavailableError("the idempotency store is unavailable; retry later") from exc


    def record_id(self, scope: str, key: str) -> str | None:
        """The id of the stored record of (scope, key), as Powertools names it (after ``run``).

        Used to file an erasure reference next to it (``store.ledger``); Powertools keeps
        its key derivation internal, hence the guarded access (pinned version, tested).
        """
        derive = getattr(self._persistence, "_get_hashed_idempotency_key", None)
        if derive is None or not getattr(self._persistence, "function_name", ""):
            return None
        record: str | None = derive({"key": f"{scope}\n{key}", "fingerprint": ""})
        return record


def _invoke(request: dict[str, str], write: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return write()


def _mark_replayed(response: dict[str, Any], _record: Any) -> dict[str, Any]:
    return {**response, "replayed": True}
