"""The writer's use cases: seal and store. Holds no way to decrypt."""

from __future__ import annotations

import datetime as _dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from chalicelib.domain import masking, validation
from chalicelib.envelope import bound_metadata
from chalicelib.envelope.format import FORMAT_V2, RECORD_SLOT, Envelope, RecordRef, Sealer
from chalicelib.service.common import (
    PERSON,
    SECRET,
    WriteResult,
    new_record_id,
    secret_record_id,
    timestamp,
    utc_now,
)
from chalicelib.store.records import (
    ADOPT_V1,
    ADOPT_V2,
    CREATE_SLOT,
    FIELD_CODES,
    META_CREATED,
    META_LEGACY,
    META_UPDATED,
    DeleteProgress,
    PersonShape,
    PersonVersionConflict,
    PersonWrite,
    SecretHead,
    SecretVersion,
    SecretVersionConflict,
    Store,
)
from chalicelib.support.audit import ANONYMOUS, Actor, AuditLog
from chalicelib.support.errors import ConflictError, NotFoundError, PiiVaultError, PreconditionFailedError

if TYPE_CHECKING:
    from chalicelib.store.ledger import Erasures

logger = logging.getLogger(__name__)

_WRITE_ATTEMPTS = 16  # rounds of a write racing other writers of the same record
_BACKOFF_BASE_S = 0.005
_HEADS_SEEN_MAX = 4096
# Versions one DELETE request removes before answering 202 (a secret keeps at most
# MAX_SECRET_VERSIONS; 64 KiB versions cost 64 write units each on one partition).
SECRET_DELETE_BATCH = 250
# What a person write names in the masked view: its fields' projections and the view's metadata.
_MASKED_NAMES = (*validation.PERSON_FIELDS, META_UPDATED)


