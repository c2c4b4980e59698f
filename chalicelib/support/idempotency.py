"""Idempotent creates: a retried request with the same ``Idempotency-Key`` gets the
first answer back instead of writing again.

Built on aws-lambda-powertools' idempotency utility and its DynamoDB store, in a
table of its own (the writer may read it; it holds no PII). What is stored per key:
a hash of (scope, key), a hash of the body's fingerprint and the first answer: the
record's id, version and creation time, and a MAC over them. The fingerprint is an HMAC
of the body keyed by the scope and the client's key, and keys must have at least 128
bits in form (a UUID, or 22 or more base64url characters): a table reader holds neither
the key (only its hash) nor any other secret, so it cannot test guesses of the PII in a
body. No server-side secret is used: the writer may only kms:Encrypt (randomised, so no
stable secret comes out of it) and a per-container secret would break replays across
containers (SECURITY.md).

A replay is rebuilt, never copied: the stored (id, version, created_at) must parse, the
id must be one the route can have made, and the MAC, keyed by the client's key (which
the table never holds) and binding the scope (caller, route, tenant), the request's
fingerprint and the three values, must verify. The edge then builds status and headers
itself (no stored header is ever sent). A record that does not verify, such as one
edited in its table to name another person, is an integrity error, never an answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
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
    return hmac.new(f"{scope}\n{key}".encode(), body, hashlib.sha256).hexdigest()


_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_MAX_VERSION = 2**31
_ANSWER_LABEL = b"pii-vault idempotent answer v1"


@dataclass(frozen=True)
class StoredAnswer:
    """What an idempotent create answers, and all a replay is rebuilt from."""

    id: str
    version: int
    created_at: str


def _answer_mac(scope: str, key: str, request: str, answer: StoredAnswer) -> str:
    mac_key = hmac.new(f"{scope}\n{key}".encode(), _ANSWER_LABEL, hashlib.sha256).digest()
    message = "\n".join((scope, request, answer.id, str(answer.version), answer.created_at)).encode()
    return hmac.new(mac_key, message, hashlib.sha256).hexdigest()


def seal_answer(scope: str, key: str, request: str, answer: StoredAnswer) -> dict[str, Any]:
    """The record Powertools stores for ``answer`` (``request``: the request's fingerprint)."""
    return {
        "id": answer.id,
        "version": answer.version,
        "created_at": answer.created_at,
        "mac": _answer_mac(scope, key, request, answer),
    }


def open_answer(scope: str, key: str, request: str, stored: Any, valid_id: Callable[[str], bool]) -> StoredAnswer:
    """The answer a stored record holds, once every part of it is checked; else IntegrityError."""
    malformed = IntegrityError("a stored idempotent answer is malformed")
    if not isinstance(stored, dict) or set(stored) != {"id", "version", "created_at", "mac"}:
        raise malformed
    record_id, version, created_at, mac = (stored[name] for name in ("id", "version", "created_at", "mac"))
    if (
        not isinstance(record_id, str)
        or not valid_id(record_id)
        or isinstance(version, bool)
        or not isinstance(version, int)
        or not 1 <= version <= _MAX_VERSION
        or not isinstance(created_at, str)
        or not _TIMESTAMP.fullmatch(created_at)
        or not isinstance(mac, str)
    ):
        raise malformed
    answer = StoredAnswer(record_id, version, created_at)
    if not hmac.compare_digest(mac, _answer_mac(scope, key, request, answer)):
        raise IntegrityError("a stored idempotent answer does not match its request")
    return answer


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
        )
        self._run = idempotent_function(
            data_keyword_argument="request",
            persistence_store=persistence_layer,
            config=self._config,
            key_prefix=key_prefix,
        )(_invoke)

    def run(
        self,
        scope: str,
        key: str,
        body: bytes,
        write: Callable[[], StoredAnswer],
        lambda_context: Any = None,
        *,
        valid_id: Callable[[str], bool],
    ) -> tuple[StoredAnswer, bool]:
        """(answer, replayed): ``write()``'s answer, or the one stored for the same request,
        rebuilt and checked (``open_answer``; ``valid_id``: could this route have made the id)."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyInconsistentStateError,
            IdempotencyPersistenceLayerError,
            IdempotencyValidationError,
        )

        if lambda_context is not None:
            self._config.register_lambda_context(lambda_context)
        request = fingerprint(scope, key, body)
        done: list[StoredAnswer] = []

        def write_once() -> dict[str, Any]:
            done.append(write())
            return seal_answer(scope, key, request, done[0])

        try:
            stored = self._run(request={"key": f"{scope}\n{key}", "fingerprint": request}, write=write_once)
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
                return done[0], False
            raise ServiceUnavailableError("the idempotency store is unavailable; retry later") from exc
        if done:
            return done[0], False
        return open_answer(scope, key, request, stored, valid_id), True

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
