"""chalicelib/tenant_keys.py with fakes: registry cache, writer and reader routing."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from chalicelib.crypto import KIND_POOL, KIND_TENANT, Sealer, WrappedKey, encryption_context
from chalicelib.errors import IntegrityError, KeyUnavailableError
from chalicelib.tenant_keys import (
    SHREDDED,
    CachedRegistry,
    RoutingDataKeys,
    RoutingUnwrapper,
    TenantKey,
    has_own_key,
)

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
