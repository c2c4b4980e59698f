"""The production adapter: the one place that builds and calls production key objects (re-point it after refactors)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from bench.workload.fakes import FakeFleetTable, FakeKeyTable, FakeKmsClient, SimClock
from chalicelib.envelope.format import (
    KIND_POOL,
    MASKED_VIEW,
    DataKeySource,
    Envelope,
    KeyResolver,
    Opener,
    RecordRef,
    SealedFields,
    Sealer,
    encryption_context,
)
from chalicelib.keys.fleet import FleetSealingKeys
from chalicelib.keys.fleet_buckets import FleetBuckets
from chalicelib.keys.kms import (
    DEFAULT_MAX_CONTEXTS,
    CachingDataKeys,
    FreshDataKeys,
    KmsDecryptor,
    KmsEncryptor,
    KmsMacKey,
)
from chalicelib.keys.refs import CachingResolver, KeyTableResolver, PublishedDataKeys
from chalicelib.support.config import Settings

FIELD = "name"
PLAINTEXT = b"x"
# The fleet key table reads wall-clock time (positive, epochs of one day): it sees the simulated
# clock plus this base, a whole number of days, so simulated time 0 starts a fleet epoch.
FLEET_CLOCK_BASE_S = 20_000 * 86_400


class Production:
    """The one place that builds and calls production objects (re-point it after refactors).

    Built as ``chalicelib/api/__init__.py`` builds them, at the bounds of ``Settings``
    (config defaults unless overridden), with the simulated clock and counting fakes injected.
    A design pins the settings that define it (``Design.pins``); explicit overrides given
    here win over the pins (tests turn caches off or shrink bounds that way).
    """

    def __init__(self, **bounds: Any) -> None:
        """``bounds``: ``Settings`` fields to override (e.g. ``writer_key_cache_seconds=0``)."""
        self.overrides: dict[str, Any] = dict(bounds)
        self.writer_settings = replace(Settings(role="writer"), **self.overrides)
        self.reader_settings = replace(Settings(role="reader"), **self.overrides)
        # The key table (format v3): writers file every data key they make, readers fetch them on a miss.
        self.key_table = FakeKeyTable()

    def pinned(self, **pins: Any) -> Production:
        """These settings, with ``pins`` under the explicit overrides."""
        return Production(**{**pins, **self.overrides})

    def sealer(self, kms: FakeKmsClient, clock: SimClock, random_bytes: Callable[[int], bytes]) -> Sealer:
        """As ``keys.writer_data_keys`` (which takes no clock or random source): cached unless a bound is 0."""
        return self.sealers(kms, clock, random_bytes)[0]

    def sealers(
        self, kms: FakeKmsClient, clock: SimClock, random_bytes: Callable[[int], bytes]
    ) -> tuple[Sealer, Sealer]:
        """The writer's two sealers over ONE data key source, as the writer stage wires them:
        the full view's and the masked view's (a second cached key per container and period)."""
        settings = self.writer_settings
        data_keys: DataKeySource = PublishedDataKeys(
            FreshDataKeys(KmsEncryptor(kms, settings.kms_key_id), random_bytes),
            self.key_table,
            clock=lambda: clock() + FLEET_CLOCK_BASE_S,
        )
        if settings.writer_key_cache_max_records > 0 and settings.writer_key_cache_seconds > 0:
            data_keys = CachingDataKeys(
                data_keys,
                max_records=settings.writer_key_cache_max_records,
                max_age_seconds=settings.writer_key_cache_seconds,
                clock=clock,
            )
        return (
            Sealer(data_keys, settings.app_name, scope=settings.key_scope),
            Sealer(data_keys, settings.app_name, scope=settings.key_scope, view=MASKED_VIEW),
        )

    def fleet_enabled(self) -> bool:
        """As the reader stage decides: a fleet MAC key and a non-zero entry lifetime."""
        return bool(self.reader_settings.fleet_mac_key_id and self.reader_settings.fleet_key_lifetime_seconds)

    def resolver(self, kms: FakeKmsClient, clock: Callable[[], float], fleet: Fleet | None = None) -> KeyResolver:
        """As the reader stage wires it: the key table and KMS Decrypt, behind the fleet's day
        buckets (sealing keys derived by GenerateMac on ``kms``) when the settings turn the
        fleet on and ``fleet`` is given."""
        settings = self.reader_settings
        backing: KeyResolver = KeyTableResolver(self.key_table, KmsDecryptor(kms, settings.kms_key_id))
        if fleet is None or not self.fleet_enabled():
            return backing
        return FleetBuckets(
            backing,
            fleet.table,
            FleetSealingKeys(KmsMacKey(kms, settings.fleet_mac_key_id)),
            lifetime_seconds=settings.fleet_key_lifetime_seconds,
            clock=lambda: clock() + FLEET_CLOCK_BASE_S,
            random_bytes=fleet.nonces,
        )

    def opener(self, kms: FakeKmsClient, clock: SimClock, fleet: Fleet | None = None) -> Opener:
        """As ``keys.refs.reader_resolver`` (which takes no clock): cached unless a bound is 0; in
        front of the shared fleet table when the settings turn it on and ``fleet`` is given."""
        settings = self.reader_settings
        resolver = self.resolver(kms, clock, fleet)
        if settings.reader_key_cache_max_entries > 0 and settings.reader_key_cache_seconds > 0:
            resolver = CachingResolver(
                resolver,
                max_entries=settings.reader_key_cache_max_entries,
                max_age_seconds=settings.reader_key_cache_seconds,
                clock=clock,
            )
        return Opener(KmsDecryptor(kms, settings.kms_key_id), settings.app_name, resolver=resolver)

    @staticmethod
    def envelope(sealer: Sealer, tenant: str) -> Envelope:
        """What the writer does per record to get its data key (cache or one Encrypt)."""
        return sealer.envelope(tenant)

    @staticmethod
    def seal(envelope: Envelope, tenant: str, record_id: str) -> SealedFields:
        return envelope.seal(RecordRef(tenant, "person", record_id), {FIELD: PLAINTEXT})

    @staticmethod
    def open(opener: Opener, tenant: str, record_id: str, sealed: SealedFields) -> bytes:
        ref = RecordRef(tenant, "person", record_id)
        return opener.for_request().open(ref, sealed.blobs, {}, (FIELD,), refs=sealed.refs())[FIELD]

    def writer_key_age_s(self) -> float:
        return float(self.writer_settings.writer_key_cache_seconds)

    def writer_max_contexts(self) -> int:
        return DEFAULT_MAX_CONTEXTS

    def writer_max_records(self) -> int:
        return self.writer_settings.writer_key_cache_max_records

    def fleet_lifetime_s(self) -> float:
        return float(self.reader_settings.fleet_key_lifetime_seconds)

    def pool_context(self) -> dict[str, str]:
        """The KMS encryption context of pool data keys (no tenant in it)."""
        return encryption_context(self.reader_settings.app_name, "", KIND_POOL)


@dataclass
class Fleet:
    """What reader containers of one simulation share: the fleet key table (and its nonce source)."""

    table: FakeFleetTable
    nonces: Callable[[int], bytes]
