"""chalicelib/keys/tenants.py with fakes: registry cache, writer and reader routing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest

from chalicelib.envelope.format import KIND_POOL, KIND_TENANT, Sealer, WrappedKey, encryption_context
from chalicelib.keys.tenants import (
    SHREDDED,
    CachedRegistry,
    RoutingDataKeys,
    RoutingUnwrapper,
    TenantKey,
    has_own_key,
)
from chalicelib.support.errors import IntegrityError, KeyUnavailableError

KEY_A = "arn:aws:kms:eu-west-1:111122223333:key/aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"


class Registry:
    def __init__(self, entries: dict[str, TenantKey]) -> None:
        self.entries = entries
        self.lookups = 0

    def get(self, customer_id: str) -> TenantKey | None:
        self.lookups += 1
        return self.entries.get(customer_id)


class Source:
    def __init__(self, name: str) -> None:
        self.name = name
        self.contexts: list[dict[str, str]] = []

    def data_key(self, context: Mapping[str, str]) -> tuple[bytes, WrappedKey]:
        self.contexts.append(dict(context))
        return b"k" * 32, WrappedKey(self.name.encode(), self.name)


class Unwrapper:
    def __init__(self, name: str, fails: Exception | None = None) -> None:
        self.name, self.fails, self.calls = name, fails, 0

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        self.calls += 1
        if self.fails is not None:
            raise self.fails
        return self.name.encode().ljust(32, b"\0")


def test_given_a_cached_registry_then_one_lookup_per_tenant_per_ttl_absent_answers_included() -> None:
    now = [0.0]
    backing = Registry({"a": TenantKey("a", KEY_A)})
    cached = CachedRegistry(backing, ttl_seconds=300, clock=lambda: now[0])
    assert cached.get("a") == TenantKey("a", KEY_A) and cached.get("a") is not None
    assert cached.get("b") is None and cached.get("b") is None
    assert backing.lookups == 2
    now[0] = 301
    backing.entries.clear()
    assert cached.get("a") is None and backing.lookups == 3


def test_given_a_tenant_with_its_own_key_then_the_sealer_uses_tenant_scope_and_its_key() -> None:
    registry = Registry({"a": TenantKey("a", KEY_A)})
    shared, own = Source("shared"), Source("own")
    made: list[str] = []

    def source_for(arn: str) -> Source:
        made.append(arn)
        return own

    sealer = Sealer(RoutingDataKeys(shared, registry, source_for), "pii-vault", own_key=has_own_key(registry))
    a, b = sealer.envelope("a"), sealer.envelope("b")
    assert (a.kind, a.wrapped_key.key_id) == (KIND_TENANT, "own")
    assert (b.kind, b.wrapped_key.key_id) == (KIND_POOL, "shared")
    sealer.envelope("a")
    assert own.contexts == [encryption_context("pii-vault", "a", KIND_TENANT)] * 2
    assert shared.contexts == [encryption_context("pii-vault", "b", KIND_POOL)]
    assert made == [KEY_A]  # one source per key ARN


def test_given_a_shredded_tenant_then_writes_and_reads_are_key_unavailable_without_kms() -> None:
    registry = Registry({"a": TenantKey("a", KEY_A, state=SHREDDED)})
    shared = Source("shared")
    sealer = Sealer(RoutingDataKeys(shared, registry, lambda arn: shared), "pii-vault", own_key=has_own_key(registry))
    with pytest.raises(KeyUnavailableError):
        sealer.envelope("a")
    unwrapper = Unwrapper("shared")
    with pytest.raises(KeyUnavailableError):
        RoutingUnwrapper(unwrapper, registry, lambda arn: unwrapper).unwrap(b"w", {"app": "p", "customer_id": "a"})
    assert shared.contexts == [] and unwrapper.calls == 0


def test_given_a_record_not_yet_rewrapped_then_the_reader_falls_back_to_the_shared_then_previous_key() -> None:
    registry = Registry({"a": TenantKey("a", KEY_A)})
    own = Unwrapper("own", IntegrityError("not under this key"))
    shared = Unwrapper("shared", IntegrityError("not under this key"))
    previous = Unwrapper("previous")
    routing = RoutingUnwrapper(shared, registry, lambda arn: own, [previous])
    assert routing.unwrap(b"w", {"app": "p", "customer_id": "a"}).startswith(b"previous")
    assert (own.calls, shared.calls, previous.calls) == (1, 1, 1)
    # Pool contexts never try a tenant key.
    assert routing.unwrap(b"w", {"app": "p", "scope": "pool"}).startswith(b"previous") and own.calls == 1


def test_given_an_unavailable_tenant_key_then_the_reader_never_falls_back() -> None:
    registry = Registry({"a": TenantKey("a", KEY_A)})
    own = Unwrapper("own", KeyUnavailableError("disabled"))
    shared = Unwrapper("shared")
    with pytest.raises(KeyUnavailableError):
        RoutingUnwrapper(shared, registry, lambda arn: own).unwrap(b"w", {"app": "p", "customer_id": "a"})
    assert shared.calls == 0


def test_given_every_key_refuses_then_the_first_refusal_is_raised() -> None:
    first = IntegrityError("first")
    routing = RoutingUnwrapper(
        Unwrapper("shared", first), Registry({}), lambda arn: Unwrapper("x"), [Unwrapper("p", IntegrityError("2"))]
    )
    with pytest.raises(IntegrityError) as raised:
        routing.unwrap(b"w", {"app": "p", "customer_id": "b"})
    assert raised.value is first


# -- rewrap of both views (chalicelib/service/rewrap.py) with a fake KMS and table -------------------


def header(kind: int, slot: str) -> dict[str, bytes]:
    """A v2 field blob naming ``slot`` and ``kind`` (the job reads headers only)."""
    return {"B": bytes([2, kind, len(slot)]) + slot.encode() + b"\0" * 12 + b"c" * 17}


class FakeReEncryptor:
    def __init__(self) -> None:
        self.calls = 0
        self.seen: list[tuple[bytes, dict[str, str]]] = []

    def reencrypt(self, blob: bytes, context: Mapping[str, str]) -> bytes | None:
        self.calls += 1
        self.seen.append((blob, dict(context)))
        return b"new-" + blob


class FakeTable:
    """A boto3 DynamoDB client that records the rewrap store's UpdateItem (and finds nothing)."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []

    def update_item(self, **kwargs: Any) -> dict[str, object]:
        self.updates.append(kwargs)
        return {}

    def get_item(self, **_kwargs: object) -> dict[str, object]:
        return {}


