"""The stages' key plumbing: what seals and opens data keys, behind tenant routing.

Split from ``wiring`` (the stages' builders use these): the key table and what resolves a
format v3 record's key references, the containers' unwrap caches, the tenant key registry and
its routing, the beacon keys. Imports are local, as in ``wiring``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chalicelib.stages.clients import Clients
from chalicelib.support.config import Settings

if TYPE_CHECKING:
    from chalicelib.envelope.format import DataKeySource, KeyResolver, KeyUnwrapper
    from chalicelib.keys.beacons import BeaconKeys
    from chalicelib.keys.refs import KeyTable
    from chalicelib.keys.tenants import CachedRegistry
    from chalicelib.store.key_table import DynamoDbKeyTable


def key_table(settings: Settings, clients: Clients) -> DynamoDbKeyTable:
    """The key table: wrapped data keys filed by reference (format v3)."""
    from chalicelib.store.dynamodb import DynamoDbTable
    from chalicelib.store.key_table import DynamoDbKeyTable

    return DynamoDbKeyTable(DynamoDbTable(clients.dynamodb(), settings.keys_table_name))


def key_resolver(
    settings: Settings, clients: Clients, fleet: Callable[[KeyResolver], KeyResolver] | None = None
) -> KeyResolver:
    """What opens a v3 record's key references: the container's cache, then the key table and
    KMS Decrypt through tenant routing (the reader puts its fleet buckets, ``fleet``, in between)."""
    from chalicelib.keys.kms import KmsDecryptor
    from chalicelib.keys.refs import KeyTableResolver, reader_resolver

    routed = route_unwrapper(settings, clients, KmsDecryptor(clients.kms(), settings.kms_key_id))
    resolver: KeyResolver = KeyTableResolver(key_table(settings, clients), routed)
    if fleet is not None:
        resolver = fleet(resolver)
    return reader_resolver(
        resolver,
        max_entries=settings.reader_key_cache_max_entries,
        max_age_seconds=settings.reader_key_cache_seconds,
    )


def opening_unwrapper(settings: Settings, clients: Clients) -> KeyUnwrapper:
    """KMS Decrypt behind tenant routing and the container's cache (masked stage, indexer)."""
    from chalicelib.keys.kms import KmsDecryptor, reader_unwrapper

    return reader_unwrapper(
        route_unwrapper(settings, clients, KmsDecryptor(clients.kms(), settings.kms_key_id)),
        max_entries=settings.reader_key_cache_max_entries,
        max_age_seconds=settings.reader_key_cache_seconds,
    )


def beacon_keys(settings: Settings, clients: Clients) -> BeaconKeys:
    """The per-tenant beacon keys under the beacon HMAC key (the reader's search, the indexer)."""
    from chalicelib.keys.beacons import BeaconKeys
    from chalicelib.keys.kms import KmsMacKey

    return BeaconKeys(KmsMacKey(clients.kms(), settings.beacon_key_id), length=settings.beacon_bytes)


# -- per-tenant keys (chalicelib/keys/tenants.py) ---------------------------------------------


def tenant_registry(settings: Settings, clients: Clients) -> CachedRegistry | None:
    """The cached tenant key registry, or None when no registry table is configured."""
    if not settings.tenants_table_name:
        return None
    from chalicelib.keys.tenants import CachedRegistry
    from chalicelib.store.tenants import DynamoDbTenantRegistry

    return CachedRegistry(
        DynamoDbTenantRegistry(clients.dynamodb(), settings.tenants_table_name),
        ttl_seconds=settings.tenant_key_cache_seconds,
    )


def route_data_keys(
    settings: Settings, clients: Clients, shared: DataKeySource, keys: KeyTable | None = None
) -> tuple[DataKeySource, Callable[[str], bool] | None]:
    """(data key source, own-key test for the Sealer): tenants with their own key get
    tenant-scoped data keys wrapped by it, cached no longer than a registry answer."""
    registry = tenant_registry(settings, clients)
    if registry is None:
        return shared, None
    from chalicelib.keys.kms import KmsEncryptor, writer_data_keys
    from chalicelib.keys.tenants import RoutingDataKeys, has_own_key

    def source_for(key_arn: str) -> DataKeySource:
        return writer_data_keys(
            KmsEncryptor(clients.kms(), key_arn),
            max_records=settings.writer_key_cache_max_records,
            max_age_seconds=min(settings.writer_key_cache_seconds, settings.tenant_key_cache_seconds),
            key_table=keys,
        )

    return RoutingDataKeys(shared, registry, source_for), has_own_key(registry)


def route_unwrapper(settings: Settings, clients: Clients, shared: KeyUnwrapper) -> KeyUnwrapper:
    """The tenant's own key first, then ``shared``, then the previous shared keys (a rewrap under way)."""
    registry = tenant_registry(settings, clients)
    if registry is None and not settings.previous_kms_key_ids:
        return shared
    from chalicelib.keys.kms import KmsDecryptor
    from chalicelib.keys.tenants import NO_REGISTRY, RoutingUnwrapper

    return RoutingUnwrapper(
        shared,
        registry or NO_REGISTRY,
        lambda key_arn: KmsDecryptor(clients.kms(), key_arn),
        [KmsDecryptor(clients.kms(), key_id) for key_id in settings.previous_kms_key_ids],
    )
