"""Use cases. The writer service can only seal; the reader service can only open.

Each takes its collaborators as constructor arguments (store, sealer or opener,
clock), so tests run them against fakes and production against DynamoDB and KMS.
Log lines name tenants, record ids and field names; never values.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from chalicelib import models
from chalicelib.audit import ANONYMOUS, Actor, AuditLog
from chalicelib.crypto import Envelope, Opener, RecordRef, Sealer
from chalicelib.errors import ConflictError, IntegrityError, NotFoundError, PiiVaultError
from chalicelib.store.records import PersonRecord, PersonWrite, SecretVersion, SecretVersionConflict, Store

if TYPE_CHECKING:
    from chalicelib.beacons import BeaconKeys
    from chalicelib.store.beacons import BeaconIndex
    from chalicelib.store.ledger import Erasures

logger = logging.getLogger(__name__)

PERSON = "person"
SECRET = "secret"
_SECRET_WRITE_ATTEMPTS = 16
_BACKOFF_BASE_S = 0.005
_LATEST_SEEN_MAX = 4096


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
        store: Store,
        sealer: Sealer,
        clock: Callable[[], _dt.datetime] = utc_now,
        new_id: Callable[[], str] = new_record_id,
        audit: AuditLog | None = None,
        sleep: Callable[[float], None] = time.sleep,
        erasures: "Erasures | None" = None,
    ) -> None:
        self._store = store
        self._sealer = sealer
        # Erasure ledger + idempotency references (None: plain deletes, as before the ledger).
        self._erasures = erasures
        self._clock = clock
        self._new_id = new_id
        self._audit = audit or AuditLog()
        self._sleep = sleep  # backoff between lost secret-version races
        # Last secret version number this process wrote, per secret: a first guess only.
        self._latest_seen: dict[tuple[str, str], int] = {}

    def _seal_person(
        self, customer_id: str, person_id: str | None, body: Any, *, partial: bool = False
    ) -> tuple[PersonWrite, list[str]]:
        """The one sealing step of every person write (and the names of the fields it writes).

        A new person (``person_id`` None) gets its id once the body is valid. PATCH
        (``partial``) files its new key under each field's own slot.
        """
        now = self._clock()
        person = models.parse_person(body, today=now.date(), partial=partial)
        person_id = self._new_id() if person_id is None else person_id
        sealed = self._sealer.seal(RecordRef(customer_id, PERSON, person_id), person.encoded(), own_slots=partial)
        write = PersonWrite(
            customer_id=customer_id,
            person_id=person_id,
            updated_at=timestamp(now),
            kms_key=sealed.wrapped_key.key_id,
            slots=sealed.slots(),
            fields=sealed.blobs,
            partial=partial,
        )
        return write, sorted(person.values)

    def _person_written(
        self, event: str, actor: Actor, write: PersonWrite, fields: list[str], version: int
    ) -> WriteResult:
        self._audit.emit(event, actor, customer_id=write.customer_id, record_type=PERSON,
                         record_ids=[write.person_id], fields=fields, version=version)
        return WriteResult(write.person_id, version, write.updated_at)

    def create_person(self, customer_id: str, body: Any, *, actor: Actor = ANONYMOUS) -> WriteResult:
        write, fields = self._seal_person(models.customer_id(customer_id), None, body)
        record = write.first_version()
        self._store.create_person(record)
        return self._person_written("person.create", actor, write, fields, record.version)

    def replace_person(
        self, customer_id: str, person_id: str, body: Any, expected_version: int | None, *, actor: Actor = ANONYMOUS
    ) -> WriteResult:
        customer_id, person_id = models.customer_id(customer_id), models.person_id(person_id)
        write, fields = self._seal_person(customer_id, person_id, body)
        version = self._store.replace_person(write, expected_version)
        return self._person_written("person.replace", actor, write, fields, version)

    def patch_person(
        self, customer_id: str, person_id: str, body: Any, expected_version: int | None, *, actor: Actor = ANONYMOUS
    ) -> WriteResult:
        """Rewrite some fields under a new data key; the others are never decrypted."""
        customer_id, person_id = models.customer_id(customer_id), models.person_id(person_id)
        write, fields = self._seal_person(customer_id, person_id, body, partial=True)
        version = self._store.patch_person(write, expected_version)
        return self._person_written("person.patch", actor, write, fields, version)

    def delete_person(
        self, customer_id: str, person_id: str, expected_version: int | None, *, actor: Actor = ANONYMOUS
    ) -> None:
        customer_id, person_id = models.customer_id(customer_id), models.person_id(person_id)
        if self._erasures is None:
            self._store.delete_person(customer_id, person_id, expected_version)
        else:
            # The item (its beacon and GSI entry with it) and the ledger entry, in one transaction.
            self._erasures.erase_person(customer_id, person_id, expected_version, timestamp(self._clock()))
            self._forget_references(customer_id, PERSON, person_id)
        self._audit.emit("person.delete", actor, customer_id=customer_id, record_type=PERSON, record_ids=[person_id])

    def put_secret(self, customer_id: str, secret_id: str, body: Any, *, actor: Actor = ANONYMOUS) -> WriteResult:
        """Store a new version; older versions stay readable until the secret is deleted."""
        customer_id, secret_id = models.customer_id(customer_id), models.secret_id(secret_id)
        value = models.parse_secret(body)
        stamp = timestamp(self._clock())
        version = self._add_secret_version(self._sealer.envelope(customer_id), secret_id, value, stamp)
        self._audit.emit("secret.put", actor, customer_id=customer_id, record_type=SECRET,
                         record_ids=[secret_id], fields=["value"], version=version)
        return WriteResult(secret_id, version, stamp)

    def _add_secret_version(self, envelope: Envelope, secret_id: str, value: bytes, stamp: str) -> int:
        """Store the secret's next version: guess the latest number, seal, offer, retry.

        The writer cannot read the head, so it guesses (the last number it wrote, else
        0); a lost race hands back the head's number and we try again with the next
        one. The number is in the AAD, so each attempt re-seals, locally: the envelope
        was wrapped once. Bounded attempts with full-jitter backoff, then a 409.
        """
        customer_id = envelope.customer_id
        guess = self._latest_seen.get((customer_id, secret_id), 0)
        for attempt in range(_SECRET_WRITE_ATTEMPTS):
            if attempt:
                # Full jitter, so writers that lost a race do not collide again in lockstep.
                self._sleep(random.uniform(0, _BACKOFF_BASE_S * 2 ** min(attempt, 6)))  # noqa: S311 - not crypto
            version = guess + 1
            ref = RecordRef(customer_id, SECRET, secret_record_id(secret_id, version))
            sealed = envelope.seal(ref, {"value": value})
            secret = SecretVersion(
                customer_id=customer_id,
                secret_id=secret_id,
                version=version,
                created_at=stamp,
                kms_key=sealed.wrapped_key.key_id,
                slots=sealed.slots(),
                value=sealed.blobs["value"],
            )
            try:
                self._store.put_secret_version(secret, guess)
            except SecretVersionConflict as conflict:
                guess = conflict.latest
                continue
            if len(self._latest_seen) >= _LATEST_SEEN_MAX:
                self._latest_seen.clear()
            self._latest_seen[(customer_id, secret_id)] = version
            return version
        raise ConflictError("secret is being written concurrently; retry the request")

    def delete_secret(self, customer_id: str, secret_id: str, *, actor: Actor = ANONYMOUS) -> None:
        customer_id, secret_id = models.customer_id(customer_id), models.secret_id(secret_id)
        if self._erasures is not None:
            # Ledger first: a secret's versions go in several writes; a replay after a restore
            # deletes only what existed before this time, so a later put of the id survives.
            self._erasures.record(customer_id, SECRET, secret_id, timestamp(self._clock()))
        self._store.delete_secret(customer_id, secret_id)
        self._latest_seen.pop((customer_id, secret_id), None)
        self._audit.emit("secret.delete", actor, customer_id=customer_id, record_type=SECRET, record_ids=[secret_id])


    def reference_idempotency(self, customer_id: str, person_id: str, record: str, ttl_seconds: int) -> None:
        """File a reference to the idempotency record of a person's create (best effort)."""
        if self._erasures is None:
            return
        expires_at = int(self._clock().timestamp()) + ttl_seconds
        try:
            self._erasures.add_reference(customer_id, PERSON, person_id, record, expires_at)
        except PiiVaultError as exc:
            logger.warning("idempotency reference of person %s of %s not stored: %s", person_id, customer_id,
                           exc.code)

    def _forget_references(self, customer_id: str, kind: str, record_id: str) -> None:
        """Remove the idempotency record of the record's create. Best effort: the erasure is
        committed; a failure here leaves ids and a keyed fingerprint until the TTL."""
        assert self._erasures is not None
        try:
            self._erasures.forget_references(customer_id, kind, record_id)
        except PiiVaultError as exc:
            logger.warning("idempotency reference of %s %s of %s not removed: %s", kind, record_id, customer_id,
                           exc.code)


