"""``Client``: the pii-vault API as Python calls.

Every request is signed (SigV4), sent with a timeout, and retried when the service says
so: 409, 429 and 503 answers are retried after their ``Retry-After`` (never sooner), plus
up to 50 % random jitter, at most ``max_attempts`` times in all and never waiting longer
than ``max_retry_wait`` seconds at once (a longer ``Retry-After`` is raised to the caller
at once). Without ``Retry-After`` the wait doubles from ``backoff`` seconds.
``version_limit`` (a full secret) is never retried: waiting cannot fix it. A request that
got no answer at all is retried only when repeating it is safe: reads, and writes that
carry an ``Idempotency-Key`` (creates and secret puts always do: the client makes a
random one, the same for every attempt of one call).
"""

from __future__ import annotations

import email.utils
import json
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from urllib.parse import quote, urlencode

from pii_vault_client.errors import PiiVaultError, TransportError, error_from
from pii_vault_client.signing import Signer, encoded_url, is_loopback

RETRY_STATUSES = frozenset({409, 429, 503})
NOT_RETRIED_CODES = frozenset({"version_limit"})
IDEMPOTENCY_HEADER = "Idempotency-Key"

# (method, url, headers, body, timeout) -> (status, headers with lower-case names, body)
Transport = Callable[[str, str, Mapping[str, str], Optional[bytes], float], tuple[int, dict[str, str], bytes]]


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    attempts: int = 1

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    @property
    def ok(self) -> bool:
        return self.status < 400


@dataclass(frozen=True)
class Page:
    """One page of a list: ``items`` and the opaque token of the next page (None at the end)."""

    items: list[dict[str, Any]]
    next: str | None


@dataclass(frozen=True)
class People:
    """A multi-get: the people found, in the order asked, and the ids that were not."""

    items: list[dict[str, Any]]
    missing: list[str] = field(default_factory=list)


