"""Builds the Chalice app for one role: the writer's, the reader's or the masked stage's routes, never two.

AWS clients are created lazily, on the first request, so importing ``app.py`` (as
``chalice package`` does) needs no region or credentials and a cold start pays for
boto3 only when it serves traffic. Tests inject clients, a clock, or a whole service.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from chalice import Chalice

from chalicelib.api.callers import AllowList, caller_gate
from chalicelib.api.http import audit_refusals, finish_response
from chalicelib.audit import AuditLog
from chalicelib.config import APP_NAME, Settings
from chalicelib.errors import ConfigurationError

if TYPE_CHECKING:
    from chalicelib.idempotency import IdempotentWrites

T = TypeVar("T")

# Explicit timeouts, and botocore's standard retries (jittered backoff, retry quotas):
# one call's worst case, 3 x (1 + 3) s, stays under the 15 s Lambda timeout, so the
# function answers 503 itself instead of being killed mid-request.
_CONNECT_TIMEOUT_S = 1
_READ_TIMEOUT_S = 3
_MAX_ATTEMPTS = 3


def _lazy(factory: Callable[[], T]) -> Callable[[], T]:
    """Build once, on first use (first request), then reuse across warm invocations.

    Once even under a concurrent first burst: ``chalice local`` serves each connection on
    its own thread, and without the lock each would build its own service (its own key
    caches, clients, registry cache). A factory that fails builds nothing; the next call tries again.
    """
    built: list[T] = []
    lock = threading.Lock()

    def get() -> T:
        if not built:
            with lock:
                if not built:
                    built.append(factory())
        return built[0]

    return get


def _client(service_name: str, settings: Settings) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=_CONNECT_TIMEOUT_S,
        read_timeout=_READ_TIMEOUT_S,
        retries={"mode": "standard", "total_max_attempts": _MAX_ATTEMPTS},
    )
    return boto3.session.Session().client(service_name, region_name=settings.region, config=config)


def create_app(
    role: str | None = None,
    *,
    settings: Settings | None = None,
    kms_client: Any = None,
    dynamodb_client: Any = None,
    clock: Callable[[], _dt.datetime] | None = None,
    masked_view: bool = True,
) -> Chalice:
    """The Chalice app of one stage. ``role`` overrides ``settings.role``.

    ``masked_view=False`` (the benchmark's comparison only) builds a writer that seals no
    masked projections (and so removes those of the records it writes)."""
    if settings is None:
        settings = Settings.from_env(role=role)
    elif role is not None and role != settings.role:
        raise ConfigurationError("role and settings.role disagree")

    app = Chalice(app_name=APP_NAME)
    app.log.setLevel(logging.INFO)
    logging.getLogger("chalicelib").setLevel(logging.INFO)
    app.register_middleware(finish_response, "http")
    # Outer to inner: the caller check answers before any view (so before any AWS call).
    audit = AuditLog()
    app.register_middleware(caller_gate(AllowList(settings.allowed_callers), audit, settings.local_caller), "http")
    app.register_middleware(audit_refusals(audit), "http")

    from chalicelib.store import DynamoDbStore
    from chalicelib.store.dynamodb import DynamoDbTable

    # One client per service and container, made on first use and shared by every part.
    ddb: Callable[[], Any] = _lazy(lambda: dynamodb_client or _client("dynamodb", settings))
    kms: Callable[[], Any] = _lazy(lambda: kms_client or _client("kms", settings))

    def store() -> DynamoDbStore:
        return DynamoDbStore(DynamoDbTable(ddb(), settings.table_name))

    if settings.role == "writer":
        from chalicelib.api.writer import writer_blueprint
        from chalicelib.crypto import MASKED_VIEW, Sealer
        from chalicelib.keys import KmsEncryptor, writer_data_keys
        from chalicelib.service import WriterService, utc_now

        def writer() -> WriterService:
            data_keys = writer_data_keys(
                KmsEncryptor(kms(), settings.kms_key_id),
                max_records=settings.writer_key_cache_max_records,
                max_age_seconds=settings.writer_key_cache_seconds,
            )
            data_keys, own_key = route_data_keys(settings, kms(), ddb(), data_keys)
            sealer = Sealer(data_keys, settings.app_name, scope=settings.key_scope, own_key=own_key)
            # The masked view's projections: a second data key (context view=masked) from the same cache.
            masked_sealer = (
                Sealer(data_keys, settings.app_name, scope=settings.key_scope, view=MASKED_VIEW, own_key=own_key)
                if masked_view
                else None
            )
            return WriterService(
                store(),
                sealer,
                clock=clock or utc_now,
                erasures=erasures(settings, ddb()),
                masked_sealer=masked_sealer,
            )

        def idempotency() -> IdempotentWrites:
            from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

            from chalicelib.idempotency import IdempotentWrites

            store = DynamoDBPersistenceLayer(
                table_name=settings.idempotency_table_name,
                boto3_client=ddb(),
            )
            return IdempotentWrites(
                store, ttl_seconds=settings.idempotency_ttl_seconds, key_prefix=f"{APP_NAME}-writer"
            )

        app.register_blueprint(writer_blueprint(_lazy(writer), _lazy(idempotency)))
    elif settings.role == "reader":
        from chalicelib.api.reader import reader_blueprint
        from chalicelib.crypto import KeyUnwrapper, Opener
        from chalicelib.keys import KmsDecryptor, reader_unwrapper
        from chalicelib.service import ReaderService

        def reader() -> ReaderService:
            backing: KeyUnwrapper = KmsDecryptor(kms(), settings.kms_key_id)
            if settings.fleet_mac_key_id and settings.fleet_key_lifetime_seconds:
                from chalicelib.fleet import FleetKeyTable, FleetSealingKeys
                from chalicelib.keys import KmsMacKey
                from chalicelib.store.fleet_table import DynamoDbFleetTable

                fleet_table = DynamoDbFleetTable(DynamoDbTable(ddb(), settings.fleet_table_name))
                sealing = FleetSealingKeys(KmsMacKey(kms(), settings.fleet_mac_key_id))
                backing = FleetKeyTable(
                    backing, fleet_table, sealing, lifetime_seconds=settings.fleet_key_lifetime_seconds
                )
            unwrapper = reader_unwrapper(
                route_unwrapper(settings, kms(), ddb(), backing),
                max_entries=settings.reader_key_cache_max_entries,
                max_age_seconds=settings.reader_key_cache_seconds,
            )
            beacon_keys, beacons = beacon_parts(settings, kms(), ddb())
            return ReaderService(
                store(), Opener(unwrapper, settings.app_name), beacon_keys=beacon_keys, beacons=beacons
            )

        app.register_blueprint(reader_blueprint(_lazy(reader)))
    elif settings.role == "masked":
        app.register_blueprint(masked_blueprint_for(settings, kms, ddb))
    elif settings.role == "indexer":
        from chalicelib.api.jobs import register_indexer

        register_indexer(app, settings, _lazy(lambda: build_indexer(settings, kms(), ddb())), ddb)
    elif settings.role == "offboard":
        from chalicelib.api.jobs import register_offboard

        register_offboard(app, settings, ddb)
    elif settings.role == "rewrap":
        from chalicelib.api.jobs import register_rewrap

        register_rewrap(app, settings, kms, ddb)
    return app


def masked_blueprint_for(settings: Settings, kms: Callable[[], Any], ddb: Callable[[], Any]) -> Any:
    """The masked stage: masked projections only, through its own in-container key cache.

    No fleet key table: the reader's fleet table holds full-view data keys sealed under a
    reader-only key, and a masked-view table would need a second HMAC key and table for a
    low-traffic support tool; each masked container asks KMS once per data key it meets.
    """
    from chalicelib.api.masked import masked_blueprint
    from chalicelib.crypto import MASKED_KINDS, Opener
    from chalicelib.keys import KmsDecryptor, reader_unwrapper
    from chalicelib.service import MaskedService
    from chalicelib.store import DynamoDbMaskedPeople
    from chalicelib.store.dynamodb import DynamoDbTable

    def masked() -> MaskedService:
        unwrapper = reader_unwrapper(
            route_unwrapper(settings, kms(), ddb(), KmsDecryptor(kms(), settings.kms_key_id)),
            max_entries=settings.reader_key_cache_max_entries,
            max_age_seconds=settings.reader_key_cache_seconds,
        )
        people = DynamoDbMaskedPeople(DynamoDbTable(ddb(), settings.table_name))
        return MaskedService(people, Opener(unwrapper, settings.app_name, kinds=MASKED_KINDS))

    return masked_blueprint(_lazy(masked))


def erasures(settings: Settings, dynamodb: Any) -> Any:
    """The writer's erasure ledger and idempotency references."""
    from chalicelib.store.ledger import DynamoDbErasures

    return DynamoDbErasures(
        dynamodb,
        table=settings.table_name,
        ledger_table=settings.ledger_table_name,
        idempotency_table=settings.idempotency_table_name,
    )


def beacon_parts(settings: Settings, kms: Any, dynamodb: Any) -> tuple[Any, Any]:
    """(BeaconKeys, BeaconIndex): the reader's search and the indexer's writes share them."""
    from chalicelib.beacons import BeaconKeys
    from chalicelib.keys import KmsMacKey
    from chalicelib.store.beacons import DynamoDbBeacons

    keys = BeaconKeys(KmsMacKey(kms, settings.beacon_key_id), length=settings.beacon_bytes)
    return keys, DynamoDbBeacons(dynamodb, settings.table_name)


def build_indexer(settings: Settings, kms: Any, dynamodb: Any) -> Any:
    """The indexer (stream handler, backfill job, the local stack's stream poller)."""
    from chalicelib.crypto import Opener
    from chalicelib.indexer import Indexer
    from chalicelib.keys import KmsDecryptor, reader_unwrapper

    unwrapper = reader_unwrapper(
        route_unwrapper(settings, kms, dynamodb, KmsDecryptor(kms, settings.kms_key_id)),
        max_entries=settings.reader_key_cache_max_entries,
        max_age_seconds=settings.reader_key_cache_seconds,
    )
    keys, index = beacon_parts(settings, kms, dynamodb)
    return Indexer(Opener(unwrapper, settings.app_name), keys, index)


# -- per-tenant keys (chalicelib/tenant_keys.py) ------------------------------------------


def tenant_registry(settings: Settings, dynamodb: Any) -> Any:
    """The cached tenant key registry, or None when no registry table is configured."""
    if not settings.tenants_table_name:
        return None
    from chalicelib.store.tenants import DynamoDbTenantRegistry
    from chalicelib.tenant_keys import CachedRegistry

    return CachedRegistry(
        DynamoDbTenantRegistry(dynamodb, settings.tenants_table_name), ttl_seconds=settings.tenant_key_cache_seconds
    )


def route_data_keys(settings: Settings, kms: Any, dynamodb: Any, shared: Any) -> tuple[Any, Any]:
    """(data key source, own-key test for the Sealer): tenants with their own key get
    tenant-scoped data keys wrapped by it, cached no longer than a registry answer."""
    registry = tenant_registry(settings, dynamodb)
    if registry is None:
        return shared, None
    from chalicelib.keys import KmsEncryptor, writer_data_keys
    from chalicelib.tenant_keys import RoutingDataKeys, has_own_key

    def source_for(key_arn: str) -> Any:
        return writer_data_keys(
            KmsEncryptor(kms, key_arn),
            max_records=settings.writer_key_cache_max_records,
            max_age_seconds=min(settings.writer_key_cache_seconds, settings.tenant_key_cache_seconds),
        )

    return RoutingDataKeys(shared, registry, source_for), has_own_key(registry)


def route_unwrapper(settings: Settings, kms: Any, dynamodb: Any, shared: Any) -> Any:
    """The tenant's own key first, then ``shared``, then the previous shared keys (a rewrap under way)."""
    registry = tenant_registry(settings, dynamodb)
    if registry is None and not settings.previous_kms_key_ids:
        return shared
    from chalicelib.keys import KmsDecryptor
    from chalicelib.tenant_keys import RoutingUnwrapper

    class _NoRegistry:
        def get(self, customer_id: str) -> None:
            return None

    return RoutingUnwrapper(
        shared,
        registry or _NoRegistry(),
        lambda key_arn: KmsDecryptor(kms, key_arn),
        [KmsDecryptor(kms, key_id) for key_id in settings.previous_kms_key_ids],
    )