class ReaderService:
    """Reads and decrypts records. Holds no way to write or to encrypt."""

    def __init__(
        self,
        repository: Store,
        opener: Opener,
        audit: AuditLog | None = None,
        *,
        beacon_keys: "BeaconKeys | None" = None,
        beacons: "BeaconIndex | None" = None,
    ) -> None:
        self._repo = repository
        self._opener = opener
        self._audit = audit or AuditLog()
        self._beacon_keys = beacon_keys
        self._beacons = beacons

    def search_people(
        self, customer_id: str, email: str, fields: tuple[str, ...], *, actor: Actor = ANONYMOUS
    ) -> list[DecryptedPerson]:
        """People of the tenant whose email equals the one searched (after normalisation).

        The beacon index is eventually consistent (written by the stream-fed indexer);
        candidates are fetched strongly consistent and kept only if their decrypted email
        matches, so a truncated beacon's false positives and a stale beacon never answer.
        """
        from chalicelib.beacons import normalise_email, normalise_stored_email

        if self._beacon_keys is None or self._beacons is None:
            raise NotFoundError("search is not configured")
        customer_id = models.customer_id(customer_id)
        wanted = normalise_email(email)
        ids = self._beacons.find(customer_id, self._beacon_keys.beacon(customer_id, wanted))
        records = self._repo.get_people(customer_id, ids) if ids else []
        opener = self._opener.for_request()
        views = []
        for record in records:
            view = self._view(record, tuple(dict.fromkeys((*fields, "email"))), opener)
            if normalise_stored_email(view.data["email"]) != wanted:
                continue  # a beacon collision or a beacon older than the email
            data = {name: view.data[name] for name in fields}
            views.append(DecryptedPerson(view.id, view.version, view.created_at, view.updated_at, data))
        self._audit.emit("person.search", actor, customer_id=customer_id, record_type=PERSON,
                         record_ids=[view.id for view in views], fields=sorted(fields))
        return views

    def _view(self, record: PersonRecord, fields: tuple[str, ...], opener: Opener) -> DecryptedPerson:
        ref = RecordRef(record.customer_id, PERSON, record.person_id)
        # Every stored person has all five fields: a missing one was deleted by someone
        # with table access, and answering without it would be silently wrong.
        missing = [name for name in fields if name not in record.fields]
        if missing:
            raise IntegrityError(f"stored record lacks field {missing[0]}", field=missing[0])
        opened = opener.open(ref, record.fields, record.slots, fields)
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
        view = self._view(record, fields, self._opener)
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
        opener = self._opener.for_request()
        views = [self._view(record, fields, opener) for record in page.items]
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
        opener = self._opener.for_request()
        views = [self._view(record, fields, opener) for record in records]
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
