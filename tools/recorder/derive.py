"""One request (service, operation, wire parameters) -> the accesses IAM authorizes for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.recorder.dynamodb import ItemRequests, Tables, stream_accesses
from tools.recorder.kms import CiphertextKeys, KeyRequests, Keys
from tools.recorder.model import Access


def accesses(
    service: str,
    operation: str,
    params: Mapping[str, Any],
    *,
    region: str,
    account: str,
    tables: Tables,
    keys: Keys,
    ciphertext_key: CiphertextKeys,
) -> list[Access]:
    """Raises ``Underivable`` for what is not modelled (the proof then fails, never guesses)."""
    if service == "dynamodb":
        return ItemRequests(tables, region, account).derive(operation, params)
    if service == "dynamodbstreams":
        return stream_accesses(operation, params)
    if service == "kms":
        return KeyRequests(keys, ciphertext_key, account).derive(operation, params)
    # Other services (IAM, STS, CloudFormation...): the code under test never calls them; setup
    # does. Recorded by action only, on "*", so a stage that did call one is judged (and denied).
    return [Access(f"{service}:{operation}", "*")]
