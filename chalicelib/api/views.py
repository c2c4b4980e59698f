"""JSON shapes of the answers: the service's domain values -> response bodies.

Their schemas (PersonView, PeoplePage, SecretView, ...) are in the OpenAPI documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from chalicelib.service import DecryptedPerson, DecryptedSecret, PeopleBatch, PeoplePage, WriteResult


class _VersionInfo(Protocol):
    @property
    def version(self) -> int: ...

    @property
    def created_at(self) -> str: ...


def person(view: DecryptedPerson) -> dict[str, Any]:
    return {
        "id": view.id,
        "version": view.version,
        "created_at": view.created_at,
        "updated_at": view.updated_at,
        "data": view.data,
    }


def people_page(page: PeoplePage) -> dict[str, Any]:
    return {"items": [person(view) for view in page.items], "next": page.next_token}


def people_found(found: Sequence[DecryptedPerson]) -> dict[str, Any]:
    """A search answers the matching people (an empty list when none)."""
    return {"items": [person(view) for view in found]}


def people_batch(batch: PeopleBatch) -> dict[str, Any]:
    """A multi-get answers in the page shape, never with a next page, plus the ids not found."""
    return {"items": [person(view) for view in batch.items], "next": None, "missing": batch.missing}


def secret(view: DecryptedSecret) -> dict[str, Any]:
    return {"id": view.id, "version": view.version, "created_at": view.created_at, "value": view.value}


def secret_versions(secret_id: str, versions: Sequence[_VersionInfo]) -> dict[str, Any]:
    return {"id": secret_id, "versions": [{"version": v.version, "created_at": v.created_at} for v in versions]}


def written(result: WriteResult, stamp_key: str) -> dict[str, Any]:
    """``stamp_key`` is ``created_at`` for a new record or version, ``updated_at`` for a change."""
    return {"id": result.id, "version": result.version, stamp_key: result.timestamp}
