"""Known-answer vectors freeze ciphertext format v1.

Each vector is checked twice: by the production code, and by an independent
re-implementation of the documented layout with raw AES-GCM, so a change to either
the code or the format fails here before it can strand stored data.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.crypto import RecordRef, _seal_field_with_nonce, field_aad, open_field

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "field-v1.json").read_text())
CASES = VECTORS["cases"]


def _lp(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


def _ref(case: dict) -> RecordRef:
    return RecordRef(case["customer_id"], case["record_type"], case["record_id"])


def test_given_the_vector_file_when_loaded_then_it_describes_format_1_with_cases() -> None:
    assert VECTORS["version"] == 1
    assert len(CASES) >= 5


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['record_type']}-{c['field']}-{c['slot']}")
def test_given_a_v1_vector_when_opened_then_plaintext_matches(case: dict) -> None:
    key = bytes.fromhex(case["data_key_hex"])
    plaintext = open_field(key, _ref(case), case["field"], bytes.fromhex(case["blob_hex"]))
    assert plaintext == bytes.fromhex(case["plaintext_hex"])


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['record_type']}-{c['field']}-{c['slot']}")
def test_given_a_v1_vector_when_sealed_with_its_nonce_then_bytes_are_identical(case: dict) -> None:
    blob = _seal_field_with_nonce(  # the private seam: production nonces come from os.urandom
        bytes.fromhex(case["data_key_hex"]),
        _ref(case),
        case["field"],
        case["slot"],
        bytes.fromhex(case["plaintext_hex"]),
        bytes.fromhex(case["nonce_hex"]),
    )
    assert blob.hex() == case["blob_hex"]
    assert field_aad(_ref(case), case["field"], case["slot"]).hex() == case["aad_hex"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['record_type']}-{c['field']}-{c['slot']}")
def test_given_the_documented_layout_when_decrypted_independently_then_vector_agrees(case: dict) -> None:
    blob = bytes.fromhex(case["blob_hex"])
    slot = case["slot"].encode("ascii")
    assert blob[0] == 1 and blob[1] == len(slot) and blob[2 : 2 + len(slot)] == slot
    nonce = blob[2 + len(slot) : 14 + len(slot)]
    aad = b"\x01" + b"".join(
        _lp(p)
        for p in ("pii-vault", case["customer_id"], case["record_type"], case["record_id"], case["field"], case["slot"])
    )
    plaintext = AESGCM(bytes.fromhex(case["data_key_hex"])).decrypt(nonce, blob[14 + len(slot) :], aad)
    assert plaintext == bytes.fromhex(case["plaintext_hex"])
