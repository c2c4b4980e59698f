"""The people listing's page cursor (``next=``): opaque to clients, bounded before it is parsed.

A token is base64url (unpadded) of ``{"after":"<person id>"}``: the last person id of the
page, never the tenant (the path names it). The ones this service makes are 56 characters.
A token longer than ``MAX_TOKEN_CHARS`` or with a character outside base64url is refused
before anything is decoded, so the JSON parser never sees more than 96 bytes (no nesting
deep enough to recurse: a token decoding to thousands of ``[`` used to raise
RecursionError, a 500), and the decoded text must be exactly that one-key object.
Every refusal is the same 400 naming ``next``, never the value.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from chalicelib.domain.validation import ID_PATTERNS
from chalicelib.support.errors import ValidationError

MAX_TOKEN_CHARS = 128
_TOKEN = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_TOKEN_CHARS}}}")
_PERSON_ID = re.compile(ID_PATTERNS["person_id"])
_AFTER = "after"


def encode_page_token(person_id: str) -> str:
    """Opaque cursor: only the last person id, never the tenant (that comes from the path)."""
    raw = json.dumps({_AFTER: person_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> str:
    """The person id a token continues after; anything else is a 400 naming ``next``."""
    invalid = ValidationError("next is not a valid page token", field="next")
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise invalid
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, UnicodeError, binascii.Error):
        raise invalid from None
    if not isinstance(data, dict) or set(data) != {_AFTER}:
        raise invalid
    person_id = data[_AFTER]
    if not isinstance(person_id, str) or not _PERSON_ID.fullmatch(person_id):
        raise invalid
    return person_id
