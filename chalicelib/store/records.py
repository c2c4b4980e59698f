"""What storage holds and what it offers: records, writes and the storage protocols.

Knows nothing about keys or plaintext (records carry opaque ciphertext blobs and
plaintext metadata: ids, versions, timestamps, key slots) nor about how a table lays
them out (that is ``layout``). DynamoDB and the in-memory fake both implement the
protocols and share one contract suite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from chalicelib.envelope import bound_metadata
from chalicelib.envelope.blob import FORMAT_V1, FORMAT_V3, blob_version
from chalicelib.support.errors import (
    ConflictError,
    IntegrityError,
    NotFoundError,
    PreconditionFailedError,
    VersionLimitError,
)

FIRST_VERSION = 1
# Versions a secret keeps (a DELETE removes them in bounded rounds, see SecretStore).
MAX_SECRET_VERSIONS = 5_000
# Sealed metadata of a person (format v2 and v3), stored like fields: empty plaintexts whose
# AAD binds what the reader reports (creation time; version and update time), and (v3) the
# mark of a record created before format v2 (``META_LEGACY``: its creation time is not
# authenticated, and the mark says so in a way that cannot be forged by deleting attributes).
META_CREATED = "_created"
META_UPDATED = "_updated"
META_LEGACY = "_legacy"
# Key slots of format v3 (one character, in the blob header): a create's key ("c", never
# replaced: the creation metadata stays openable), a replace's ("0"), a PATCH's (the field's code).
CREATE_SLOT = "c"
FIELD_CODES = {"name": "n", "surname": "s", "email": "e", "dob": "d", "address": "a"}
METADATA_CODES = {META_CREATED: "c", META_UPDATED: "u", META_LEGACY: "l"}
# How a stored person's creation time is vouched for (``PersonShape.created``).
CREATED_SEALED = "sealed"  # a creation metadata blob (v3 or v2)
CREATED_LEGACY = "legacy"  # the legacy mark: created before format v2
ADOPT_V1 = "adopt-v1"  # no sealed metadata at all, every blob v1: this write seals the legacy mark
ADOPT_V2 = "adopt-v2"  # v2 update metadata without creation metadata: the mark, with that blob as proof


@dataclass(frozen=True)
class LegacyProof:
    """The v2 update metadata of a record created before format v2, kept when a v3 write marks
    it legacy: it must open as ``created=legacy`` with ``binding``, or the record was stripped."""

    blob: bytes
    binding: str


@dataclass
class PersonRecord:
    """A sealed person as stored: ciphertext fields plus plaintext metadata.

    ``fields`` and ``masked`` map logical names (fields, sealed metadata) to blobs of any
    format; a v1/v2 blob's slot names a wrapped key in ``slots`` / ``masked_slots``, a v3
    blob's a key reference in ``refs`` / ``masked_refs``.
    """

    customer_id: str
    person_id: str
    version: int
    created_at: str
    updated_at: str
    fields: dict[str, bytes]
    refs: dict[str, bytes] = field(default_factory=dict)
    slots: dict[str, bytes] = field(default_factory=dict)
    # The masked view (docs/masked.md): projections sealed under their own data key,
    # in their own key slots. Empty for records written before the view existed.
    masked: dict[str, bytes] = field(default_factory=dict)
    masked_refs: dict[str, bytes] = field(default_factory=dict)
    masked_slots: dict[str, bytes] = field(default_factory=dict)
    kms_key: str = ""  # v1/v2 items: the KMS key of their inline wrapped keys
    proof: LegacyProof | None = None
    legacy_names: bool = False  # version and update time stored under the v1/v2 attribute names


@dataclass(frozen=True)
class PersonShape:
    """What a person write assumes of the stored item, or learnt from a failed condition:
    its version and how its creation time is vouched for (``CREATED_*``, ``ADOPT_*``).
    Both are conditions of the write, because the sealed metadata it carries binds them."""

    version: int = 0
    created: str = CREATED_SEALED
    legacy_names: bool = False
    proof: LegacyProof | None = None  # ADOPT_V2: the update metadata this write keeps as proof

    @property
    def created_sealed(self) -> bool:
        return self.created == CREATED_SEALED


def shape_of(record: PersonRecord) -> PersonShape:
    """The shape a writer may build on, from a stored record (a failed condition's ``ALL_OLD``).

    Sealed update metadata without creation metadata or the legacy mark is what stripping
    ``_created`` leaves: a writer that cannot decrypt must not guess "legacy" then (it would
    re-seal an edited creation time as unauthenticated). Format v3 always writes one of the
    two, so such a v3 record is an integrity error. A v2 record of that shape may also be
    one created in v1 and updated by a v2 writer: the next write marks it legacy and keeps
    its v2 update metadata as the proof, which the reader checks (it opens only if it said
    ``created=legacy``), so a stripped record reads as an integrity error from then on.
    """
    created, updated, legacy = (record.fields.get(name) for name in (META_CREATED, META_UPDATED, META_LEGACY))
    proof = None
    if created is not None and legacy is not None:
        raise IntegrityError("a stored record is marked both created and legacy")
    if updated is None and (created is not None or legacy is not None):
        raise IntegrityError("a stored record lacks its sealed update metadata")
    if created is not None:
        kind = CREATED_SEALED
    elif legacy is not None:
        kind = CREATED_LEGACY
    elif updated is None:
        if any(blob_version(blob) != FORMAT_V1 for blob in record.fields.values()):
            raise IntegrityError("a stored record lacks its sealed metadata")
        kind = ADOPT_V1
    elif blob_version(updated) == FORMAT_V3:
        raise IntegrityError("a stored record lacks its sealed creation metadata")
    else:
        kind = ADOPT_V2
        proof = LegacyProof(updated, bound_metadata.person_updated(record.version, record.updated_at, False))
    return PersonShape(record.version, kind, record.legacy_names, proof)


@dataclass(frozen=True)
class PersonWrite:
    """One sealed write of a person: the fields it rewrites and the key slots they use.

    ``partial`` (PATCH) merges these fields and slots into the stored ones; otherwise
    they replace them all. ``shape`` is what the write builds on (its version is replaced).
    """

    customer_id: str
    person_id: str
    updated_at: str
    fields: dict[str, bytes]
    refs: dict[str, bytes]
    partial: bool = False
    shape: PersonShape = PersonShape()
    # Key slots the write removes (a replace drops the slots earlier patches left).
    drop_refs: tuple[str, ...] = ()
    # The masked projections of the fields written (and their sealed metadata), their key
    # slots, and the masked slots a replace drops; all empty for a write without the view.
    masked: dict[str, bytes] = field(default_factory=dict)
    masked_refs: dict[str, bytes] = field(default_factory=dict)
    drop_masked_refs: tuple[str, ...] = ()
    drop_masked: tuple[str, ...] = ()  # masked projections a write without the view removes

    @property
    def version(self) -> int:
        return self.shape.version + 1

    def first_version(self) -> PersonRecord:
        """The record a create stores: version 1, created when written."""
        return PersonRecord(
            customer_id=self.customer_id,
            person_id=self.person_id,
            version=FIRST_VERSION,
            created_at=self.updated_at,
            updated_at=self.updated_at,
            fields=dict(self.fields),
            refs=dict(self.refs),
            masked=dict(self.masked),
            masked_refs=dict(self.masked_refs),
        )


@dataclass(frozen=True)
class SecretHead:
    """A secret's head: its version counter and what binds its versions together.

    ``incarnation`` is random, made with the secret's first version and bound into the
    AAD of every version (format v2), so versions of a deleted secret never open as
    versions of a re-created one. None: a secret written before format v2 (or none).
    ``legacy_until``: versions up to this number were sealed before the secret got an
    incarnation (format v1); every later version's AAD binds this number.
    ``deleting``: a DELETE is removing the versions; the secret reads as gone.
    """

    latest: int = 0
    incarnation: str | None = None
    legacy_until: int = 0
    deleting: bool = False


@dataclass
class SecretVersion:
    customer_id: str
    secret_id: str
    version: int
    created_at: str
    kms_key: str = ""
    slots: dict[str, bytes] = field(default_factory=dict)
    value: bytes = b""


@dataclass(frozen=True)
class SecretRead:
    """One stored version of a secret, with the head it was found through."""

    head: SecretHead
    version: SecretVersion


@dataclass(frozen=True)
class DeleteProgress:
    """How far a bounded DELETE of a secret got: ``remaining`` versions still to remove."""

    remaining: int

    @property
    def done(self) -> bool:
        return self.remaining == 0


@dataclass
class Page:
    items: list[PersonRecord]
    next_token: str | None


class SecretVersionConflict(ConflictError):
    """A secret version was not stored because the secret's head was not as expected.

    ``head`` is what to build the next attempt on (the head as stored; an empty head
    when the secret is gone). Like Powertools' ``IdempotencyItemAlreadyExistsError`` it
    carries what the caller needs to retry without reading; it is a 409 if it escapes.
    """

    def __init__(self, head: SecretHead) -> None:
        super().__init__("secret is being written concurrently; retry the request")
        self.head = head

    @property
    def latest(self) -> int:
        return self.head.latest


class PersonVersionConflict(ConflictError):
    """A person write was not stored: the item is not as ``write.shape`` says. ``shape`` is
    the stored item's (None: no such person), so the caller can re-seal its metadata and
    retry without reading."""

    def __init__(self, shape: PersonShape | None) -> None:
        super().__init__("person is being written concurrently; retry the request")
        self.shape = shape

    @property
    def current(self) -> int | None:
        return None if self.shape is None else self.shape.version


def check_secret_version(version: int) -> None:
    """Refuse a version beyond the cap (read at call time, so tests can lower it)."""
    if version > MAX_SECRET_VERSIONS:
        raise VersionLimitError(f"a secret keeps at most {MAX_SECRET_VERSIONS} versions; delete it to start again")


def condition_failed(expected_version: int | None, what: str) -> Exception:
    """A failed condition means 'gone' without If-Match, 'changed' with it (RFC 9110)."""
    if expected_version is None:
        return NotFoundError(f"{what} not found")
    return PreconditionFailedError(f"{what} does not exist at the version given in If-Match")


class PeopleStore(Protocol):
    def create_person(self, record: PersonRecord) -> None: ...

    def update_person(self, write: PersonWrite) -> int:
        """Replace (all fields) or patch (``write.partial``) a person shaped as ``write.shape``.

        One conditional attempt; returns the new version or raises ``PersonVersionConflict``.
        """
        ...

    def delete_person(self, customer_id: str, person_id: str, expected_version: int | None) -> None: ...

    def get_person(self, customer_id: str, person_id: str) -> PersonRecord | None: ...

    def list_people(self, customer_id: str, limit: int, token: str | None) -> Page: ...

    def get_people(self, customer_id: str, person_ids: Sequence[str]) -> list[PersonRecord]: ...


class MaskedPeopleStore(Protocol):
    """The masked stage's reads: like ``PeopleStore``'s, but each record carries only its
    key, plaintext metadata and masked view (``fields`` and ``slots`` empty): the DynamoDB
    store fetches nothing else (a projection its IAM policy requires)."""

    def get_masked_person(self, customer_id: str, person_id: str) -> PersonRecord | None: ...

    def list_masked_people(self, customer_id: str, limit: int, token: str | None) -> Page: ...

    def get_masked_people(self, customer_id: str, person_ids: Sequence[str]) -> list[PersonRecord]: ...


class SecretStore(Protocol):
    def put_secret_version(self, secret: SecretVersion, expected: SecretHead, new_head: SecretHead) -> None:
        """Store ``secret`` (numbered ``expected.latest + 1``) and move the head from
        ``expected`` to ``new_head`` (same incarnation, or a first one), all or nothing.

        One attempt: raises ``SecretVersionConflict`` when the head is not as expected
        (or is being deleted), ``VersionLimitError`` beyond ``MAX_SECRET_VERSIONS``.
        """
        ...

    def delete_secret(
        self, customer_id: str, secret_id: str, max_versions: int, before_removal: Callable[[], None] | None = None
    ) -> DeleteProgress:
        """Mark the secret deleted (it reads as gone at once) and remove up to
        ``max_versions`` of its versions, newest first; the head goes with the last.
        Call again while ``remaining`` > 0. ``NotFoundError`` when there is no secret.
        ``before_removal`` runs once the mark is made and before anything is removed
        (the erasure's ledger entry): if it fails, nothing is removed."""
        ...

    def get_secret(self, customer_id: str, secret_id: str, version: int | None) -> SecretRead | None:
        """The version its head names (``version`` None: the latest); None when the
        secret, or that version, does not exist or is being deleted."""
        ...

    def list_secret_versions(self, customer_id: str, secret_id: str) -> list[SecretVersion]: ...


class Store(PeopleStore, SecretStore, Protocol):
    """What the services need from storage."""
