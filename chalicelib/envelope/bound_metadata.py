"""What format v2 authenticates besides the ciphertext: the metadata the reader reports.

The writer seals these strings into AADs (``crypto`` "binding"); the reader rebuilds
them from the stored attributes and opens with them, so an attribute edited in the
table (a version, a timestamp, a secret's incarnation) fails authentication exactly
like an edited ciphertext. Stated once here for both sides.
"""

from __future__ import annotations

import os

from chalicelib.support.errors import IntegrityError


def person_created(created_at: str) -> str:
    """Bound by a person's ``META_CREATED`` blob, sealed once by the create."""
    return f"created_at={created_at}"


def person_updated(version: int, updated_at: str, created_sealed: bool) -> str:
    """Bound by a person's ``META_UPDATED`` blob, re-sealed by every write.

    ``created_sealed`` says whether the item carries a ``META_CREATED`` blob (records
    created before format v2 do not), so removing that blob to un-authenticate the
    creation time fails here.
    """
    return f"version={version};updated_at={updated_at};{_SEALED if created_sealed else _LEGACY}"


_SEALED, _LEGACY = "created=sealed", "created=legacy"


def declares_legacy(binding: str) -> bool:
    """Does a person's update-metadata binding say the record was created before format v2?"""
    return binding.startswith("version=") and binding.endswith(";" + _LEGACY)


def person_masked_updated(version: int, updated_at: str) -> str:
    """Bound by a person's masked ``META_UPDATED`` blob (the masked view's own, sealed under
    its data key by every write), so the masked stage reports an authenticated version and
    update time without being able to open the full view's metadata."""
    return f"view=masked;version={version};updated_at={updated_at}"


def secret_version(incarnation: str, legacy_until: int, created_at: str) -> str:
    """Bound by every v2 secret version's value."""
    return f"incarnation={incarnation};legacy_until={legacy_until};created_at={created_at}"


def new_incarnation() -> str:
    """128 random bits, hex: a secret's incarnation, made with its first version."""
    return os.urandom(16).hex()


def require_empty(plaintext: bytes, what: str) -> None:
    """Sealed metadata carries no plaintext: anything else was not written by pii-vault."""
    if plaintext:
        raise IntegrityError(f"sealed metadata of {what} is malformed")


def person_legacy(proof: str) -> str:
    """Bound by a person's ``META_LEGACY`` mark (format v3), sealed once by the first v3 write
    of a record created before format v2. ``proof``: the binding of the v2 update metadata
    that write kept (it must open as ``created=legacy``), or "" for a record written only in v1."""
    return f"{_LEGACY};proof={proof}"
