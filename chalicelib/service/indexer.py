"""The indexer: keeps each person's email beacon in step with the stored email.

Fed by the PII table's DynamoDB stream (KEYS_ONLY) in the ``indexer`` stage, and by the
backfill job's scan, through the same ``Indexer.index_item``. The indexer never sees a whole
item: each changed person is read with a GetItem projecting ``layout.INDEXER_READ_ATTRIBUTES``
(the backfill's Scan projects the same), so the only ciphertext it can obtain is the email's.
It writes the beacon table only (``chalicelib/store/beacons.py``), never the PII table.

- INSERT / MODIFY of a person: read the item's indexer attributes (strongly consistent),
  decrypt the email (reader-side ``Opener``), compute the beacon, store it unless a beacon
  from this or a later version is there (a record delivered twice, a backfill racing the
  stream) or the person was removed since;
- an item gone by the time it is read (deleted since): nothing to do (its REMOVE record
  drops the beacon);
- REMOVE of a person: drop its beacon and leave a tombstone that refuses late writes;
- other item types (secrets): ignored, without a read.

The beacon table's writes feed no stream the indexer reads: it never feeds itself.

A stream record that cannot be processed (the tenant's key shredded or disabled, a refused
call, a record of an unexpected shape, any failure but a transient one) must not hold the
shard: it is skipped, counted (``UNPROCESSABLE``) and logged at ERROR with ``SKIPPED_MESSAGE``
(a metric filter and an alarm count those lines). A transient failure (throttling, a service
unavailable) fails the batch instead: the event source mapping retries it a bounded number
of times, bisecting it, and parks what still fails in its on-failure queue.

Log lines carry counts and ids only.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.domain import validation
from chalicelib.envelope.format import Opener, RecordRef
from chalicelib.keys.beacons import BeaconKeys
from chalicelib.store import layout
from chalicelib.store.beacons import IndexerStore, decode_stream_image
from chalicelib.store.person_item import person_from_item
from chalicelib.store.records import PersonRecord
from chalicelib.support.errors import IntegrityError, PiiVaultError, ServiceUnavailableError, ThrottledError

logger = logging.getLogger(__name__)

PERSON = "person"
EMAIL = layout.INDEXED_FIELD

# Outcomes, counted per batch (and by the backfill job).
WRITTEN = "written"
UNCHANGED = "unchanged"  # a beacon from this or a later version is there (or the person was removed)
REMOVED = "removed"  # a person's REMOVE: its beacon dropped
SKIPPED = "skipped"  # not a person, gone, or without an email
MALFORMED = "malformed"
UNPROCESSABLE = "unprocessable"  # a record that cannot be processed: skipped, counted, alarmed
# The ERROR line of each skipped record (a metric filter counts it; infra/observability.py).
SKIPPED_MESSAGE = "indexer: stream record skipped"
# What retrying the batch can cure: these fail it (the mapping retries, bisecting; bounded).
TRANSIENT = (ThrottledError, ServiceUnavailableError)


@dataclass(frozen=True)
class StreamChange:
    """One stream record (KEYS_ONLY): the event and the item's key, in boto3's item shape."""

    event: str  # INSERT | MODIFY | REMOVE
    keys: dict[str, Any]

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> StreamChange:
        """A record from ``GetRecords`` (boto3) or a Lambda event (base64 binaries)."""
        data = record.get("dynamodb", {})
        return cls(event=str(record.get("eventName", "")), keys=decode_stream_image(data.get("Keys") or {}))


class Indexer:
    def __init__(self, opener: Opener, keys: BeaconKeys, beacons: IndexerStore) -> None:
        self._opener = opener
        self._keys = keys
        self._beacons = beacons

    def beacon_for(self, record: PersonRecord, opener: Opener | None = None) -> bytes | None:
        """The beacon the record's email should carry (None if the record has no email)."""
        ref = RecordRef(record.customer_id, PERSON, record.person_id)
        opened = (opener or self._opener).open(ref, record.fields, record.slots, (EMAIL,), refs=record.refs)
        if EMAIL not in opened:
            return None
        email = validation.decode_field(EMAIL, opened[EMAIL])
        return self._keys.stored_beacon(record.customer_id, email)

    def dry_run(self) -> Indexer:
        """The same indexer, writing nothing: ``written`` then counts beacons it would write."""
        return Indexer(self._opener, self._keys, _NoWrites(self._beacons))

    def for_batch(self) -> Opener:
        """An opener that unwraps each distinct data key once per batch."""
        return self._opener.for_request()

    def index_item(self, item: Mapping[str, Any], opener: Opener | None = None) -> str:
        """Bring one stored person item's beacon up to date (stream and backfill)."""
        record = _person(item)
        if record is None:
            return SKIPPED
        try:
            beacon = self.beacon_for(record, opener)
        except IntegrityError:
            # A tampered item must not block the stream shard forever: count it, log ids.
            logger.warning(
                "indexer: person %s of %s does not open; beacon left as is", record.person_id, record.customer_id
            )
            return MALFORMED
        if beacon is None:
            return SKIPPED
        written = self._beacons.set_beacon(record.customer_id, record.person_id, record.version, beacon)
        return WRITTEN if written else UNCHANGED

    def handle(self, change: StreamChange, opener: Opener | None = None) -> str:
        ids = _person_ids(change.keys)
        if ids is None or change.event not in ("INSERT", "MODIFY", "REMOVE"):
            return SKIPPED
        if change.event == "REMOVE":
            self._beacons.forget(*ids)
            return REMOVED
        # The item as it is now, not as the record saw it: a stale record indexes the
        # current email (and set_beacon's condition still refuses to go backwards).
        item = self._beacons.indexed_item(*ids)
        if item is None:
            return SKIPPED  # deleted since: its REMOVE record drops the beacon
        return self.index_item(item, opener)

    def handle_records(self, records: Iterable[Mapping[str, Any]]) -> Counter[str]:
        """One stream batch. A transient failure propagates (the batch is retried: every step is
        idempotent); a record that cannot be processed otherwise is skipped, counted and logged."""
        counts: Counter[str] = Counter()
        opener = self.for_batch()
        for record in records:
            try:
                counts[self.handle(StreamChange.from_record(record), opener)] += 1
            except TRANSIENT:
                raise
            except Exception as exc:  # noqa: BLE001 - one record must never hold the shard
                counts[UNPROCESSABLE] += 1
                code = exc.code if isinstance(exc, PiiVaultError) else type(exc).__name__
                logger.error("%s (%s): %s", SKIPPED_MESSAGE, code, _record_ids(record))
        logger.info("indexer batch: %s", dict(sorted(counts.items())))
        return counts