@dataclass(frozen=True)
class _Envelopes:
    """The data keys of one person write: the full view's, and the masked view's (None: no view)."""

    full: Envelope
    masked: Envelope | None


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
        erasures: Erasures | None = None,
        masked_sealer: Sealer | None = None,
    ) -> None:
        self._store = store
        self._sealer = sealer
        # Seals the masked projections (docs/masked.md) under the masked view's data
        # key. None: this writer maintains no masked view, and each write removes the masked
        # projections of the fields it rewrites (a stale projection never outlives its value).
        self._masked_sealer = masked_sealer
        # Erasure ledger + idempotency references (None: plain deletes, as before the ledger).
        self._erasures = erasures
        self._clock = clock
        self._new_id = new_id
        self._audit = audit or AuditLog()
        self._sleep = sleep  # backoff between lost races
        # The head of each secret as this process last wrote it: a first guess only.
        self._heads_seen: dict[tuple[str, str], SecretHead] = {}

    def _backoff(self, attempt: int) -> None:
        """Full jitter, so writers that lost a race do not collide again in lockstep."""
        if attempt:
            self._sleep(random.uniform(0, _BACKOFF_BASE_S * 2 ** min(attempt, 6)))  # noqa: S311 - not crypto

    def _seal_person(
        self, customer_id: str, person_id: str | None, body: Any, *, partial: bool = False
    ) -> tuple[PersonWrite, _Envelopes, list[str]]:
        """The one sealing step of every person write (and the names of the fields it writes).

        A new person (``person_id`` None) gets its id once the body is valid, and its
        fields go under the creation slot, which no later write replaces, so the item
        names the creation key once (a replace files its key under the record slot).
        PATCH (``partial``) files its new key under each field's own slot. The metadata
        blobs, which bind the version, are sealed by ``_with_metadata``.
        """
        now = self._clock()
        person = validation.parse_person(body, today=now.date(), partial=partial)
        slot = CREATE_SLOT if person_id is None else RECORD_SLOT
        own_slots = {name: FIELD_CODES[name] for name in person.values} if partial else None
        person_id = self._new_id() if person_id is None else person_id
        ref = RecordRef(customer_id, PERSON, person_id)
        envelope = self._sealer.envelope(customer_id)
        sealed = envelope.seal(ref, person.encoded(), slot=slot, slots=own_slots)
        # Without the view, a write removes the whole masked view (a stale projection never
        # outlives its value; the record then reads as written before the view existed).
        # With it, a replace drops every masked slot earlier patches left, as for the full view.
        patch_slots = tuple(FIELD_CODES.values())
        drop_masked_refs: tuple[str, ...] = (RECORD_SLOT, *patch_slots)
        masked_envelope: Envelope | None = None
        masked_blobs: dict[str, bytes] = {}
        masked_refs: dict[str, bytes] = {}
        drop_masked: tuple[str, ...] = _MASKED_NAMES
        if self._masked_sealer is not None:
            # A second data key (context view=masked; cached like the first), so the masked
            # stage can open the projections and never a full value.
            masked_envelope = self._masked_sealer.envelope(customer_id)
            projections = {name: validation.encode_field(v) for name, v in masking.masked(person.values).items()}
            masked_sealed = masked_envelope.seal(ref, projections, slots=own_slots)
            masked_blobs, masked_refs, drop_masked = masked_sealed.blobs, masked_sealed.refs(), ()
            drop_masked_refs = () if partial else patch_slots
        write = PersonWrite(
            customer_id=customer_id,
            person_id=person_id,
            updated_at=timestamp(now),
            fields=sealed.blobs,
            refs=sealed.refs(),
            partial=partial,
            # A replace drops every slot a PATCH may have left (the record slot is rewritten,
            # the creation slot kept: the creation metadata stays openable).
            drop_refs=() if partial else patch_slots,
            masked=masked_blobs,
            masked_refs=masked_refs,
            drop_masked_refs=drop_masked_refs,
            drop_masked=drop_masked,
        )
        return write, _Envelopes(envelope, masked_envelope), sorted(person.values)

    @staticmethod
    def _with_metadata(write: PersonWrite, envelopes: _Envelopes, shape: PersonShape) -> PersonWrite:
        """``write`` as the successor of the stored ``shape``, with its sealed metadata (the
        full view's, and the masked view's own when the writer keeps that view).

        Each view's update metadata goes under a slot this write fills in that view (every
        write re-seals it), so it never outlives its key. The first write of a record created
        before format v2 seals the legacy mark under the creation slot (never replaced), binding
        the v2 update metadata it keeps as proof (records.shape_of says why).
        """
        ref = RecordRef(write.customer_id, PERSON, write.person_id)
        fields, refs = dict(write.fields), dict(write.refs)
        if shape.created in (ADOPT_V1, ADOPT_V2):
            proof = shape.proof.binding if shape.proof is not None else ""
            mark = envelopes.full.seal(
                ref, {META_LEGACY: b""}, slot=CREATE_SLOT, bindings={META_LEGACY: bound_metadata.person_legacy(proof)}
            )
            fields, refs = {**fields, **mark.blobs}, {**refs, **mark.refs()}
        binding = bound_metadata.person_updated(shape.version + 1, write.updated_at, shape.created_sealed)
        meta = envelopes.full.seal(ref, {META_UPDATED: b""}, slot=min(write.refs), bindings={META_UPDATED: binding})
        masked = write.masked
        if envelopes.masked is not None:
            masked_binding = bound_metadata.person_masked_updated(shape.version + 1, write.updated_at)
            masked_meta = envelopes.masked.seal(
                ref, {META_UPDATED: b""}, slot=min(write.masked_refs), bindings={META_UPDATED: masked_binding}
            )
            masked = {**masked, **masked_meta.blobs}
        return replace(write, fields={**fields, **meta.blobs}, refs=refs, masked=masked, shape=shape)

    def _person_written(
        self, event: str, actor: Actor, write: PersonWrite, fields: list[str], version: int
    ) -> WriteResult:
        self._audit.emit(
            event,
            actor,
            customer_id=write.customer_id,
            record_type=PERSON,
            record_ids=[write.person_id],
            fields=fields,
            version=version,
        )
        return WriteResult(write.person_id, version, write.updated_at)

    def create_person(self, customer_id: str, body: Any, *, actor: Actor = ANONYMOUS) -> WriteResult:
        write, envelopes, fields = self._seal_person(validation.customer_id(customer_id), None, body)
        ref = RecordRef(write.customer_id, PERSON, write.person_id)
        # under the creation slot: a later replace rewrites the record slot, not this one
        binding = bound_metadata.person_created(write.updated_at)
        created = envelopes.full.seal(ref, {META_CREATED: b""}, slot=CREATE_SLOT, bindings={META_CREATED: binding})
        write = self._with_metadata(write, envelopes, PersonShape())
        record = replace(write, fields={**write.fields, **created.blobs}, refs={**write.refs, **created.refs()})
        self._store.create_person(record.first_version())
        return self._person_written("person.create", actor, write, fields, write.version)

    def replace_person(
        self, customer_id: str, person_id: str, body: Any, expected_version: int | None, *, actor: Actor = ANONYMOUS
    ) -> WriteResult:
        customer_id, person_id = validation.customer_id(customer_id), validation.person_id(person_id)
        write, envelopes, fields = self._seal_person(customer_id, person_id, body)
        version = self._update_person(write, envelopes, expected_version)
        return self._person_written("person.replace", actor, write, fields, version)

    def patch_person(
        self, customer_id: str, person_id: str, body: Any, expected_version: int | None, *, actor: Actor = ANONYMOUS
    ) -> WriteResult:
        """Rewrite some fields under a new data key; the others are never decrypted."""
        customer_id, person_id = validation.customer_id(customer_id), validation.person_id(person_id)
        write, envelopes, fields = self._seal_person(customer_id, person_id, body, partial=True)
        version = self._update_person(write, envelopes, expected_version)
        return self._person_written("person.patch", actor, write, fields, version)

    def _update_person(self, write: PersonWrite, envelopes: _Envelopes, if_match: int | None) -> int:
        """Store ``write`` as the next version: guess, seal the metadata, offer, retry.

        The new version number is sealed into the record's metadata, so the writer must
        know it without reading: With ``If-Match`` it is given; without, the first
        offer names version 0, which never exists, and the failed condition hands back
        the stored item, whose shape the next offer builds on (one extra round trip: send
        If-Match to save it; a record written before format v3 costs it once). A stored
        record the writer must not build on (its creation metadata stripped) is an
        integrity error, never re-sealed. Only the metadata is re-sealed per attempt,
        locally: the envelope was wrapped once.
        """
        shape = PersonShape(version=0 if if_match is None else if_match)
        for attempt in range(_WRITE_ATTEMPTS):
            self._backoff(attempt)
            try:
                return self._store.update_person(self._with_metadata(write, envelopes, shape))
            except PersonVersionConflict as conflict:
                if conflict.shape is None:
                    if if_match is None:
                        raise NotFoundError("person not found") from None
                    raise PreconditionFailedError("person does not exist at the version given in If-Match") from None
                if if_match is not None and conflict.shape.version != if_match:
                    raise PreconditionFailedError("person does not exist at the version given in If-Match") from None
                shape = conflict.shape
        raise ConflictError("person is being written concurrently; retry the request")

    def delete_person(
        self, customer_id: str, person_id: str, expected_version: int | None, *, actor: Actor = ANONYMOUS
    ) -> None:
        customer_id, person_id = validation.customer_id(customer_id), validation.person_id(person_id)
        if self._erasures is None:
            self._store.delete_person(customer_id, person_id, expected_version)
        else:
            # The item (its beacon and GSI entry with it) and the ledger entry, in one transaction.
            self._erasures.erase_person(customer_id, person_id, expected_version, timestamp(self._clock()))
            self._forget_references(customer_id, PERSON, person_id)
        self._audit.emit("person.delete", actor, customer_id=customer_id, record_type=PERSON, record_ids=[person_id])

    def put_secret(self, customer_id: str, secret_id: str, body: Any, *, actor: Actor = ANONYMOUS) -> WriteResult:
        """Store a new version; older versions stay readable until the secret is deleted."""
        customer_id, secret_id = validation.customer_id(customer_id), validation.secret_id(secret_id)
        value = validation.parse_secret(body)
        stamp = timestamp(self._clock())
        version = self._add_secret_version(self._sealer.envelope(customer_id), secret_id, value, stamp)
        self._audit.emit(
            "secret.put",
            actor,
            customer_id=customer_id,
            record_type=SECRET,
            record_ids=[secret_id],
            fields=["value"],
            version=version,
        )
        return WriteResult(secret_id, version, stamp)

    def _add_secret_version(self, envelope: Envelope, secret_id: str, value: bytes, stamp: str) -> int:
        """Store the secret's next version: guess the head, seal, offer, retry.

        The writer cannot read the head, so it guesses (the head it last wrote, else
        none); a lost race hands back the stored head and we try again on it. The
        number, the incarnation and the legacy bound are in the AAD, so each attempt
        re-seals, locally: the envelope was wrapped once. Bounded attempts with
        full-jitter backoff, then a 409.
        """
        customer_id = envelope.customer_id
        head = self._heads_seen.get((customer_id, secret_id), SecretHead())
        for attempt in range(_WRITE_ATTEMPTS):
            self._backoff(attempt)
            if head.deleting:
                raise ConflictError("secret is being deleted; retry once the DELETE has finished")
            version = head.latest + 1
            # A secret's first v2 version gives it an incarnation; v1 versions before it stay legacy.
            new_head = SecretHead(
                latest=version,
                incarnation=head.incarnation or bound_metadata.new_incarnation(),
                legacy_until=head.legacy_until if head.incarnation else head.latest,
            )
            ref = RecordRef(customer_id, SECRET, secret_record_id(secret_id, version))
            binding = bound_metadata.secret_version(new_head.incarnation or "", new_head.legacy_until, stamp)
            sealed = envelope.seal(ref, {"value": value}, bindings={"value": binding}, version=FORMAT_V2)
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
                self._store.put_secret_version(secret, head, new_head)
            except SecretVersionConflict as conflict:
                head = conflict.head
                continue
            if len(self._heads_seen) >= _HEADS_SEEN_MAX:
                self._heads_seen.clear()
            self._heads_seen[(customer_id, secret_id)] = new_head
            return version
        raise ConflictError("secret is being written concurrently; retry the request")

    def delete_secret(self, customer_id: str, secret_id: str, *, actor: Actor = ANONYMOUS) -> DeleteProgress:
        """Remove a secret: gone for readers at once, its versions in bounded rounds.

        ``remaining`` > 0: call again (the API answers 202 with Retry-After) until 0.
        """
        customer_id, secret_id = validation.customer_id(customer_id), validation.secret_id(secret_id)
        erasures = self._erasures
        # The ledger entry of this erasure, dated now: appended once the secret is marked
        # deleted (so a DELETE of nothing appends nothing) and before any version goes (so
        # nothing is removed without an entry). A DELETE continued in further rounds appends
        # again: later times erase no less.
        record = (
            None
            if erasures is None
            else lambda: erasures.record_secret_erasure(customer_id, secret_id, timestamp(self._clock()))
        )
        progress = self._store.delete_secret(customer_id, secret_id, SECRET_DELETE_BATCH, before_removal=record)
        # The idempotency records of the secret's PUTs go with it (best effort, like a person's).
        self._forget_references(customer_id, SECRET, secret_id)
        self._heads_seen.pop((customer_id, secret_id), None)
        self._audit.emit("secret.delete", actor, customer_id=customer_id, record_type=SECRET, record_ids=[secret_id])
        return progress

    def reference_idempotency(self, customer_id: str, kind: str, record_id: str, record: str, ttl_seconds: int) -> None:
        """File a reference to the idempotency record of a create (a person's POST, a secret's
        PUT), so that the record's DELETE and the tenant's offboarding find it (best effort)."""
        if self._erasures is None:
            return
        expires_at = int(self._clock().timestamp()) + ttl_seconds
        try:
            self._erasures.add_reference(customer_id, kind, record_id, record, expires_at)
        except PiiVaultError as exc:
            logger.warning(
                "idempotency reference of %s %s of %s not stored: %s", kind, record_id, customer_id, exc.code
            )

    def _forget_references(self, customer_id: str, kind: str, record_id: str) -> None:
        """Remove the idempotency record of the record's create. Best effort: the erasure is
        committed; a failure here leaves ids and a keyed fingerprint until the TTL."""
        if self._erasures is None:
            return
        try:
            self._erasures.forget_references(customer_id, kind, record_id)
        except PiiVaultError as exc:
            logger.warning(
                "idempotency reference of %s %s of %s not removed: %s", kind, record_id, customer_id, exc.code
            )
