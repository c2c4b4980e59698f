"""The client's answers as typed objects (frozen dataclasses).

Each carries ``meta`` (``ResponseMetadata``: status, response headers, attempts, request
id) and, where the API versions the record, ``version`` and its ``etag`` (the value to
send as ``If-Match``). Decrypted values (``Person.data``, ``Secret.value``) are left out
of ``repr()``, so printing or logging an answer never shows them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ResponseMetadata:
    """One HTTP answer: ``headers`` with lower-case names; ``attempts`` includes retries."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    attempts: int = 1

    @property
    def request_id(self) -> str | None:
        """API Gateway's request id (for support and the audit log), when the answer has one."""
        return self.headers.get("x-amzn-requestid") or self.headers.get("apigw-requestid")


@dataclass(frozen=True)
class Response:
    """A raw answer (``Client.send``): status, lower-case headers, body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes = field(repr=False)
    attempts: int = 1

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def meta(self) -> ResponseMetadata:
        return ResponseMetadata(self.status, self.headers, self.attempts)


def etag_of(version: int) -> str:
    """The API's ETag for a version: the number, quoted."""
    return f'"{version}"'


@dataclass(frozen=True)
class Written:
    """A create, replace, patch or secret put: the record's id and new ``version``.

    ``location`` is set on a person's create, ``replayed`` when the answer is the stored
    one of an earlier request with the same Idempotency-Key."""

    id: str
    version: int
    etag: str
    created_at: str | None = None
    updated_at: str | None = None
    location: str | None = None
    replayed: bool = False
    meta: ResponseMetadata = field(default_factory=lambda: ResponseMetadata(0), compare=False)


@dataclass(frozen=True)
class Person:
    """A person as read: ``data`` holds the fields asked for (masked stage: masked values)."""

    id: str
    version: int
    etag: str
    created_at: str | None
    updated_at: str | None
    data: dict[str, Any] = field(repr=False)
    meta: ResponseMetadata = field(default_factory=lambda: ResponseMetadata(0), compare=False)


@dataclass(frozen=True)
class Page:
    """One page of a tenant's people; ``next`` is the token of the following page (None at the end)."""

    items: list[Person]
    next: str | None
    meta: ResponseMetadata = field(default_factory=lambda: ResponseMetadata(0), compare=False)


@dataclass(frozen=True)
class People:
    """A multi-get (the people found, in the order asked, and the ids that were not) or a search."""

    items: list[Person]
    missing: list[str] = field(default_factory=list)
    meta: ResponseMetadata = field(default_factory=lambda: ResponseMetadata(0), compare=False)


@dataclass(frozen=True)
class Secret:
    id: str
    version: int
    etag: str
    created_at: str
    value: str = field(repr=False)
    meta: ResponseMetadata = field(default_factory=lambda: ResponseMetadata(0), compare=False)


@dataclass(frozen=True)
class SecretVersion:
    version: int
    created_at: str


@dataclass(frozen=True)
class SecretVersions:
    """A secret's versions, oldest first (metadata only, no values)."""

    id: str
    versions: list[SecretVersion]
    meta: ResponseMetadata = field(default_factory=lambda: ResponseMetadata(0), compare=False)


@dataclass(frozen=True)
class SecretDeletion:
    """A secret's DELETE: ``done`` once nothing of it is left; else ``remaining_versions``
    are still to remove (repeat the DELETE, or let ``delete_secret(wait=True)`` do it).
    ``requests`` counts the DELETEs sent (each retried as configured)."""

    id: str
    done: bool
    remaining_versions: int
    requests: int
    meta: ResponseMetadata = field(default_factory=lambda: ResponseMetadata(0), compare=False)


# -- JSON answers -> objects -------------------------------------------------------------


def written(answer: Response) -> Written:
    body, headers = answer.json(), answer.headers
    return Written(
        id=body["id"],
        version=int(body["version"]),
        etag=headers.get("etag") or etag_of(int(body["version"])),
        created_at=body.get("created_at"),
        updated_at=body.get("updated_at"),
        location=headers.get("location"),
        replayed=headers.get("idempotent-replayed") == "true",
        meta=answer.meta,
    )


def person(body: dict[str, Any], meta: ResponseMetadata) -> Person:
    version = int(body["version"])
    return Person(
        id=body["id"],
        version=version,
        etag=meta.headers.get("etag") or etag_of(version),
        created_at=body.get("created_at"),
        updated_at=body.get("updated_at"),
        data=dict(body.get("data") or {}),
        meta=meta,
    )


def page(answer: Response) -> Page:
    body, meta = answer.json(), answer.meta
    items = [person(item, ResponseMetadata(meta.status)) for item in body.get("items") or []]
    return Page(items, body.get("next"), meta)


def people(answer: Response) -> People:
    body, meta = answer.json(), answer.meta
    items = [person(item, ResponseMetadata(meta.status)) for item in body.get("items") or []]
    return People(items, list(body.get("missing") or []), meta)


def secret(answer: Response) -> Secret:
    body = answer.json()
    version = int(body["version"])
    etag = answer.headers.get("etag") or etag_of(version)
    return Secret(body["id"], version, etag, body["created_at"], body["value"], answer.meta)


def secret_versions(answer: Response) -> SecretVersions:
    body = answer.json()
    versions = [SecretVersion(int(v["version"]), v["created_at"]) for v in body.get("versions") or []]
    return SecretVersions(body["id"], versions, answer.meta)
