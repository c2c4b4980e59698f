"""The client's engine: endpoints, signing, the retry loop, hooks and the pooled transport.

Every request is signed (SigV4), sent over the client's connection pool with the
configured timeouts, and retried as ``Config`` says (config.py). ``Client`` (client.py)
puts one method per route on top of it.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
from collections.abc import Mapping
from typing import Any, Callable, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from pii_vault_client.config import Config
from pii_vault_client.errors import PiiVaultError, TransportError, error_from
from pii_vault_client.hooks import Events, RequestEvent
from pii_vault_client.models import Response
from pii_vault_client.signing import Signer, encoded_url
from pii_vault_client.transport import PooledTransport, Transport

_Client = TypeVar("_Client", bound="BaseClient")  # `with Client(...) as vault` keeps the subclass (Self needs 3.11)

RETRY_STATUSES = frozenset({409, 429, 503})
NOT_RETRIED_CODES = frozenset({"version_limit"})
IDEMPOTENCY_HEADER = "Idempotency-Key"
STAGES = ("writer", "reader", "masked")


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date; None if absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _segment(value: str) -> str:
    """One path segment, percent-encoded (an id can never add or climb a path level)."""
    if not isinstance(value, str) or not value:
        raise ValueError("ids must be non-empty strings")
    return quote(value, safe="")


class BaseClient:
    """Endpoints of the three API stages, credentials, config, transport, hooks."""

    def __init__(
        self,
        writer_url: str | None = None,
        reader_url: str | None = None,
        masked_url: str | None = None,
        *,
        session: Any = None,
        credentials: Any = None,
        profile: str | None = None,
        region: str | None = None,
        config: Config | None = None,
        transport: Transport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        urls = {"writer": writer_url, "reader": reader_url, "masked": masked_url}
        self.urls = {stage: url.rstrip("/") for stage, url in urls.items() if url}
        self.config = config or Config()
        self.events = Events()
        self._signer = Signer(session=session, credentials=credentials, region=region, profile=profile)
        self._transport: Transport = transport or PooledTransport(self.config)
        self._sleep = sleep
        self._rng = rng or random.SystemRandom()

    def close(self) -> None:
        """Close the pooled connections (a transport without ``close`` has none to close)."""
        close = getattr(self._transport, "close", None)
        if close is not None:
            close()

    def __enter__(self: _Client) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one call ------------------------------------------------------------------------

    def send(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        operation: str = "send",
    ) -> Response:
        """One call (with its retries); returns the last answer whatever its status."""
        method = method.upper()
        body = None if json_body is None else json.dumps(json_body, separators=(",", ":")).encode("utf-8")
        base = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            base.setdefault("Content-Type", "application/json")
        url = encoded_url(url)
        path = urlsplit(url).path
        repeatable = method == "GET" or any(k.lower() == IDEMPOTENCY_HEADER.lower() for k in base)
        attempt = 0
        while True:
            attempt += 1
            signed = self._signer.headers(method, url, body, base)  # fresh X-Amz-Date per attempt
            self.events.emit(RequestEvent("before-send", operation, method, path, attempt))
            started = time.monotonic()
            try:
                status, answer_headers, answer_body = self._transport(
                    method, url, signed, body, self.config.read_timeout
                )
            except OSError as exc:  # TransportFailure, and a transport's own timeouts and resets
                elapsed = time.monotonic() - started
                event = RequestEvent("after-receive", operation, method, path, attempt, None, type(exc).__name__)
                self.events.emit(_with(event, elapsed=elapsed))
                if not repeatable or attempt >= self.config.total_attempts:
                    raise TransportError(f"{method} {path}: no answer ({type(exc).__name__})") from exc
                self._sleep(self._jittered(self.config.backoff * 2 ** (attempt - 1)))
                continue
            response = Response(status, answer_headers, answer_body, attempt)
            code = error_from(status, answer_body).code if status >= 400 else None
            event = RequestEvent("after-receive", operation, method, path, attempt, status, code)
            self.events.emit(_with(event, elapsed=time.monotonic() - started, request_id=response.meta.request_id))
            wait = self._retry_wait(response, attempt, code)
            if wait is None:
                return response
            self._sleep(wait)

    def _retry_wait(self, response: Response, attempt: int, code: str | None) -> float | None:
        """Seconds to wait before retrying ``response``, or None to return it."""
        if response.status not in RETRY_STATUSES or attempt >= self.config.total_attempts:
            return None
        if code in NOT_RETRIED_CODES:
            return None
        told = retry_after_seconds(response.headers.get("retry-after"))
        wait = self.config.backoff * 2 ** (attempt - 1) if told is None else told
        if wait > self.config.max_retry_wait:
            return None
        return min(self._jittered(wait), self.config.max_retry_wait)

    def _jittered(self, wait: float) -> float:
        return wait * (1 + self._rng.uniform(0, 0.5))

    def request(self, method: str, url: str, **kwargs: Any) -> Response:
        """``send``, raising the typed ``PiiVaultError`` subclass for an error answer."""
        response = self.send(method, url, **kwargs)
        if not response.ok:
            raise error_from(response.status, response.body, retry_after_seconds(response.headers.get("retry-after")))
        return response

    def _url(self, stage: str, *segments: str, query: Mapping[str, str | None] | None = None) -> str:
        """``stage``'s URL of the path ``segments`` (odd ones are ids, each one encoded segment)."""
        base = self.urls.get(stage)
        if base is None:
            raise PiiVaultError(f"no {stage}_url was given to the client", code="not_configured")
        path = "/".join(_segment(s) if i % 2 else s for i, s in enumerate(segments))
        params = {k: v for k, v in (query or {}).items() if v is not None}
        return f"{base}/{path}" + (f"?{urlencode(params)}" if params else "")


def _with(event: RequestEvent, **changes: Any) -> RequestEvent:
    from dataclasses import replace

    return replace(event, **changes)
