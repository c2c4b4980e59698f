"""How each stage is wired: typed builders of its services and its registration on an app.

One ``register_<stage>`` per registry entry (``registry.Stage.register`` names it). Every
builder receives the stage's ``Settings`` (holding only what the stage declares) and the
container's ``Clients``; each AWS client is made once per container, on first use, and
shared by every part of the stage. Imports are local so that a stage loads only what it
serves (the cold start of the writer never imports the reader's code).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalice import Chalice

from chalicelib.stages.clients import AwsClient, Clients, Lazy
from chalicelib.stages.keys_wiring import (
    beacon_keys,
    key_resolver,
    key_table,
    opening_unwrapper,
    route_data_keys,
    route_unwrapper,
)
from chalicelib.support.config import Settings

__all__ = ["AwsClient", "Clients", "Lazy", "Wiring"]  # the clients re-exported (their home is `clients`)

if TYPE_CHECKING:
    from chalicelib.envelope.format import KeyResolver, KeyUnwrapper
    from chalicelib.service import MaskedService, ReaderService, WriterService
    from chalicelib.service.indexer import Indexer
    from chalicelib.service.offboard import Offboarding
    from chalicelib.service.rewrap import RewrapParts
    from chalicelib.store import DynamoDbStore
    from chalicelib.store.checkpoints import Checkpoints
    from chalicelib.store.job_items import DynamoDbIndexedScan
    from chalicelib.store.ledger import DynamoDbErasures
    from chalicelib.support.idempotency import IdempotentWrites


@dataclass(frozen=True)
class Wiring:
    """What a stage's registration needs besides its app."""

    settings: Settings
    clients: Clients
    clock: Callable[[], _dt.datetime] | None = None
    masked_view: bool = True  # False only for the benchmark's comparison (a writer without masked projections)


# -- API stages -------------------------------------------------------------------------------


def register_writer(app: Chalice, wiring: Wiring) -> None:
    from chalicelib.api.writer import writer_blueprint

    service, idempotency = Lazy(lambda: build_writer(wiring)), Lazy(lambda: build_idempotency(wiring))
    app.register_blueprint(writer_blueprint(service, idempotency))


def register_reader(app: Chalice, wiring: Wiring) -> None:
    from chalicelib.api.reader import reader_blueprint

    app.register_blueprint(reader_blueprint(Lazy(lambda: build_reader(wiring))))


def register_masked(app: Chalice, wiring: Wiring) -> None:
    from chalicelib.api.masked import masked_blueprint

    app.register_blueprint(masked_blueprint(Lazy(lambda: build_masked(wiring))))


# -- job stages -------------------------------------------------------------------------------


def register_indexer(app: Chalice, wiring: Wiring) -> None:
    from chalicelib.api.functions import register_indexer as register

    settings, clients = wiring.settings, wiring.clients
    indexer = Lazy(lambda: build_indexer(settings, clients))
    from chalicelib.stages.registry import STREAM_DELIVERY

    people = Lazy(lambda: build_indexed_scan(settings, clients))
    register(app, settings, indexer, people, checkpoints_for(wiring), batch_size=STREAM_DELIVERY.batch_size)


def register_offboard(app: Chalice, wiring: Wiring) -> None:
    from chalicelib.api.functions import register_offboard as register

    register(app, Lazy(lambda: build_offboarding(wiring.settings, wiring.clients)), checkpoints_for(wiring))


def register_rewrap(app: Chalice, wiring: Wiring) -> None:
    from chalicelib.api.functions import register_rewrap as register

    register(
        app, wiring.settings, Lazy(lambda: build_rewrap_parts(wiring.settings, wiring.clients)), checkpoints_for(wiring)
    )


# -- builders ---------------------------------------------------------------------------------


def person_store(settings: Settings, clients: Clients) -> DynamoDbStore:
    from chalicelib.store import DynamoDbStore
    from chalicelib.store.dynamodb import DynamoDbTable

    return DynamoDbStore(DynamoDbTable(clients.dynamodb(), settings.table_name))


