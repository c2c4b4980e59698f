"""Schemas of the request bodies, from the validation rules that parse them
(``chalicelib.domain.validation``: ``parse_person``, ``parse_search``, ``parse_secret``)."""

from __future__ import annotations

from chalicelib.api.schemas import fields
from chalicelib.api.schemas.model import Array, Object, Schema, String
from chalicelib.domain import validation


def requests() -> dict[str, Schema]:
    """The request bodies, by component name (``contract.Operation.body``)."""
    return {
        "Address": fields.address(),
        "Person": Object(
            description="A whole person. Every field is sensitive and stored only as ciphertext.",
            properties=fields.person_fields(request=True),
            required=validation.PERSON_FIELDS,
        ),
        "PersonPatch": Object(
            description="Some fields of a person (at least one); the others are not touched, nor decrypted.",
            properties=fields.person_fields(request=True),
            min_properties=1,
        ),
        "PeopleSearch": Object(
            description="Lookup by e-mail. The address travels in the body, never in a URL.",
            properties={
                "email": fields.email_request(
                    "Compared after normalisation: the domain case-insensitively (IDNA), the local part as given. "
                    "A malformed address is a 400 naming `email`."
                ),
                "fields": Array(
                    String(enum=validation.PERSON_FIELDS),
                    min_items=1,
                    unique_items=True,
                    description="Decrypt and answer only these fields (default: all).",
                ),
            },
            required=("email",),
        ),
        "SecretValue": Object(
            description="A secret's value: it is stored as a new version, encrypted.",
            properties={
                "value": String(
                    min_length=1,
                    max_length=validation.MAX_SECRET_BYTES,
                    description=(
                        f"Opaque text, at most {validation.MAX_SECRET_BYTES} bytes of UTF-8 (413 beyond; "
                        "JSON Schema counts characters, so a shorter value of multi-byte characters can be too large)."
                    ),
                )
            },
            required=("value",),
        ),
    }
