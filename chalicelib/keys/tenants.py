"""Per-tenant KMS keys: which key serves a tenant, and routing the stages' KMS calls to it.

Opt-in per tenant; the shared key stays the default. ``tools.tenants onboard`` creates a
key for one tenant (or registers a key the customer owns in its own account) and files
it in the **tenant registry** (a DynamoDB table of its own: customer id -> key ARN, owner,
state). Every stage reads the registry through ``CachedRegistry`` (one GetItem per tenant
per ``tenant_key_cache_seconds``, answers without a key cached too).

- Writer: a tenant with its own key gets **tenant-scoped** data keys (format v2 kind 1,
  KMS context ``{"app", "customer_id"}``) wrapped by its key (``RoutingDataKeys``); every
  other tenant keeps the configured scope (pool by default) under the shared key. Data
  keys of one tenant key are cached per key ARN, at most ``tenant_key_cache_seconds``, so
  disabling the key stops writes within that time.
- Reader (and indexer): ``RoutingUnwrapper`` decrypts a tenant context with the tenant's
  key, pinned by ARN; a record not yet moved by the rewrap job (still under the shared
  key) falls back to the shared key and then to ``previous_kms_key_ids``. A key that is
  disabled or pending deletion never falls back: it answers ``key_unavailable``.
- A registry entry whose state is not ``active`` (the tenant was offboarded and its key
  scheduled for deletion) answers ``key_unavailable`` at once, without asking KMS.

Tenant-key data keys never enter the reader fleet table (``chalicelib/keys/fleet.py`` shares
pool keys only), so deleting a tenant key shreds that tenant's data once the container
caches (minutes) have aged out. The threat that a registry writer downgrades a tenant to
the shared key, and what detects it, is in docs/tenant-keys.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from chalicelib.envelope.format import DataKeySource, KeyUnwrapper, WrappedKey
from chalicelib.support.errors import IntegrityError, KeyServiceError, KeyUnavailableError

logger = logging.getLogger(__name__)

ACTIVE = "active"
SHREDDED = "shredded"
OWNER_VAULT = "pii-vault"  # created by tools.tenants onboard, in this account
OWNER_CUSTOMER = "customer"  # a key in the customer's own account
_TENANT_CONTEXT_KEY = "customer_id"
_MAX_CACHED_TENANTS = 10_000


@dataclass(frozen=True)
class TenantKey:
    customer_id: str
    key_arn: str
    owner: str = OWNER_VAULT
    state: str = ACTIVE


class TenantRegistry(Protocol):
    """Where a tenant's own key is filed; None: the tenant uses the shared key."""

    def get(self, customer_id: str) -> TenantKey | None: ...


class CachedRegistry:
    """A ``TenantRegistry`` that remembers each answer (absent ones too) for ``ttl_seconds``."""

    def __init__(
        self,
        registry: TenantRegistry,
        *,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = _MAX_CACHED_TENANTS,
    ) -> None:
        self._registry = registry
        self._ttl = ttl_seconds
        self._clock = clock
        self._max = max_entries
        self._entries: dict[str, tuple[TenantKey | None, float]] = {}
        self._lock = threading.Lock()

    def get(self, customer_id: str) -> TenantKey | None:
        now = self._clock()
        with self._lock:
            hit = self._entries.get(customer_id)
        if hit is not None and now - hit[1] < self._ttl:
            return hit[0]
        found = self._registry.get(customer_id)
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()  # bounded; a refill costs one GetItem per tenant
            self._entries[customer_id] = (found, now)
        return found


def _active(registry: TenantRegistry, customer_id: str) -> TenantKey | None:
    found = registry.get(customer_id)
    if found is not None and found.state != ACTIVE:
        raise KeyUnavailableError("the tenant's KMS key is disabled or pending deletion")
    return found


def has_own_key(registry: TenantRegistry) -> Callable[[str], bool]:
    """For ``crypto.Sealer``: does this tenant seal under tenant-scoped keys of its own key?"""
    return lambda customer_id: _active(registry, customer_id) is not None


class RoutingDataKeys:
    """Writer: tenant contexts of tenants with their own key go to a source for that key."""

    def __init__(
        self, shared: DataKeySource, registry: TenantRegistry, source_for: Callable[[str], DataKeySource]
    ) -> None:
        self._shared = shared
        self._registry = registry
        self._source_for = source_for
        self._sources: dict[str, DataKeySource] = {}
        self._lock = threading.Lock()

    def data_key(self, context: Mapping[str, str]) -> tuple[bytes, WrappedKey]:
        customer_id = context.get(_TENANT_CONTEXT_KEY)
        own = _active(self._registry, customer_id) if customer_id else None
        if own is None:
            return self._shared.data_key(context)
        with self._lock:
            source = self._sources.get(own.key_arn)
            if source is None:
                source = self._sources[own.key_arn] = self._source_for(own.key_arn)
        return source.data_key(context)


class RoutingUnwrapper:
    """Reader: the tenant's own key first (tenant contexts), then the shared key, then the
    previous shared keys. A key that is unavailable (disabled, pending deletion) ends the search."""

    def __init__(
        self,
        shared: KeyUnwrapper,
        registry: TenantRegistry,
        unwrapper_for: Callable[[str], KeyUnwrapper],
        previous: Sequence[KeyUnwrapper] = (),
    ) -> None:
        self._shared = shared
        self._registry = registry
        self._unwrapper_for = unwrapper_for
        self._previous = tuple(previous)
        self._by_key: dict[str, KeyUnwrapper] = {}
        self._lock = threading.Lock()

    def _own(self, key_arn: str) -> KeyUnwrapper:
        with self._lock:
            found = self._by_key.get(key_arn)
            if found is None:
                found = self._by_key[key_arn] = self._unwrapper_for(key_arn)
        return found

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        customer_id = context.get(_TENANT_CONTEXT_KEY)
        own = _active(self._registry, customer_id) if customer_id else None
        candidates = ([self._own(own.key_arn)] if own else []) + [self._shared, *self._previous]
        first: Exception | None = None
        for unwrapper in candidates:
            try:
                return unwrapper.unwrap(wrapped, context)
            except KeyUnavailableError:
                raise
            except (IntegrityError, KeyServiceError) as exc:  # not under this key: try the next
                first = first or exc
        assert first is not None  # noqa: S101 - candidates is never empty
        raise first


class _NoRegistry:
    """No registry table configured: every tenant is on the shared key."""

    def get(self, customer_id: str) -> TenantKey | None:
        return None


NO_REGISTRY: TenantRegistry = _NoRegistry()