def build_writer(wiring: Wiring) -> WriterService:
    from chalicelib.envelope.format import MASKED_VIEW, Sealer
    from chalicelib.keys.kms import KmsEncryptor, writer_data_keys
    from chalicelib.service import WriterService, utc_now

    settings, clients = wiring.settings, wiring.clients
    keys = key_table(settings, clients)
    shared = writer_data_keys(
        KmsEncryptor(clients.kms(), settings.kms_key_id),
        max_records=settings.writer_key_cache_max_records,
        max_age_seconds=settings.writer_key_cache_seconds,
        key_table=keys,
    )
    data_keys, own_key = route_data_keys(settings, clients, shared, keys)
    sealer = Sealer(data_keys, settings.app_name, scope=settings.key_scope, own_key=own_key)
    # The masked view's projections: a second data key (context view=masked) from the same cache.
    masked_sealer = (
        Sealer(data_keys, settings.app_name, scope=settings.key_scope, view=MASKED_VIEW, own_key=own_key)
        if wiring.masked_view
        else None
    )
    return WriterService(
        person_store(settings, clients),
        sealer,
        clock=wiring.clock or utc_now,
        erasures=build_erasures(settings, clients),
        masked_sealer=masked_sealer,
    )


def build_idempotency(wiring: Wiring) -> IdempotentWrites:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from chalicelib.support.config import APP_NAME
    from chalicelib.support.idempotency import IdempotentWrites

    settings = wiring.settings
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.idempotency_table_name,
        boto3_client=wiring.clients.dynamodb(),
    )
    return IdempotentWrites(persistence, ttl_seconds=settings.idempotency_ttl_seconds, key_prefix=f"{APP_NAME}-writer")


def build_reader(wiring: Wiring) -> ReaderService:
    """The reader: KMS Decrypt behind tenant routing; pool keys shared through the fleet table
    (format v3 keys by day, ``keys.fleet_buckets``; keys of earlier items one by one,
    ``keys.fleet``), each container's cache in front."""
    from chalicelib.envelope.format import Opener
    from chalicelib.keys.kms import KmsDecryptor, reader_unwrapper
    from chalicelib.service import ReaderService
    from chalicelib.store.beacons import DynamoDbBeacons

    settings, clients = wiring.settings, wiring.clients
    backing: KeyUnwrapper = KmsDecryptor(clients.kms(), settings.kms_key_id)
    fleet: Any = None
    if settings.fleet_mac_key_id and settings.fleet_key_lifetime_seconds:
        from chalicelib.keys.fleet import FleetKeyTable, FleetSealingKeys
        from chalicelib.keys.fleet_buckets import FleetBuckets
        from chalicelib.keys.kms import KmsMacKey
        from chalicelib.store.dynamodb import DynamoDbTable
        from chalicelib.store.fleet_table import DynamoDbBucketTable, DynamoDbFleetTable

        table = DynamoDbTable(clients.dynamodb(), settings.fleet_table_name)
        sealing = FleetSealingKeys(KmsMacKey(clients.kms(), settings.fleet_mac_key_id))
        lifetime = settings.fleet_key_lifetime_seconds
        backing = FleetKeyTable(backing, DynamoDbFleetTable(table), sealing, lifetime_seconds=lifetime)

        def fleet(resolver: KeyResolver) -> KeyResolver:
            return FleetBuckets(resolver, DynamoDbBucketTable(table), sealing, lifetime_seconds=lifetime)

    unwrapper = reader_unwrapper(
        route_unwrapper(settings, clients, backing),
        max_entries=settings.reader_key_cache_max_entries,
        max_age_seconds=settings.reader_key_cache_seconds,
    )
    return ReaderService(
        person_store(settings, clients),
        Opener(unwrapper, settings.app_name, resolver=key_resolver(settings, clients, fleet)),
        beacon_keys=beacon_keys(settings, clients),
        beacons=DynamoDbBeacons(clients.dynamodb(), settings.beacons_table_name),
    )


