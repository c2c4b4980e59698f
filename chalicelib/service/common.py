"""What both services share: record kinds, ids, timestamps and the results they return."""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from typing import Any

PERSON = "person"
SECRET = "secret"  # noqa: S105 - a resource kind, not a credential


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def timestamp(moment: _dt.datetime) -> str:
    return moment.astimezone(_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_record_id() -> str:
    """128 random bits, hex: never derived from PII."""
    return os.urandom(16).hex()


def secret_record_id(secret_id: str, version: int) -> str:
    """AAD record id of one secret version: replaying v1 bytes as v2 fails to open."""
    return f"{secret_id}#v{version}"


@dataclass(frozen=True)
class WriteResult:
    id: str
    version: int
    timestamp: str


@dataclass(frozen=True)
class DecryptedPerson:
    """A person as read: all fields, or those asked for (``data``)."""

    id: str
    version: int
    created_at: str
    updated_at: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PeoplePage:
    items: list[DecryptedPerson]
    next_token: str | None


@dataclass(frozen=True)
class PeopleBatch:
    items: list[DecryptedPerson]
    missing: list[str]


@dataclass(frozen=True)
class DecryptedSecret:
    id: str
    version: int
    created_at: str
    value: str
