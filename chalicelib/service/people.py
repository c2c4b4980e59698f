"""The people reads both read stages answer: one, a page, a multi-get, each audited.

``PeopleReads`` owns the logic; the reader (full values) and the masked stage (masked
projections) each say how a record is fetched and opened, and what the audit calls it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from chalicelib.domain import validation
from chalicelib.envelope.format import Opener
from chalicelib.service.common import PERSON, DecryptedPerson, PeopleBatch, PeoplePage
from chalicelib.store.records import Page, PersonRecord
from chalicelib.support.audit import ANONYMOUS, Actor, AuditLog
from chalicelib.support.errors import NotFoundError


class PeopleReads(ABC):
    """Template for reading people: subclasses fetch records and open one record."""

    # Audit events of a single read, a page and a multi-get.
    EVENTS: ClassVar[tuple[str, str, str]]

    def __init__(self, opener: Opener, audit: AuditLog | None = None) -> None:
        self._opener = opener
        self._audit = audit or AuditLog()

    @abstractmethod
    def _view(self, record: PersonRecord, fields: tuple[str, ...], opener: Opener) -> DecryptedPerson: ...

    @abstractmethod
    def _fetch_one(self, customer_id: str, person_id: str) -> PersonRecord | None: ...

    @abstractmethod
    def _fetch_page(self, customer_id: str, limit: int, token: str | None) -> Page: ...

    @abstractmethod
    def _fetch_many(self, customer_id: str, person_ids: Sequence[str]) -> list[PersonRecord]: ...

    def get_person(
        self,
        customer_id: str,
        person_id: str,
        fields: tuple[str, ...] = validation.PERSON_FIELDS,
        *,
        actor: Actor = ANONYMOUS,
    ) -> DecryptedPerson:
        customer_id, person_id = validation.customer_id(customer_id), validation.person_id(person_id)
        record = self._fetch_one(customer_id, person_id)
        if record is None:
            raise NotFoundError("person not found")
        view = self._view(record, fields, self._opener)
        self._audit.emit(
            self.EVENTS[0],
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
        fields: tuple[str, ...] = validation.PERSON_FIELDS,
        *,
        actor: Actor = ANONYMOUS,
    ) -> PeoplePage:
        """One page of at most ``limit``; a data key shared by several records is unwrapped once per page."""
        customer_id = validation.customer_id(customer_id)
        page = self._fetch_page(customer_id, limit, next_token)
        return PeoplePage(self._views(self.EVENTS[1], customer_id, page.items, fields, actor), page.next_token)

    def get_people(
        self,
        customer_id: str,
        person_ids: list[str],
        fields: tuple[str, ...] = validation.PERSON_FIELDS,
        *,
        actor: Actor = ANONYMOUS,
    ) -> PeopleBatch:
        """Multi-get of distinct ids: one BatchGetItem, one unwrap per distinct data key in the batch."""
        customer_id = validation.customer_id(customer_id)
        person_ids = [validation.person_id(person_id) for person_id in person_ids]
        records = self._fetch_many(customer_id, person_ids)
        views = self._views(self.EVENTS[2], customer_id, records, fields, actor)
        found = {view.id for view in views}
        return PeopleBatch(views, [pid for pid in person_ids if pid not in found])

    def _views(
        self, event: str, customer_id: str, records: list[PersonRecord], fields: tuple[str, ...], actor: Actor
    ) -> list[DecryptedPerson]:
        """Open several records with one request memo (shared data keys unwrapped once), audited as one read."""
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
