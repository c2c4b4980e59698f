"""Known-answer vectors freeze the ciphertext formats: v1 and v2 (read), v3 (written for people;
secret versions keep v2), and the key references of format v3.

Each vector is checked twice: by the production code, and by an independent
re-implementation of the documented layout with raw AES-GCM, so a change to either
the code or the format fails here before it can strand stored data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.envelope.format import (
    FORMAT_V2,
    FORMAT_V3,
    RecordRef,
    _seal_field_with_nonce,
    field_aad,
    field_aad_v2,
    open_field,
)
from chalicelib.envelope.key_ref import key_ref, matches, ref_hour

_DIR = Path(__file__).parents[1] / "vectors"
V1 = json.loads((_DIR / "field-v1.json").read_text())
V2 = json.loads((_DIR / "field-v2.json").read_text(encoding="utf-8"))
V3 = json.loads((_DIR / "field-v3.json").read_text(encoding="utf-8"))


def _lp(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


def _ref(case: dict[str, Any]) -> RecordRef:
    return RecordRef(case["customer_id"], case["record_type"], case["record_id"])


def _id(case: dict[str, Any]) -> str:
    return f"{case['record_type']}-{case['field']}-{case['slot']}"


def test_given_the_vector_files_when_loaded_then_they_describe_formats_1_and_2() -> None:
    assert V1["version"] == 1 and len(V1["cases"]) >= 5
    assert V2["version"] == 2 and len(V2["cases"]) >= 5
    assert {case["kind"] for case in V2["cases"]} == {1, 2}
    assert any(case["binding"] for case in V2["cases"]) and any(not case["binding"] for case in V2["cases"])


@pytest.mark.parametrize("case", V1["cases"] + V2["cases"] + V3["cases"], ids=_id)
def test_given_a_vector_when_opened_then_plaintext_matches(case: dict[str, Any]) -> None:
    key = bytes.fromhex(case["data_key_hex"])
    blob = bytes.fromhex(case["blob_hex"])
    plaintext = open_field(key, _ref(case), case["field"], blob, case.get("binding", ""))
    assert plaintext == bytes.fromhex(case["plaintext_hex"])


@pytest.mark.parametrize("case", V1["cases"], ids=_id)
def test_given_a_v1_vector_then_its_aad_is_the_documented_one(case: dict[str, Any]) -> None:
    assert field_aad(_ref(case), case["field"], case["slot"]).hex() == case["aad_hex"]


@pytest.mark.parametrize(
    ("version", "case"),
    [
        pytest.param(v, case, id=f"v{v}-{_id(case)}")
        for v, file in ((FORMAT_V2, V2), (FORMAT_V3, V3))
        for case in file["cases"]
    ],
)
def test_given_a_v2_or_v3_vector_when_sealed_with_its_nonce_then_bytes_and_aad_are_identical(
    version: int, case: dict[str, Any]
) -> None:
    blob = _seal_field_with_nonce(  # the private seam: production nonces come from os.urandom
        bytes.fromhex(case["data_key_hex"]),
        _ref(case),
        case["field"],
        case["slot"],
        bytes.fromhex(case["plaintext_hex"]),
        bytes.fromhex(case["nonce_hex"]),
        case["kind"],
        case["binding"],
        version,
    )
    assert blob.hex() == case["blob_hex"]
    aad = field_aad_v2(_ref(case), case["field"], case["slot"], case["kind"], case["binding"], version)
    assert aad.hex() == case["aad_hex"]


def _parts(case: dict[str, Any]) -> tuple[str, ...]:
    return ("pii-vault", case["customer_id"], case["record_type"], case["record_id"], case["field"], case["slot"])


@pytest.mark.parametrize("case", V1["cases"], ids=_id)
def test_given_the_documented_v1_layout_when_decrypted_independently_then_vector_agrees(case: dict[str, Any]) -> None:
    blob = bytes.fromhex(case["blob_hex"])
    slot = case["slot"].encode("ascii")
    assert blob[0] == 1 and blob[1] == len(slot) and blob[2 : 2 + len(slot)] == slot
    nonce = blob[2 + len(slot) : 14 + len(slot)]
    aad = b"\x01" + b"".join(_lp(p) for p in _parts(case))
    plaintext = AESGCM(bytes.fromhex(case["data_key_hex"])).decrypt(nonce, blob[14 + len(slot) :], aad)
    assert plaintext == bytes.fromhex(case["plaintext_hex"])


@pytest.mark.parametrize("case", V2["cases"], ids=_id)
def test_given_the_documented_v2_layout_when_decrypted_independently_then_vector_agrees(case: dict[str, Any]) -> None:
    blob = bytes.fromhex(case["blob_hex"])
    slot = case["slot"].encode("ascii")
    assert blob[0] == 2 and blob[1] == case["kind"] and blob[2] == len(slot) and blob[3 : 3 + len(slot)] == slot
    nonce = blob[3 + len(slot) : 15 + len(slot)]
    aad = bytes([2, case["kind"]]) + b"".join(_lp(p) for p in (*_parts(case), case["binding"]))
    plaintext = AESGCM(bytes.fromhex(case["data_key_hex"])).decrypt(nonce, blob[15 + len(slot) :], aad)
    assert plaintext == bytes.fromhex(case["plaintext_hex"])


# -- format v3 ---------------------------------------------------------------------------------


def test_given_the_v3_vector_file_then_it_covers_every_kind_the_sealed_metadata_and_key_refs() -> None:
    assert V3["version"] == 3 and len(V3["cases"]) >= 8 and len(V3["key_refs"]) >= 3
    assert {case["kind"] for case in V3["cases"]} == {1, 2, 3, 4}
    assert {case["field"] for case in V3["cases"]} >= {"_created", "_updated", "_legacy", "email"}
    assert all(len(case["slot"]) == 1 for case in V3["cases"])


@pytest.mark.parametrize("case", V3["cases"], ids=_id)
def test_given_the_documented_v3_layout_when_decrypted_independently_then_vector_agrees(case: dict[str, Any]) -> None:
    blob = bytes.fromhex(case["blob_hex"])
    assert blob[0] == 3 and blob[1] == case["kind"] and blob[2:3] == case["slot"].encode("ascii")
    nonce = blob[3:15]
    aad = bytes([3, case["kind"]]) + b"".join(_lp(p) for p in (*_parts(case), case["binding"]))
    assert aad.hex() == case["aad_hex"]
    plaintext = AESGCM(bytes.fromhex(case["data_key_hex"])).decrypt(nonce, blob[15:], aad)
    assert plaintext == bytes.fromhex(case["plaintext_hex"])


@pytest.mark.parametrize("case", V3["key_refs"], ids=lambda case: str(case["hour"]))
def test_given_a_key_ref_vector_then_production_and_an_independent_hmac_agree(case: dict[str, Any]) -> None:
    key, hour = bytes.fromhex(case["data_key_hex"]), case["hour"]
    assert key_ref(key, hour).hex() == case["ref_hex"]
    prefix = struct.pack(">I", hour)
    independent = prefix + hmac.new(key, b"pii-vault/key-ref/v1" + prefix, hashlib.sha256).digest()[:12]
    assert independent.hex() == case["ref_hex"]
    assert ref_hour(independent) == hour and matches(key, independent)
    assert not matches(bytes(32), independent)
    assert not matches(key, prefix + bytes(12))
