"""JSON shapes of the answers: the service's domain values -> response bodies.

Each view returns a TypedDict of ``shapes`` (imported for the type checker only: the
deployed functions never load it); the OpenAPI schemas derive their fields from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from chalicelib.service import DecryptedPerson, DecryptedSecret, PeopleBatch, PeoplePage, WriteResult

if TYPE_CHECKING:
    from chalicelib.api import shapes


class _VersionInfo(Protocol):
    @property
    def version(self) -> int: ...

    @property
    def created_at(self) -> str: ...


def person(view: DecryptedPerson) -> shapes.PersonView:
    return {
        "id": view.id,
        "version": view.version,
        "created_at": view.created_at,
        "updated_at": view.updated_at,
        "data": view.data,
    }


def people_page(page: PeoplePage) -> shapes.PeoplePage:
    return {"items": [person(view) for view in page.items], "next": page.next_token}


def people_found(found: Sequence[DecryptedPerson]) -> shapes.PeopleFound:
    """A search answers the matching people (an empty list when none)."""
    return {"items": [person(view) for view in found]}


def people_batch(batch: PeopleBatch) -> shapes.PeoplePage:
    """A multi-get answers in the page shape, never with a next page, plus the ids not found."""
    return {"items": [person(view) for view in batch.items], "next": None, "missing": batch.missing}


def secret(view: DecryptedSecret) -> shapes.SecretView:
    return {"id": view.id, "version": view.version, "created_at": view.created_at, "value": view.value}


def secret_versions(secret_id: str, versions: Sequence[_VersionInfo]) -> shapes.SecretVersions:
    return {"id": secret_id, "versions": [{"version": v.version, "created_at": v.created_at} for v in versions]}


def created(result: WriteResult) -> shapes.Created:
    """A new record or version (201)."""
    return {"id": result.id, "version": result.version, "created_at": result.timestamp}


def updated(result: WriteResult) -> shapes.Updated:
    """A changed record (200)."""
    return {"id": result.id, "version": result.version, "updated_at": result.timestamp}


def delete_in_progress(secret_id: str, remaining: int) -> shapes.DeleteInProgress:
    """A DELETE that continues over further requests (202): repeat it after Retry-After."""
    return {"id": secret_id, "status": "deleting", "remaining_versions": remaining}
