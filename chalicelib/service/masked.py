"""The masked stage's use cases: load and open masked projections only.

Support tools see what ``chalicelib.domain.masking`` keeps of each field (an initial, a year, a
city). The service's store fetches nothing but the masked view and its opener accepts only
masked-view data keys (``crypto.MASKED_KINDS``), whose KMS context the stage's role alone
may decrypt; a full value cannot reach this code, whatever a bug in it does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.domain import validation
from chalicelib.envelope import bound_metadata
from chalicelib.envelope.format import FORMAT_V2, FORMAT_V3, Opener, RecordRef, blob_version
from chalicelib.service.common import PERSON, DecryptedPerson
from chalicelib.service.people import PeopleReads
from chalicelib.store.records import META_UPDATED, MaskedPeopleStore, Page, PersonRecord
from chalicelib.support.audit import AuditLog
from chalicelib.support.errors import IntegrityError


class MaskedService(PeopleReads):
    """Reads masked projections of people. Holds no way to write, encrypt, or open a full value."""

    EVENTS = ("person.masked_read", "person.masked_list", "person.masked_batch_read")

    def __init__(self, repository: MaskedPeopleStore, opener: Opener, audit: AuditLog | None = None) -> None:
        super().__init__(opener, audit)
        self._repo = repository

    def _view(self, record: PersonRecord, fields: tuple[str, ...], opener: Opener) -> DecryptedPerson:
        """The masked projections of ``fields``; a field without one answers None.

        A record written before the masked view existed has no projections (every field
        None, metadata reported as stored). Every write that seals projections also seals
        the view's metadata (version, update time), so projections without it, or metadata
        that fails to open with the stored attributes, are an integrity error.
        """
        ref = RecordRef(record.customer_id, PERSON, record.person_id)
        blobs = record.masked
        bindings: dict[str, str] = {}
        if META_UPDATED in blobs:
            if blob_version(blobs[META_UPDATED]) not in (FORMAT_V2, FORMAT_V3):
                raise IntegrityError("sealed metadata is not in format v2 or v3")
            bindings[META_UPDATED] = bound_metadata.person_masked_updated(record.version, record.updated_at)
        elif blobs:
            raise IntegrityError("a stored record's masked view lacks its sealed metadata")
        present = tuple(name for name in fields if name in blobs)
        opened = opener.open(ref, blobs, record.masked_slots, (*present, *bindings), bindings, record.masked_refs)
        for name in bindings:
            bound_metadata.require_empty(opened.pop(name), name)
        data: dict[str, Any] = {
            name: validation.decode_field(name, opened[name]) if name in opened else None for name in fields
        }
        return DecryptedPerson(record.person_id, record.version, record.created_at, record.updated_at, data)

    def _fetch_one(self, customer_id: str, person_id: str) -> PersonRecord | None:
        return self._repo.get_masked_person(customer_id, person_id)

    def _fetch_page(self, customer_id: str, limit: int, token: str | None) -> Page:
        return self._repo.list_masked_people(customer_id, limit, token)

    def _fetch_many(self, customer_id: str, person_ids: Sequence[str]) -> list[PersonRecord]:
        return self._repo.get_masked_people(customer_id, person_ids)
