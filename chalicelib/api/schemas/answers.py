"""Schemas of the successful answers, each derived from the view that builds it
(``chalicelib.api.views``: fields from its shape) and the rules of its values."""

from __future__ import annotations

import dataclasses

from chalicelib.api import contract, shapes, views
from chalicelib.api.schemas import fields
from chalicelib.api.schemas.fields import TIMESTAMP, VERSION, identifier
from chalicelib.api.schemas.model import Array, Integer, Object, Ref, Schema, String
from chalicelib.api.schemas.shaped import of_shape, of_view
from chalicelib.domain import masking, validation
from chalicelib.store.beacons import MAX_MATCHES


def _person_view(data: str, description: str) -> Object:
    return of_view(
        views.person,
        description,
        id=identifier("person_id"),
        version=VERSION,
        created_at=TIMESTAMP,
        updated_at=TIMESTAMP,
        data=Ref(data),
    )


def _people_page(person: str, description: str) -> Object:
    return of_view(
        (views.people_page, views.people_batch),
        description,
        items=Array(Ref(person), max_items=contract.MAX_PAGE_SIZE),
        next=String(description="Opaque token for the next page; null on the last page (and for ?ids=)."),
        missing=Array(
            identifier("person_id"),
            max_items=contract.MAX_PAGE_SIZE,
            description="With ?ids=: the ids asked for that do not exist, in the order asked.",
        ),
    )


def answers() -> dict[str, Schema]:
    """The answers of the writer and the reader, by component name."""
    person_id, secret_id = identifier("person_id"), identifier("secret_id")
    return {
        "PersonData": Object(
            description="Decrypted fields: all five, or those named in ?fields=.",
            properties=fields.person_fields(request=False),
        ),
        "DeleteInProgress": of_view(
            views.delete_in_progress,
            "The secret reads as gone already; its versions are still being removed. "
            "Repeat the DELETE after Retry-After seconds until it answers 204.",
            id=secret_id,
            status=String(),
            remaining_versions=Integer(minimum=1, description="Versions left to remove."),
        ),
        "PersonCreated": of_view(
            views.created,
            "The new person: its id, first version and creation time. No plaintext is returned.",
            id=person_id,
            version=VERSION,
            created_at=TIMESTAMP,
        ),
        "PersonUpdated": of_view(
            views.updated,
            "The person's new version and the time of the change.",
            id=person_id,
            version=VERSION,
            updated_at=TIMESTAMP,
        ),
        "PersonView": _person_view("PersonData", "A person: metadata in the clear, the fields decrypted."),
        "PeopleFound": of_view(
            views.people_found,
            "The people whose e-mail matches, decrypted (an empty list when none).",
            items=Array(Ref("PersonView"), max_items=MAX_MATCHES),
        ),
        "PeoplePage": _people_page(
            "PersonView", "A page of people, decrypted; or, for ?ids=, the people found and the ids missing."
        ),
        "SecretCreated": of_view(
            views.created,
            "The secret's new version and its creation time. The value is not returned.",
            id=secret_id,
            version=VERSION,
            created_at=TIMESTAMP,
        ),
        "SecretView": of_view(
            views.secret,
            None,
            id=secret_id,
            version=VERSION,
            created_at=TIMESTAMP,
            value=String(description="The value as stored, decrypted."),
        ),
        "SecretVersions": of_view(
            views.secret_versions,
            None,
            id=secret_id,
            versions=Array(of_shape(shapes.SecretVersion, version=VERSION, created_at=TIMESTAMP)),
        ),
    }


def masked_answers() -> dict[str, Schema]:
    """The masked stage's answers (``chalicelib.domain.masking``): null where a record has no
    projection (written before the masked view existed)."""
    initial = String(min_length=1, max_length=2, description="Initial and '.', or '*' for a one-character value.")
    projections: dict[str, Schema] = {
        "name": initial,
        "surname": initial,
        "email": String(
            pattern="^[^@]?[*]{3}@[^@]+$",
            description="First character of the local part (none for a local part of one or two characters), "
            "***, @ and the domain.",
        ),
        "dob": String(pattern="^[0-9]{4}$", description="Year of birth."),
        "address": Object(
            description="The city and the country only.",
            properties={part: fields.address_part(part) for part in masking.ADDRESS_SHOWN},
            required=masking.ADDRESS_SHOWN,
        ),
    }
    if set(projections) != set(masking.MASKS) or set(masking.MASKS) != set(validation.PERSON_FIELDS):
        raise LookupError("the masked projections described differ from masking.MASKS")
    return {
        "MaskedPersonData": Object(
            description="Masked projections: all five fields, or those named in ?fields=; null for a record "
            "written before the masked view existed.",
            properties={name: _nullable(projections[name]) for name in validation.PERSON_FIELDS},
        ),
        "MaskedPersonView": _person_view("MaskedPersonData", "A person: metadata in the clear, the fields masked."),
        "MaskedPeoplePage": _people_page(
            "MaskedPersonView", "A page of masked people; or, for ?ids=, the people found and the ids missing."
        ),
    }


def _nullable(schema: Schema) -> Schema:
    if isinstance(schema, Ref):
        raise TypeError("OpenAPI 3.0 cannot make a $ref nullable")
    return dataclasses.replace(schema, nullable=True)
