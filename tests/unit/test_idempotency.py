"""Idempotency-Key form (128 bits at least) and what the stored fingerprint gives away."""

from __future__ import annotations

import hashlib
import hmac
import uuid

import pytest

from chalicelib.support.errors import ValidationError
from chalicelib.support.idempotency import HEADER, parse_key

GOOD_KEYS = [
    str(uuid.UUID(int=0x3F2504E04F8911D39A0C0305E82C3301)),
    "3F2504E0-4F89-11D3-9A0C-0305E82C3301",
    "Zq0-_9aB3cD4eF5gH6iJ7k",  # 22 base64url characters: 132 bits
    "A" * 255,
]
GUESSABLE_KEYS = [
    "1",
    "req-1",
    "rotate-7",
    "order-2024-05-01",
    "Zq0-_9aB3cD4eF5gH6iJ7",  # 21 characters: 126 bits
    "A" * 256,
    "3f2504e0 4f89 11d3 9a0c 0305e82c3301",
    "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}",
    "Zq0+/9aB3cD4eF5gH6iJ7k==",  # base64, not base64url
    "Zq0-_9aB3cD4eF5gH6iJ7k\n",
    "",
]


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_given_a_uuid_or_22_base64url_characters_then_the_key_is_accepted(key: str) -> None:
    assert parse_key(key) == key


@pytest.mark.parametrize("key", GUESSABLE_KEYS)
def test_given_a_key_of_fewer_than_128_bits_in_form_then_400_naming_the_header_not_the_value(key: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_key(key)
    assert caught.value.field == HEADER and HEADER in caught.value.message
    with pytest.raises(ValidationError) as other:
        parse_key("!")
    assert caught.value.message == other.value.message  # the value leaves no trace in the message


def test_given_no_header_then_no_key() -> None:
    assert parse_key(None) is None


def test_given_the_same_key_and_body_from_two_scopes_then_two_unrelated_fingerprints() -> None:
    from chalicelib.support.idempotency import fingerprint

    key, body = "Zq0-_9aB3cD4eF5gH6iJ7k", b'{"value":"whsec_guess_me"}'
    one = fingerprint("caller-a\nsecret.put:acme:hook", key, body)
    other = fingerprint("caller-b\nsecret.put:acme:hook", key, body)
    assert one != other
    assert fingerprint("caller-a\nsecret.put:acme:hook", key, body) == one  # deterministic across containers
    # Not a hash of the body alone, nor keyed by the client key alone (what an offline guesser
    # who learnt or guessed the key would recompute).
    assert one not in {hashlib.sha256(body).hexdigest(), hmac.new(key.encode(), body, hashlib.sha256).hexdigest()}