class _NoWrites:
    def __init__(self, beacons: IndexerStore) -> None:
        self._beacons = beacons

    def set_beacon(self, customer_id: str, person_id: str, version: int, beacon: bytes) -> bool:
        return True

    def forget(self, customer_id: str, person_id: str) -> None:
        return None

    def indexed_item(self, customer_id: str, person_id: str) -> dict[str, Any] | None:
        return self._beacons.indexed_item(customer_id, person_id)


def _record_ids(record: Mapping[str, Any]) -> str:
    """A stream record's ids for a log line: the event id, the tenant and person (never a value)."""
    try:
        ids = _person_ids(StreamChange.from_record(record).keys)
    except Exception:  # noqa: BLE001 - a record of any shape gets a log line
        ids = None
    event = str(record.get("eventID", "?"))[:64] if isinstance(record, Mapping) else "?"
    return f"event {event}" + (f", person {ids[1]} of {ids[0]}" if ids else "")


def _person_ids(key: Mapping[str, Any]) -> tuple[str, str] | None:
    """(customer id, person id) of an item key, or None for anything that is not a person's."""
    try:
        customer_id = layout.customer_of(key[layout.PK]["S"])
        person_id = layout.person_id_of(key[layout.SK]["S"])
    except (KeyError, TypeError):
        return None
    if customer_id is None or person_id is None:
        return None
    return customer_id, person_id


def _person(item: Mapping[str, Any]) -> PersonRecord | None:
    """The person record of an item, or None for anything that is not a person."""
    ids = _person_ids(item)
    if ids is None:
        return None
    customer_id, person_id = ids
    try:
        return person_from_item(customer_id, item)
    except IntegrityError:
        logger.warning("indexer: person %s of %s is malformed", person_id, customer_id)
        return None