def build_masked(wiring: Wiring) -> MaskedService:
    """The masked stage: masked projections only, through its own in-container key cache.

    No fleet key table: the reader's fleet table holds full-view data keys sealed under a
    reader-only key, and a masked-view table would need a second HMAC key and table for a
    low-traffic support tool; each masked container asks KMS once per data key it meets.
    """
    from chalicelib.envelope.format import MASKED_KINDS, Opener
    from chalicelib.service import MaskedService
    from chalicelib.store import DynamoDbMaskedPeople
    from chalicelib.store.dynamodb import DynamoDbTable

    settings, clients = wiring.settings, wiring.clients
    people = DynamoDbMaskedPeople(DynamoDbTable(clients.dynamodb(), settings.table_name))
    opener = Opener(
        opening_unwrapper(settings, clients),
        settings.app_name,
        kinds=MASKED_KINDS,
        resolver=key_resolver(settings, clients),
    )
    return MaskedService(people, opener)


def build_indexer(settings: Settings, clients: Clients) -> Indexer:
    """The indexer (stream handler, backfill job, the local stack's stream poller)."""
    from chalicelib.envelope.format import Opener
    from chalicelib.service.indexer import Indexer
    from chalicelib.store.beacons import DynamoDbIndexerStore

    store = DynamoDbIndexerStore(clients.dynamodb(), settings.table_name, settings.beacons_table_name)
    opener = Opener(opening_unwrapper(settings, clients), settings.app_name, resolver=key_resolver(settings, clients))
    return Indexer(opener, beacon_keys(settings, clients), store)


def build_erasures(settings: Settings, clients: Clients) -> DynamoDbErasures:
    """The writer's erasure ledger and idempotency references."""
    from chalicelib.store.ledger import DynamoDbErasures

    return DynamoDbErasures(
        clients.dynamodb(),
        table=settings.table_name,
        ledger_table=settings.ledger_table_name,
        idempotency_table=settings.idempotency_table_name,
    )


# -- the jobs (chalicelib/service/jobs.py, offboard.py, replay.py, rewrap.py) ------------------


def build_checkpoints(settings: Settings, clients: Clients, *, dry_run: bool) -> Checkpoints:
    """The jobs table's checkpoints; a dry run keeps its own in memory (it writes nothing)."""
    from chalicelib.store.checkpoints import DynamoDbCheckpoints, MemoryCheckpoints

    return MemoryCheckpoints() if dry_run else DynamoDbCheckpoints(clients.dynamodb(), settings.jobs_table_name)


def checkpoints_for(wiring: Wiring) -> Callable[[bool], Checkpoints]:
    return lambda dry_run: build_checkpoints(wiring.settings, wiring.clients, dry_run=dry_run)


def build_indexed_scan(settings: Settings, clients: Clients) -> DynamoDbIndexedScan:
    from chalicelib.store.job_items import DynamoDbIndexedScan

    return DynamoDbIndexedScan(clients.dynamodb(), settings.table_name)


def build_offboarding(settings: Settings, clients: Clients, now: Callable[[], str] | None = None) -> Offboarding:
    from chalicelib.service.common import timestamp, utc_now
    from chalicelib.service.offboard import Offboarding
    from chalicelib.store.job_items import DynamoDbTenantItems
    from chalicelib.store.ledger import DynamoDbLedger
    from chalicelib.store.references import DynamoDbReferences

    ddb = clients.dynamodb()
    return Offboarding(
        DynamoDbTenantItems(ddb, settings.table_name),
        DynamoDbReferences(ddb, settings.idempotency_table_name),
        DynamoDbLedger(ddb, settings.ledger_table_name),
        now or (lambda: timestamp(utc_now())),
    )


def build_rewrap_parts(settings: Settings, clients: Clients) -> RewrapParts:
    """The rewrap's items, its ReEncrypt capability (source, target) -> ReEncryptor, the key table."""
    from chalicelib.keys.reencrypt import KmsReEncryptor
    from chalicelib.store.job_items import DynamoDbSlotItems
    from chalicelib.store.key_table import DynamoDbKeyEntries

    kms, ddb = clients.kms(), clients.dynamodb()
    keys = DynamoDbKeyEntries(ddb, settings.keys_table_name)
    return DynamoDbSlotItems(ddb, settings.table_name), lambda s, t: KmsReEncryptor(kms, s, t), keys
