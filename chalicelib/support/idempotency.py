"""Idempotent creates: a retried request with the same ``Idempotency-Key`` gets the
first answer back instead of writing again.

Built on aws-lambda-powertools' idempotency utility and its DynamoDB store, in a
table of its own (the writer may read it; it holds no PII). What is stored per key:
a hash of (scope, key), a hash of the body's fingerprint and the first response (ids,
versions, timestamps). The fingerprint is an HMAC of the body keyed by the scope and
the client's key, and keys must have at least 128 bits in form (a UUID, or 22 or more
base64url characters): a table reader holds neither the key (only its hash) nor any
other secret, so it cannot test guesses of the PII in a body. No server-side secret
is used: the writer may only kms:Encrypt (randomised, so no stable secret comes out of
it) and a per-container secret would break replays across containers (SECURITY.md).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from chalicelib.support.errors import (
    IdempotencyKeyReusedError,
    IntegrityError,
    RequestInProgressError,
    ServiceUnavailableError,
    ValidationError,
)

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
# At least 128 bits in form: 22 base64url characters carry 132. A canonical UUID
# (36 characters of hex and hyphens) is a special case of the same alphabet.
MIN_KEY_CHARS = 22
MAX_KEY_CHARS = 255
KEY = re.compile(f"[A-Za-z0-9_-]{{{MIN_KEY_CHARS},{MAX_KEY_CHARS}}}")


def parse_key(raw: str | None) -> str | None:
    """The header value, or None when absent; a UUID or 22-255 base64url characters."""
    if raw is None:
        return None
    if not KEY.fullmatch(raw):
        raise ValidationError(
            f"{HEADER} must be a random UUID or {MIN_KEY_CHARS}-{MAX_KEY_CHARS} base64url characters "
            "(A-Z a-z 0-9 _ -), at least 128 random bits",
            field=HEADER,
        )
    return raw


def fingerprint(scope: str, key: str, body: bytes) -> str:
    """HMAC-SHA256 of the body keyed by (scope, key): the same on every container, and
    useless to whoever lacks the key (the table holds only a hash of scope and key)."""
    import hashlib  # here: OpenSSL's hashlib only when a request carries a key
    import hmac

    return hmac.new(f"{scope}\n{key}".encode(), body, hashlib.sha256).hexdigest()


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

        if lambda_context is not None:
            self._config.register_lambda_context(lambda_context)
        request = {"key": f"{scope}\n{key}", "fingerprint": fingerprint(scope, key, body)}
        done: list[dict[str, Any]] = []

        def write_once() -> dict[str, Any]:
            done.append(write())
            return done[0]

        try:
            answer = self._run(request=request, write=write_once)
        except json.JSONDecodeError:
            if done:
                raise
            raise IntegrityError("a stored idempotent answer is malformed") from None
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
        if not isinstance(answer, dict):
            raise IntegrityError("a stored idempotent answer is malformed")
        return answer

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


def _mark_replayed(response: Any, idempotent_data: Any) -> Any:
    """The stored answer marked as a replay (one that is not an object is left for ``run`` to refuse)."""
    return {**response, "replayed": True} if isinstance(response, dict) else response
