"""Use cases. The writer service can only seal; the reader service can only open.

Each takes its collaborators as constructor arguments (repository, sealer or opener,
clock), so tests run them against fakes and production against DynamoDB and KMS.
Log lines name tenants, record ids and field names; never values.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from chalicelib import models
from chalicelib.audit import ANONYMOUS, Actor, AuditLog
from chalicelib.crypto import Opener, RecordRef, Sealer
from chalicelib.errors import IntegrityError, NotFoundError
from chalicelib.repository import PersonRecord, Repository, SecretVersion

logger = logging.getLogger(__name__)

PERSON = "person"
SECRET = "secret"


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def timestamp(moment: _dt.datetime) -> str:
    return moment.astimezone(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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


class WriterService:
    """Creates, replaces, patches and deletes records. Holds no way to decrypt."""

    def __init__(
        self,
        repository: Repository,
        sealer: Sealer,
        clock: Callable[[], _dt.datetime] = utc_now,
        new_id: Callable[[], str] = new_record_id,
        audit: AuditLog | None = None,
    ) -> None:
        self._repo = repository
        self._sealer = sealer
        self._clock = clock
        self._new_id = new_id
        self._audit = audit or AuditLog()

    def create_person(self, customer_id: str, body: Any, *, actor: Actor = ANONYMOUS) -> WriteResult:
        customer_id = models.customer_id(customer_id)
        now = self._clock()
        person = models.parse_person(body, today=now.date())
        person_id = self._new_id()
        sealed = self._sealer.seal(RecordRef(customer_id, PERSON, person_id), person.encoded())
        stamp = timestamp(now)
        self._repo.create_person(
            PersonRecord(
                customer_id=customer_id,
                person_id=person_id,
                version=1,
                created_at=stamp,
                updated_at=stamp,
                kms_key=sealed.wrapped_key.key_id,
                slots=sealed.slots(),
                fields=sealed.blobs,
            )
        )
        self._audit.emit("person.create", actor, customer_id=customer_id, record_type=PERSON,
                         record_ids=[person_id], fields=sorted(person.values), version=1)
        return WriteResult(person_id, 1, stamp)

    def replace_person(
        self, customer_id: str, person_id: str, body: Any, expected_version: int | None, *, actor: Actor = ANONYMOUS
    ) -> WriteResult:
        customer_id, person_id = models.customer_id(customer_id), models.person_id(person_id)
        now = self._clock()
        person = models.parse_person(body, today=now.date())
        sealed = self._sealer.seal(RecordRef(customer_id, PERSON, person_id), person.encoded())
        stamp = timestamp(now)
        version = self._repo.replace_person(
            PersonRecord(
                customer_id=customer_id,
                person_id=person_id,
                version=0,
                created_at="",
                updated_at=stamp,
                kms_key=sealed.wrapped_key.key_id,
                slots=sealed.slots(),
                fields=sealed.blobs,
            ),
            expected_version,
        )
        self._audit.emit("person.replace", actor, customer_id=customer_id, record_type=PERSON,
                         record_ids=[person_id], fields=sorted(person.values), version=version)
        return WriteResult(person_id, version, stamp)

    def patch_person(
        self, customer_id: str, person_id: str, body: Any, expected_version: int | None, *, actor: Actor = ANONYMOUS
    ) -> WriteResult:
        """Rewrite some fields under a new data key; the others are never decrypted."""
        customer_id, person_id = models.customer_id(customer_id), models.person_id(person_id)
        now = self._clock()
        person = models.parse_person(body, today=now.date(), partial=True)
        sealed = self._sealer.seal(RecordRef(customer_id, PERSON, person_id), person.encoded(), own_slots=True)
        stamp = timestamp(now)
        version = self._repo.patch_person(
            customer_id,
            person_id,
            fields=sealed.blobs,
            slots=sealed.slots(),
            kms_key=sealed.wrapped_key.key_id,
            updated_at=stamp,
            expected_version=expected_version,
        )
        self._audit.emit("person.patch", actor, customer_id=customer_id, record_type=PERSON,
                         record_ids=[person_id], fields=sorted(person.values), version=version)
        return WriteResult(person_id, version, stamp)

    def delete_person(
        self, customer_id: str, person_id: str, expected_version: int | None, *, actor: Actor = ANONYMOUS
    ) -> None:
        customer_id, person_id = models.customer_id(customer_id), models.person_id(person_id)
        self._repo.delete_person(customer_id, person_id, expected_version)
        self._audit.emit("person.delete", actor, customer_id=customer_id, record_type=PERSON, record_ids=[person_id])

    def put_secret(self, customer_id: str, secret_id: str, body: Any, *, actor: Actor = ANONYMOUS) -> WriteResult:
        """Store a new version; older versions stay readable until the secret is deleted."""
        customer_id, secret_id = models.customer_id(customer_id), models.secret_id(secret_id)
        value = models.parse_secret(body)
        stamp = timestamp(self._clock())
        envelope = self._sealer.envelope(customer_id)

        def build(version: int) -> SecretVersion:
            # The version number is in the AAD, so sealing waits until it is known;
            # a retry with the next number re-seals locally, without another KMS call.
            ref = RecordRef(customer_id, SECRET, secret_record_id(secret_id, version))
            sealed = envelope.seal(ref, {"value": value})
            return SecretVersion(
                customer_id=customer_id,
                secret_id=secret_id,
                version=version,
                created_at=stamp,
                kms_key=sealed.wrapped_key.key_id,
                slots=sealed.slots(),
                value=sealed.blobs["value"],
            )

        version = self._repo.add_secret_version(customer_id, secret_id, stamp, build).version
        self._audit.emit("secret.put", actor, customer_id=customer_id, record_type=SECRET,
                         record_ids=[secret_id], fields=["value"], version=version)
        return WriteResult(secret_id, version, stamp)

    def delete_secret(self, customer_id: str, secret_id: str, *, actor: Actor = ANONYMOUS) -> None:
        customer_id, secret_id = models.customer_id(customer_id), models.secret_id(secret_id)
        self._repo.delete_secret(customer_id, secret_id)
        self._audit.emit("secret.delete", actor, customer_id=customer_id, record_type=SECRET, record_ids=[secret_id])


class ReaderService:
    """Reads and decrypts records. Holds no way to write or to encrypt."""

    def __init__(self, repository: Repository, opener: Opener, audit: AuditLog | None = None) -> None:
        self._repo = repository
        self._opener = opener
        self._audit = audit or AuditLog()

    def _view(self, record: PersonRecord, fields: tuple[str, ...], cache: dict[bytes, bytes]) -> DecryptedPerson:
        ref = RecordRef(record.customer_id, PERSON, record.person_id)
        # Every stored person has all five fields: a missing one was deleted by someone
        # with table access, and answering without it would be silently wrong.
        missing = [name for name in fields if name not in record.fields]
        if missing:
            raise IntegrityError(f"stored record lacks field {missing[0]}", field=missing[0])
        opened = self._opener.open(ref, record.fields, record.slots, fields, cache)
        data = {name: models.decode_field(name, opened[name]) for name in fields if name in opened}
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
        record = self._repo.get_person(customer_id, person_id)
        if record is None:
            raise NotFoundError("person not found")
        view = self._view(record, fields, {})
        self._audit.emit("person.read", actor, customer_id=customer_id, record_type=PERSON,
                         record_ids=[person_id], fields=sorted(view.data), version=view.version)
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
        """One page of at most ``limit``; a data key shared by several records is unwrapped once per page."""
        customer_id = models.customer_id(customer_id)
        page = self._repo.list_people(customer_id, limit, next_token)
        cache: dict[bytes, bytes] = {}
        views = [self._view(record, fields, cache) for record in page.items]
        self._audit.emit("person.list", actor, customer_id=customer_id, record_type=PERSON,
                         record_ids=[view.id for view in views], fields=sorted({f for v in views for f in v.data}))
        return PeoplePage(views, page.next_token)

    def get_people(
        self,
        customer_id: str,
        person_ids: list[str],
        fields: tuple[str, ...] = models.PERSON_FIELDS,
        *,
        actor: Actor = ANONYMOUS,
    ) -> PeopleBatch:
        """Multi-get of distinct ids: one BatchGetItem, one unwrap per distinct data key in the batch."""
        customer_id = models.customer_id(customer_id)
        person_ids = [models.person_id(person_id) for person_id in person_ids]
        records = self._repo.get_people(customer_id, person_ids)
        cache: dict[bytes, bytes] = {}
        views = [self._view(record, fields, cache) for record in records]
        found = {view.id for view in views}
        self._audit.emit("person.batch_read", actor, customer_id=customer_id, record_type=PERSON,
                         record_ids=[view.id for view in views], fields=sorted({f for v in views for f in v.data}))
        return PeopleBatch(views, [pid for pid in person_ids if pid not in found])

    def get_secret(
        self, customer_id: str, secret_id: str, version: int | None = None, *, actor: Actor = ANONYMOUS
    ) -> DecryptedSecret:
        """The latest version, or ``version``."""
        customer_id, secret_id = models.customer_id(customer_id), models.secret_id(secret_id)
        record = self._repo.get_secret(customer_id, secret_id, version)
        if record is None:
            raise NotFoundError("secret not found" if version is None else "secret version not found")
        ref = RecordRef(customer_id, SECRET, secret_record_id(secret_id, record.version))
        opened = self._opener.open(ref, {"value": record.value}, record.slots, ("value",))
        self._audit.emit("secret.read", actor, customer_id=customer_id, record_type=SECRET,
                         record_ids=[secret_id], fields=["value"], version=record.version)
        return DecryptedSecret(secret_id, record.version, record.created_at, opened["value"].decode("utf-8"))

    def secret_versions(self, customer_id: str, secret_id: str, *, actor: Actor = ANONYMOUS) -> list[SecretVersion]:
        customer_id, secret_id = models.customer_id(customer_id), models.secret_id(secret_id)
        versions = self._repo.list_secret_versions(customer_id, secret_id)
        if not versions:
            raise NotFoundError("secret not found")
        self._audit.emit("secret.versions", actor, customer_id=customer_id, record_type=SECRET, record_ids=[secret_id])
        return versions
