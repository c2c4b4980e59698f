"""The reader's use cases: load and open. Holds no way to write or to encrypt."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from chalicelib.domain import validation
from chalicelib.envelope import bound_metadata
from chalicelib.envelope.format import FORMAT_V1, FORMAT_V2, FORMAT_V3, Opener, RecordRef, blob_version
from chalicelib.store.records import (
    META_CREATED,
    META_LEGACY,
    META_UPDATED,
    Page,
    PersonRecord,
    SecretRead,
    SecretVersion,
    Store,
)
from chalicelib.support.audit import ANONYMOUS, Actor, AuditLog
from chalicelib.support.errors import IntegrityError, NotFoundError

if TYPE_CHECKING:
    from chalicelib.keys.beacons import BeaconKeys
    from chalicelib.store.beacons import BeaconIndex

from chalicelib.service.common import (
    PERSON,
    SECRET,
    DecryptedPerson,
    DecryptedSecret,
    secret_record_id,
)
from chalicelib.service.people import PeopleReads


def _metadata_bindings(record: PersonRecord, opener: Opener) -> dict[str, str]:
    """What a person's sealed metadata must authenticate: opened with the fields, so the same
    data keys serve both (docs/encryption.md lists what each format carries).

    Format v2 and v3 records carry update metadata binding version and update time, and
    either creation metadata binding the creation time, or (v3) the legacy mark of a record
    created before format v2, whose kept v2 update metadata must open as ``created=legacy``
    (``records.shape_of``). Update metadata with neither is a stripped record: an integrity
    error for v3, and for v2 it must itself say ``created=legacy``. Records written only in
    v1 carry none: their metadata is reported as stored.
    """
    blobs = record.fields
    created, updated, legacy = (blobs.get(name) for name in (META_CREATED, META_UPDATED, META_LEGACY))
    if updated is None:
        if created is not None or legacy is not None or record.proof is not None:
            raise IntegrityError("a stored record lacks its sealed metadata")
        if any(blob_version(blob) != FORMAT_V1 for blob in blobs.values()):
            raise IntegrityError("a stored record lacks its sealed metadata")
        return {}
    bindings: dict[str, str] = {}
    if created is not None:
        if legacy is not None or record.proof is not None:
            raise IntegrityError("a stored record is marked both created and legacy")
        bindings[META_CREATED] = bound_metadata.person_created(record.created_at)
    elif legacy is not None:
        proof = "" if record.proof is None else record.proof.binding
        bindings[META_LEGACY] = bound_metadata.person_legacy(proof)
        if record.proof is not None:
            _check_legacy_proof(record, opener)
    elif blob_version(updated) == FORMAT_V3 or record.proof is not None:
        raise IntegrityError("a stored record lacks its sealed creation metadata")
    bindings[META_UPDATED] = bound_metadata.person_updated(record.version, record.updated_at, created is not None)
    if any(blob_version(blobs[name]) == FORMAT_V1 for name in bindings) or (
        legacy is not None and blob_version(legacy) != FORMAT_V3
    ):
        raise IntegrityError("sealed metadata is not in format v2 or v3")
    return bindings


def _check_legacy_proof(record: PersonRecord, opener: Opener) -> None:
    """The v2 update metadata a legacy-marked record kept must open as ``created=legacy`` with
    the binding stored beside it (which the mark's own binding authenticates)."""
    proof = record.proof
    if proof is None or not bound_metadata.declares_legacy(proof.binding):
        raise IntegrityError("a stored record's legacy proof is malformed")
    if blob_version(proof.blob) != FORMAT_V2:
        raise IntegrityError("a stored record's legacy proof is not in format v2")
    ref = RecordRef(record.customer_id, PERSON, record.person_id)
    opened = opener.open(ref, {META_UPDATED: proof.blob}, record.slots, (META_UPDATED,), {META_UPDATED: proof.binding})
    bound_metadata.require_empty(opened[META_UPDATED], META_UPDATED)


class ReaderService(PeopleReads):
    """Reads and decrypts records. Holds no way to write or to encrypt."""

    EVENTS = ("person.read", "person.list", "person.batch_read")

    def __init__(
        self,
        repository: Store,
        opener: Opener,
        audit: AuditLog | None = None,
        *,
        beacon_keys: BeaconKeys | None = None,
        beacons: BeaconIndex | None = None,
    ) -> None:
        super().__init__(opener, audit)
        self._repo = repository
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
        from chalicelib.keys.beacons import normalise_email, normalise_stored_email

        if self._beacon_keys is None or self._beacons is None:
            raise NotFoundError("search is not configured")
        customer_id = validation.customer_id(customer_id)
        wanted = normalise_email(email)
        ids = self._beacons.find(customer_id, self._beacon_keys.beacon(customer_id, wanted))
        records = self._repo.get_people(customer_id, ids) if ids else []
        opener = self._opener.for_request()
        found = []
        for record in records:
            view = self._view(record, tuple(dict.fromkeys((*fields, "email"))), opener)
            if normalise_stored_email(view.data["email"]) != wanted:
                continue  # a beacon collision, or a beacon older than the email
            data = {name: view.data[name] for name in fields}
            found.append(DecryptedPerson(view.id, view.version, view.created_at, view.updated_at, data))
        self._audit.emit(
            "person.search",
            actor,
            customer_id=customer_id,
            record_type=PERSON,
            record_ids=[view.id for view in found],
            fields=sorted(fields),
        )
        return found

    def _view(self, record: PersonRecord, fields: tuple[str, ...], opener: Opener) -> DecryptedPerson:
        ref = RecordRef(record.customer_id, PERSON, record.person_id)
        # Every stored person has all five fields: a missing one was deleted by someone
        # with table access, and answering without it would be silently wrong.
        missing = [name for name in fields if name not in record.fields]
        if missing:
            raise IntegrityError(f"stored record lacks field {missing[0]}", field=missing[0])
        bindings = _metadata_bindings(record, opener)
        opened = opener.open(ref, record.fields, record.slots, (*fields, *bindings), bindings, record.refs)
        for name in bindings:
            bound_metadata.require_empty(opened.pop(name), name)
        data = {name: validation.decode_field(name, opened[name]) for name in fields if name in opened}
        return DecryptedPerson(record.person_id, record.version, record.created_at, record.updated_at, data)

    def _fetch_one(self, customer_id: str, person_id: str) -> PersonRecord | None:
        return self._repo.get_person(customer_id, person_id)

    def _fetch_page(self, customer_id: str, limit: int, token: str | None) -> Page:
        return self._repo.list_people(customer_id, limit, token)

    def _fetch_many(self, customer_id: str, person_ids: Sequence[str]) -> list[PersonRecord]:
        return self._repo.get_people(customer_id, person_ids)

    def get_secret(
        self, customer_id: str, secret_id: str, version: int | None = None, *, actor: Actor = ANONYMOUS
    ) -> DecryptedSecret:
        """The latest version, or ``version``."""
        customer_id, secret_id = validation.customer_id(customer_id), validation.secret_id(secret_id)
        read = self._repo.get_secret(customer_id, secret_id, version)
        if read is None:
            raise NotFoundError("secret not found" if version is None else "secret version not found")
        value = self._open_secret(read)
        record = read.version
        self._audit.emit(
            "secret.read",
            actor,
            customer_id=customer_id,
            record_type=SECRET,
            record_ids=[secret_id],
            fields=["value"],
            version=record.version,
        )
        return DecryptedSecret(secret_id, record.version, record.created_at, value.decode("utf-8"))

    def _open_secret(self, read: SecretRead) -> bytes:
        """Open a version with what its head says it must be bound to (format v2), or as
        a legacy v1 version where the head vouches for that, and only there."""
        head, record = read.head, read.version
        ref = RecordRef(record.customer_id, SECRET, secret_record_id(record.secret_id, record.version))
        expected_format = FORMAT_V2 if head.incarnation and record.version > head.legacy_until else FORMAT_V1
        if blob_version(record.value) != expected_format:
            raise IntegrityError("a secret version is not in the format its secret requires", field="value")
        binding = ""
        if expected_format == FORMAT_V2:
            binding = bound_metadata.secret_version(head.incarnation or "", head.legacy_until, record.created_at)
        elif head.incarnation:
            # A v1 version of a secret that has an incarnation: the head's legacy bound
            # must be the one its latest (v2) version was sealed with.
            latest = self._repo.get_secret(record.customer_id, record.secret_id, head.latest)
            if latest is None or head.latest <= head.legacy_until or latest.head != head:
                raise IntegrityError("a secret's head does not vouch for its legacy versions")
            self._open_secret(latest)
        return self._opener.open(ref, {"value": record.value}, record.slots, ("value",), {"value": binding})["value"]

    def secret_versions(self, customer_id: str, secret_id: str, *, actor: Actor = ANONYMOUS) -> list[SecretVersion]:
        customer_id, secret_id = validation.customer_id(customer_id), validation.secret_id(secret_id)
        versions = self._repo.list_secret_versions(customer_id, secret_id)
        if not versions:
            raise NotFoundError("secret not found")
        self._audit.emit("secret.versions", actor, customer_id=customer_id, record_type=SECRET, record_ids=[secret_id])
        return versions