def person(full_kind: int, masked_kind: int) -> dict[str, Any]:
    return {
        "pk": {"S": "C#acme"},
        "sk": {"S": "P#" + "0" * 32},
        "kms_key": {"S": "shared"},
        "slots": {"M": {"0": {"B": b"full-key"}}},
        "f_email": header(full_kind, "0"),
        "m_email": header(masked_kind, "0"),
        "mk_0": {"B": b"masked-key"},
    }


def run(item: dict[str, Any], customer: str | None) -> tuple[Counter[str], FakeReEncryptor, FakeTable]:
    from chalicelib.keys.reencrypt import RewrapMap
    from chalicelib.service.rewrap import RewrapPlan, rewrap_processor
    from chalicelib.store.job_items import DynamoDbSlotItems

    kms, table = FakeReEncryptor(), FakeTable()
    plan = RewrapPlan("shared", "target", customer, "pii-vault")
    counts = rewrap_processor(DynamoDbSlotItems(table, "t"), plan, RewrapMap(kms))([item])
    return counts, kms, table


def test_given_a_tenant_scoped_record_then_both_views_move_each_under_its_exact_context() -> None:
    from chalicelib.envelope.format import KIND_MASKED_TENANT
    from chalicelib.service.rewrap import REWRAP_WRITE_ATTRIBUTES

    counts, kms, table = run(person(KIND_TENANT, KIND_MASKED_TENANT), "acme")
    assert kms.seen == [
        (b"full-key", encryption_context("pii-vault", "acme", KIND_TENANT)),
        (b"masked-key", encryption_context("pii-vault", "acme", KIND_MASKED_TENANT)),
    ]
    assert kms.seen[1][1]["view"] == "masked" and "view" not in kms.seen[0][1]
    assert counts["items_rewrapped"] == 1 and counts["slots_rewrapped"] == 2 and counts["masked_slots_rewrapped"] == 1
    (update,) = table.updates
    names, values = update["ExpressionAttributeNames"], update["ExpressionAttributeValues"]
    assert set(names.values()) - {"0"} <= set(REWRAP_WRITE_ATTRIBUTES)  # "0": a key inside the slots map
    assert {"B": b"new-masked-key"} in values.values() and {"B": b"masked-key"} in values.values()
    assert values[":kms"] == {"S": "target"} and update["ReturnValues"] == "NONE"
    # Every masked slot attribute not read must still be absent: a write meanwhile fails the update.
    assert update["ConditionExpression"].count("attribute_not_exists") == len(REWRAP_WRITE_ATTRIBUTES) - 5


def test_given_a_tenant_move_then_a_masked_pool_slot_stays_and_the_key_id_does_not_move() -> None:
    from chalicelib.envelope.format import KIND_MASKED_POOL

    counts, kms, table = run(person(KIND_TENANT, KIND_MASKED_POOL), "acme")
    assert [blob for blob, _ in kms.seen] == [b"full-key"]
    assert counts["pool_slots_left"] == 1 and counts["items_rewrapped"] == 1
    assert ":kms" not in table.updates[0]["ExpressionAttributeValues"]
    # Moving every tenant (a new shared key) moves the masked pool slot under its pool context.
    _counts, kms, _table = run(person(KIND_POOL, KIND_MASKED_POOL), None)
    assert kms.seen[1] == (b"masked-key", encryption_context("pii-vault", "acme", KIND_MASKED_POOL))


def test_given_a_masked_blob_claiming_a_full_view_kind_then_the_item_is_left_alone() -> None:
    counts, kms, table = run(person(KIND_TENANT, KIND_TENANT), "acme")
    assert counts["items_unreadable_headers"] == 1 and kms.calls == 0 and table.updates == []


def test_given_the_verify_pass_then_masked_slots_are_checked_under_their_context() -> None:
    from chalicelib.envelope.format import KIND_MASKED_TENANT
    from chalicelib.keys.reencrypt import RewrapMap
    from chalicelib.service.rewrap import RewrapPlan, verify_processor

    kms = FakeReEncryptor()
    plan = RewrapPlan("shared", "target", "acme", "pii-vault")
    counts = verify_processor(plan, RewrapMap(kms))([person(KIND_TENANT, KIND_MASKED_TENANT)])
    assert counts["verified_slots"] == 2 and counts["verified_masked_slots"] == 1
    assert encryption_context("pii-vault", "acme", KIND_MASKED_TENANT) in [c for _, c in kms.seen]
