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

from chalicelib.support.errors import ConflictError, NotFoundError, PreconditionFailedError, VersionLimitError

FIRST_VERSION = 1
# Versions a secret keeps (a DELETE removes them in bounded rounds, see SecretStore).
MAX_SECRET_VERSIONS = 5_000
# Sealed metadata of a person (format v2), stored like fields: empty plaintexts whose
# AAD binds what the reader reports (creation time; version and update time).
META_CREATED = "_created"
META_UPDATED = "_updated"


@dataclass
class PersonRecord:
    """A sealed person as stored: ciphertext fields plus plaintext metadata."""

    customer_id: str
    person_id: str
    version: int
    created_at: str
    updated_at: str
    kms_key: str
    slots: dict[str, bytes]
    fields: dict[str, bytes]
    # The masked view (docs/masked.md): projections sealed under their own data key,
    # in their own key slots. Empty for records written before the view existed.
    masked: dict[str, bytes] = field(default_factory=dict)
    masked_slots: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class PersonWrite:
    """One sealed write of a person: the fields it rewrites and the key slots they use.

    ``partial`` (PATCH) merges these fields and slots into the stored ones; otherwise
    they replace them all. Version and creation time are the store's to keep.
    """

    customer_id: str
    person_id: str
    updated_at: str
    kms_key: str
    slots: dict[str, bytes]
    fields: dict[str, bytes]
    partial: bool = False
    # The version this write replaces (0 for a create) and whether the stored item has
    # sealed creation metadata: both are conditions of the write, because the sealed
    # metadata it carries (META_UPDATED) was built on them.
    expected_version: int = 0
    created_sealed: bool = True
    # Key slots the write removes (a replace drops the slots earlier patches left).
    drop_slots: tuple[str, ...] = ()
    # The masked projections of the fields written (and their sealed metadata), their key
    # slots, and the masked slots a replace drops; all empty for a write without the view.
    masked: dict[str, bytes] = field(default_factory=dict)
    masked_slots: dict[str, bytes] = field(default_factory=dict)
    drop_masked_slots: tuple[str, ...] = ()
    drop_masked: tuple[str, ...] = ()  # masked projections a write without the view removes

    @property
    def version(self) -> int:
        return self.expected_version + 1

    def first_version(self) -> PersonRecord:
        """The record a create stores: version 1, created when written."""
        return PersonRecord(
            customer_id=self.customer_id,
            person_id=self.person_id,
            version=FIRST_VERSION,
            created_at=self.updated_at,
            updated_at=self.updated_at,
            kms_key=self.kms_key,
            slots=dict(self.slots),
            fields=dict(self.fields),
            masked=dict(self.masked),
            masked_slots=dict(self.masked_slots),
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
    """A person write was not stored: the item is not at ``write.expected_version`` (or
    its creation metadata is not as the write assumed). ``current`` is the stored
    version (None: no such person), ``created_sealed`` whether it has sealed creation
    metadata, so the caller can re-seal its metadata and retry without reading."""

    def __init__(self, current: int | None, created_sealed: bool) -> None:
        super().__init__("person is being written concurrently; retry the request")
        self.current = current
        self.created_sealed = created_sealed


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
        """Replace (all fields) or patch (``write.partial``) a person at ``write.expected_version``.

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
