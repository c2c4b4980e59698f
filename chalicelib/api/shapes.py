"""The JSON bodies the API answers, as TypedDicts: each view in ``views`` returns one.

They are the one statement of an answer's fields. mypy holds every view to its shape
(no key more, none missing, each value of its type); the OpenAPI schemas
(``chalicelib.api.schemas.answers``) take from them which fields an answer has, which
are required or nullable, and each field's JSON type. The constraints the types cannot
say (id patterns, version ranges) come from the contract and validation rules there.

Only the type checker, the schemas and the tests import this module: ``views`` imports it
under ``TYPE_CHECKING``, so no deployed function loads it.

No ``from __future__ import annotations`` here: Python 3.11 reads ``NotRequired`` from a
TypedDict's annotations only when they are evaluated.
"""

from typing import Any, Literal, NotRequired, TypedDict


class Created(TypedDict):
    """A new person, or a secret's new version."""

    id: str
    version: int
    created_at: str


class Updated(TypedDict):
    """A replaced or patched person."""

    id: str
    version: int
    updated_at: str


class PersonView(TypedDict):
    """A person, decrypted or masked: ``data`` holds the fields asked for."""

    id: str
    version: int
    created_at: str
    updated_at: str
    data: dict[str, Any]


class PeoplePage(TypedDict):
    """A page of people; a multi-get (``?ids=``) answers the same shape plus ``missing``."""

    items: list[PersonView]
    next: str | None
    missing: NotRequired[list[str]]


class PeopleFound(TypedDict):
    """The people a search by e-mail found."""

    items: list[PersonView]


class SecretView(TypedDict):
    """One version of a secret, decrypted."""

    id: str
    version: int
    created_at: str
    value: str


class SecretVersion(TypedDict):
    """One version's metadata: no value."""

    version: int
    created_at: str


class SecretVersions(TypedDict):
    """Every version of a secret, oldest first."""

    id: str
    versions: list[SecretVersion]


class DeleteInProgress(TypedDict):
    """A secret's DELETE that continues over further requests (202)."""

    id: str
    status: Literal["deleting"]
    remaining_versions: int


class Error(TypedDict):
    """Every error the functions answer."""

    code: str
    message: str
