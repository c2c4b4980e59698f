"""The masked stage's use cases: load and open masked projections only.

Support tools see what ``chalicelib.masking`` keeps of each field (an initial, a year, a
city). The service's store fetches nothing but the masked view and its opener accepts only
masked-view data keys (``crypto.MASKED_KINDS``), whose KMS context the stage's role alone
may decrypt; a full value cannot reach this code, whatever a bug in it does.
"""

from __future__ import annotations

from typing import Any

from chalicelib import metadata, models
from chalicelib.audit import ANONYMOUS, Actor, AuditLog
from chalicelib.crypto import FORMAT_V2, Opener, RecordRef, blob_version
from chalicelib.errors import IntegrityError, NotFoundError
from chalicelib.service.common import PERSON, DecryptedPerson, PeopleBatch, PeoplePage
from chalicelib.store.records import META_UPDATED, MaskedPeopleStore, PersonRecord


class MaskedService:
    """Reads masked projections of people. Holds no way to write, encrypt, or open a full value."""

    def __init__(self, repository: MaskedPeopleStore, opener: Opener, audit: AuditLog | None = None) -> None:
        self._repo = repository
        self._opener = opener
        self._audit = audit or AuditLog()

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
            if blob_version(blobs[META_UPDATED]) != FORMAT_V2:
                raise IntegrityError("sealed metadata is not in format v2")
            bindings[META_UPDATED] = metadata.person_masked_updated(record.version, record.updated_at)
        elif blobs:
            raise IntegrityError("a stored record's masked view lacks its sealed metadata")
        present = tuple(name for name in fields if name in blobs)
        opened = opener.open(ref, blobs, record.masked_slots, (*present, *bindings), bindings)
        for name in bindings:
            metadata.require_empty(opened.pop(name), name)
        data: dict[str, Any] = {
            name: models.decode_field(name, opened[name]) if name in opened else None for name in fields
        }
        return DecryptedPerson(record.person_id, record.version, record.created_at, record.updated_at, data)

    def get_person(
        self,
        customer_id: str,
        person_id: str,
        fields: tuple[str, ...] = models.PERSON_FIELDS,
        *,
        actor: Actor = ANONYMOUS,
    ) -> DecryptedPerson:
        customer_id, person_id = models.customer_id(customer_id), models.person_id(person_id)
        record = self._repo.get_masked_person(customer_id, person_id)
        if record is None:
            raise NotFoundError("person not found")
        view = self._view(record, fields, self._opener)
        self._audit.emit(
            "person.masked_read",
            actor,
            customer_id=customer_id,
            record_type=PERSON,
            record_ids=[person_id],
            fields=sorted(view.data),
            version=view.version,
        )
        return view

    def list_people(
        self,
        customer_id: str,
        limit: int,
        next_token: str | None = None,
        fields: tuple[str, ...] = models.PERSON_FIELDS,
        *,
        actor: Actor = ANONYMOUS,
    ) -> PeoplePage:
        customer_id = models.customer_id(customer_id)
        page = self._repo.list_masked_people(customer_id, limit, next_token)
        return PeoplePage(self._views("person.masked_list", customer_id, page.items, fields, actor), page.next_token)

    def get_people(
        self,
        customer_id: str,
        person_ids: list[str],
        fields: tuple[str, ...] = models.PERSON_FIELDS,
        *,
        actor: Actor = ANONYMOUS,
    ) -> PeopleBatch:
        customer_id = models.customer_id(customer_id)
        person_ids = [models.person_id(person_id) for person_id in person_ids]
        records = self._repo.get_masked_people(customer_id, person_ids)
        views = self._views("person.masked_batch_read", customer_id, records, fields, actor)
        found = {view.id for view in views}
        return PeopleBatch(views, [pid for pid in person_ids if pid not in found])

    def _views(
        self, event: str, customer_id: str, records: list[PersonRecord], fields: tuple[str, ...], actor: Actor
    ) -> list[DecryptedPerson]:
        opener = self._opener.for_request()
        views = [self._view(record, fields, opener) for record in records]
        self._audit.emit(
            event,
            actor,
            customer_id=customer_id,
            record_type=PERSON,
            record_ids=[view.id for view in views],
            fields=sorted({f for v in views for f in v.data}),
        )
        return views
