"""What storage holds and what it offers: records, writes and the storage protocols.

Knows nothing about keys or plaintext (records carry opaque ciphertext blobs and
plaintext metadata: ids, versions, timestamps, key slots) nor about how a table lays
them out (that is ``layout``). DynamoDB and the in-memory fake both implement the
protocols and share one contract suite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

from chalicelib.errors import ConflictError, NotFoundError, PreconditionFailedError, VersionLimitError

FIRST_VERSION = 1
# Bounds the DELETE of a secret (one BatchWriteItem per 25 versions) well inside the
# Lambda timeout, so erasure always completes in one request.
MAX_SECRET_VERSIONS = 5_000


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
        )


@dataclass
class SecretVersion:
    customer_id: str
    secret_id: str
    version: int
    created_at: str
    kms_key: str = ""
    slots: dict[str, bytes] = field(default_factory=dict)
    value: bytes = b""


@dataclass
class Page:
    items: list[PersonRecord]
    next_token: str | None


class SecretVersionConflict(ConflictError):
    """A secret version was not stored because the secret's head was not at ``expected``.

    ``latest`` is the number to build the next attempt on (the head's counter, 0 when
    the secret is gone). Like Powertools' ``IdempotencyItemAlreadyExistsError`` it
    carries what the caller needs to retry without reading; it is a 409 if it escapes.
    """

    def __init__(self, latest: int) -> None:
        super().__init__("secret is being written concurrently; retry the request")
        self.latest = latest


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

    def replace_person(self, write: PersonWrite, expected_version: int | None) -> int: ...

    def patch_person(self, write: PersonWrite, expected_version: int | None) -> int: ...

    def delete_person(self, customer_id: str, person_id: str, expected_version: int | None) -> None: ...

    def get_person(self, customer_id: str, person_id: str) -> PersonRecord | None: ...

    def list_people(self, customer_id: str, limit: int, token: str | None) -> Page: ...

    def get_people(self, customer_id: str, person_ids: Sequence[str]) -> list[PersonRecord]: ...


class SecretStore(Protocol):
    def put_secret_version(self, secret: SecretVersion, expected_latest: int) -> None:
        """Store ``secret`` (numbered ``expected_latest + 1``) and move the head, all or nothing.

        One attempt: raises ``SecretVersionConflict`` when the head is not at
        ``expected_latest``, ``VersionLimitError`` beyond ``MAX_SECRET_VERSIONS``.
        """
        ...

    def delete_secret(self, customer_id: str, secret_id: str) -> None: ...

    def get_secret(self, customer_id: str, secret_id: str, version: int | None) -> SecretVersion | None: ...

    def list_secret_versions(self, customer_id: str, secret_id: str) -> list[SecretVersion]: ...


class Store(PeopleStore, SecretStore, Protocol):
    """What the services need from storage."""
