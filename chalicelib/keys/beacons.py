"""Blind index for lookup by email: per-tenant HMAC beacons.

A beacon is ``HMAC-SHA-256(tenant_key, normalised_email)`` truncated to a configured
length. The tenant key is derived locally, ``HMAC-SHA-256(root, "pii-vault/beacon/v1|" +
customer_id)``, from one root MAC that a KMS HMAC key computes
(``kms:GenerateMac`` over a fixed label). So:

- one KMS call per container (the root is cached), whatever the number of tenants;
- the root never leaves the memory of the indexer, the backfill job and the reader;
  it is as sensitive as the HMAC key's use (whoever holds it can test email guesses
  against a table copy), and it changes only with the KMS key (HMAC keys have no
  automatic rotation: a new key plus the backfill job, see docs/find-and-forget.md);
- equal emails in two tenants give unrelated beacons (the tenant is in the derivation),
  equal emails of one tenant give equal beacons: a table reader learns which people of
  a tenant share an email, nothing else (documented leak, by design).

Normalisation (the same function for stored and searched values): email-validator's
normalised form, as the writer stores it: surrounding whitespace removed, Unicode NFC,
the domain lower-cased via IDNA (UTS-46); the local part keeps its case (RFC 5321 lets
a mail server distinguish ``Ann@`` from ``ann@``). A stored value the validator refuses
(written before validation existed) falls back to NFC + strip + lower-cased domain.

The HMAC here is the standard library's (``hmac`` over ``hashlib.sha256``): a keyed MAC
from a key that KMS produced, not a hand-rolled primitive.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import unicodedata
from typing import Protocol

from chalicelib.support.errors import ValidationError

ROOT_LABEL = b"pii-vault/beacon-root/v1"
TENANT_LABEL = b"pii-vault/beacon/v1|"
MIN_BEACON_BYTES = 2
MAX_BEACON_BYTES = 32
# 16 bytes (128 bits): no practical false positives at any tenant size (a tenant of
# 10**9 people meets a random collision with probability ~10**-21), so a lookup decrypts
# only true matches. Shorter beacons trade decrypts for ambiguity (see docs/find-and-forget.md).
DEFAULT_BEACON_BYTES = 16


class MacSource(Protocol):
    """Computes a MAC of ``message`` under a key it never reveals (KMS GenerateMac)."""

    def mac(self, message: bytes) -> bytes: ...


def normalise_email(value: str) -> str:
    """The form that beacons are computed over; raises ValidationError (no value) if malformed."""
    from chalicelib.domain.validation import email

    return email(value.strip() if isinstance(value, str) else value)


def normalise_stored_email(value: str) -> str:
    """Normalise a decrypted, stored email; never raises for a legacy value."""
    try:
        return normalise_email(value)
    except ValidationError:
        text = unicodedata.normalize("NFC", value.strip())
        local, at, domain = text.rpartition("@")
        return f"{local}{at}{domain.lower()}" if at else text


class BeaconKeys:
    """Per-tenant beacon keys under one cached root MAC (thread-safe, one KMS call)."""

    def __init__(self, macs: MacSource, *, length: int = DEFAULT_BEACON_BYTES) -> None:
        if not MIN_BEACON_BYTES <= length <= MAX_BEACON_BYTES:
            raise ValueError(f"beacon length must be {MIN_BEACON_BYTES}-{MAX_BEACON_BYTES} bytes")
        self._macs = macs
        self._root: bytes | None = None
        self._lock = threading.Lock()
        self.length = length

    def _root_key(self) -> bytes:
        if self._root is None:
            with self._lock:
                if self._root is None:
                    self._root = self._macs.mac(ROOT_LABEL)
        return self._root

    def tenant_key(self, customer_id: str) -> bytes:
        return hmac.new(self._root_key(), TENANT_LABEL + customer_id.encode("utf-8"), hashlib.sha256).digest()

    def beacon(self, customer_id: str, normalised_email: str) -> bytes:
        """The beacon of an already normalised email (see ``normalise_email``)."""
        digest = hmac.new(self.tenant_key(customer_id), normalised_email.encode("utf-8"), hashlib.sha256).digest()
        return digest[: self.length]

    def search_beacon(self, customer_id: str, raw_email: str) -> bytes:
        """Beacon of a searched value: normalised like the writer normalises on write."""
        return self.beacon(customer_id, normalise_email(raw_email))

    def stored_beacon(self, customer_id: str, decrypted_email: str) -> bytes:
        return self.beacon(customer_id, normalise_stored_email(decrypted_email))