def urllib_transport(
    method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
) -> tuple[int, dict[str, str], bytes]:
    """HTTP with the standard library. Proxies from the environment, except for loopback URLs."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({} if is_loopback(url) else None))
    # S310: the URL is the Client's own endpoint (an http(s) API URL) plus a path it built.
    request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)  # noqa: S310
    try:
        with opener.open(request, timeout=timeout) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as answer:
        with answer:
            return answer.code, {k.lower(): v for k, v in answer.headers.items()}, answer.read()


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


def _fields(fields: Iterable[str] | None) -> str | None:
    return None if fields is None else ",".join(fields)


class Client:
    """pii-vault's two stages: ``writer_url`` for writes, ``reader_url`` for reads.

    ``Client(writer_url="http://127.0.0.1:8001", reader_url="http://127.0.0.1:8002")``
    talks to ``make dev``; deployed, pass each stage's invoke URL (``https://<id>.
    execute-api.<region>.amazonaws.com/api``). Either may be omitted if unused.
    """

    def __init__(
        self,
        writer_url: str | None = None,
        reader_url: str | None = None,
        *,
        region: str | None = None,
        credentials: Any = None,
        profile: str | None = None,
        timeout: float = 10.0,
        max_attempts: int = 4,
        backoff: float = 0.2,
        max_retry_wait: float = 20.0,
        transport: Transport = urllib_transport,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1 or timeout <= 0 or backoff < 0 or max_retry_wait < 0:
            raise ValueError("max_attempts >= 1, timeout > 0, backoff >= 0 and max_retry_wait >= 0")
        self.writer_url = writer_url.rstrip("/") if writer_url else None
        self.reader_url = reader_url.rstrip("/") if reader_url else None
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_retry_wait = max_retry_wait
        self._signer = Signer(credentials=credentials, region=region, profile=profile)
        self._transport = transport
        self._sleep = sleep
        self._rng = rng or random.SystemRandom()

    # -- low level -------------------------------------------------------------------

    def send(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """One call (with its retries); returns the last answer whatever its status."""
        method = method.upper()
        body = None if json_body is None else json.dumps(json_body, separators=(",", ":")).encode("utf-8")
        base = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            base.setdefault("Content-Type", "application/json")
        url = encoded_url(url)
        repeatable = method == "GET" or any(k.lower() == IDEMPOTENCY_HEADER.lower() for k in base)
        attempt = 0
        while True:
            attempt += 1
            signed = self._signer.headers(method, url, body, base)  # fresh X-Amz-Date per attempt
            try:
                status, answer_headers, answer_body = self._transport(method, url, signed, body, self.timeout)
            except (OSError, urllib.error.URLError) as exc:  # includes timeouts and resets
                if not repeatable or attempt >= self.max_attempts:
                    raise TransportError(f"{method} {url}: no answer ({type(exc).__name__})") from exc
                self._sleep(self._jittered(self.backoff * 2 ** (attempt - 1)))
                continue
            response = Response(status, answer_headers, answer_body, attempt)
            wait = self._retry_wait(response, attempt)
            if wait is None:
                return response
            self._sleep(wait)

    def _retry_wait(self, response: Response, attempt: int) -> float | None:
        """Seconds to wait before retrying ``response``, or None to return it."""
        if response.status not in RETRY_STATUSES or attempt >= self.max_attempts:
            return None
        if error_from(response.status, response.body).code in NOT_RETRIED_CODES:
            return None
        told = retry_after_seconds(response.headers.get("retry-after"))
        wait = self.backoff * 2 ** (attempt - 1) if told is None else told
        if wait > self.max_retry_wait:
            return None
        return min(self._jittered(wait), self.max_retry_wait)

    def _jittered(self, wait: float) -> float:
        return wait * (1 + self._rng.uniform(0, 0.5))

    def request(self, method: str, url: str, **kwargs: Any) -> Response:
        """``send``, raising the typed ``PiiVaultError`` subclass for an error answer."""
        response = self.send(method, url, **kwargs)
        if not response.ok:
            raise error_from(response.status, response.body, retry_after_seconds(response.headers.get("retry-after")))
        return response

    def _url(self, stage: str, *segments: str, query: Mapping[str, str | None] | None = None) -> str:
        base = self.writer_url if stage == "writer" else self.reader_url
        if base is None:
            raise PiiVaultError(f"no {stage}_url was given to the client", code="not_configured")
        path = "/".join(_segment(s) if i % 2 else s for i, s in enumerate(segments))
        params = {k: v for k, v in (query or {}).items() if v is not None}
        return f"{base}/{path}" + (f"?{urlencode(params)}" if params else "")

    @staticmethod
    def _if_match(version: int | None) -> dict[str, str]:
        return {} if version is None else {"If-Match": f'"{int(version)}"'}

    @staticmethod
    def _key(idempotency_key: str | None) -> dict[str, str]:
        return {IDEMPOTENCY_HEADER: idempotency_key or str(uuid.uuid4())}

    # -- people ------------------------------------------------------------------------

    def create_person(
        self, customer_id: str, person: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """``{"id", "version", "created_at"}``. Retries reuse one random Idempotency-Key."""
        url = self._url("writer", "customers", customer_id, "people")
        answer: dict[str, Any] = self.request(
            "POST", url, json_body=dict(person), headers=self._key(idempotency_key)
        ).json()
        return answer

    def replace_person(
        self, customer_id: str, person_id: str, person: Mapping[str, Any], *, if_match: int | None = None
    ) -> dict[str, Any]:
        url = self._url("writer", "customers", customer_id, "people", person_id)
        answer: dict[str, Any] = self.request(
            "PUT", url, json_body=dict(person), headers=self._if_match(if_match)
        ).json()
        return answer

    def patch_person(
        self, customer_id: str, person_id: str, changes: Mapping[str, Any], *, if_match: int | None = None
    ) -> dict[str, Any]:
        url = self._url("writer", "customers", customer_id, "people", person_id)
        answer: dict[str, Any] = self.request(
            "PATCH", url, json_body=dict(changes), headers=self._if_match(if_match)
        ).json()
        return answer

    def delete_person(self, customer_id: str, person_id: str, *, if_match: int | None = None) -> None:
        url = self._url("writer", "customers", customer_id, "people", person_id)
        self.request("DELETE", url, headers=self._if_match(if_match))

    def get_person(self, customer_id: str, person_id: str, *, fields: Iterable[str] | None = None) -> dict[str, Any]:
        url = self._url("reader", "customers", customer_id, "people", person_id, query={"fields": _fields(fields)})
        answer: dict[str, Any] = self.request("GET", url).json()
        return answer

    def list_pages(
        self, customer_id: str, *, limit: int | None = None, fields: Iterable[str] | None = None
    ) -> Iterator[Page]:
        """Every page of the tenant's people, fetched one at a time as you iterate."""
        token: str | None = None
        while True:
            query = {"limit": None if limit is None else str(limit), "fields": _fields(fields), "next": token}
            body = self.request("GET", self._url("reader", "customers", customer_id, "people", query=query)).json()
            page = Page(list(body.get("items") or []), body.get("next"))
            yield page
            if not page.next:
                return
            token = page.next

    def iter_people(self, customer_id: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every person of the tenant, across pages."""
        for page in self.list_pages(customer_id, **kwargs):
            yield from page.items

    def get_people(self, customer_id: str, person_ids: Sequence[str], *, fields: Iterable[str] | None = None) -> People:
        """Many people in one request (the service bounds how many ids one request may name)."""
        query = {"ids": ",".join(person_ids), "fields": _fields(fields)}
        body = self.request("GET", self._url("reader", "customers", customer_id, "people", query=query)).json()
        return People(list(body.get("items") or []), list(body.get("missing") or []))

    # -- secrets -----------------------------------------------------------------------

    def put_secret(
        self, customer_id: str, secret_id: str, value: str, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """A new version: ``{"id", "version", "created_at"}``. Retries reuse one Idempotency-Key."""
        url = self._url("writer", "customers", customer_id, "secrets", secret_id)
        answer: dict[str, Any] = self.request(
            "PUT", url, json_body={"value": value}, headers=self._key(idempotency_key)
        ).json()
        return answer

    def get_secret(self, customer_id: str, secret_id: str, *, version: int | None = None) -> dict[str, Any]:
        query = {"version": None if version is None else str(version)}
        answer: dict[str, Any] = self.request(
            "GET", self._url("reader", "customers", customer_id, "secrets", secret_id, query=query)
        ).json()
        return answer

    def secret_versions(self, customer_id: str, secret_id: str) -> list[dict[str, Any]]:
        url = self._url("reader", "customers", customer_id, "secrets", secret_id, "versions")
        return list(self.request("GET", url).json()["versions"])

    def delete_secret(self, customer_id: str, secret_id: str) -> None:
        self.request("DELETE", self._url("writer", "customers", customer_id, "secrets", secret_id))
