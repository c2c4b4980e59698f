"""The indexer: keeps each person's email beacon in step with the stored email.

Fed by the PII table's DynamoDB stream (NEW_AND_OLD_IMAGES) in the ``indexer`` stage,
and by the backfill job's scan, through the same ``Indexer.index``:

- INSERT / MODIFY of a person: decrypt the email (reader-side ``Opener``), compute the
  beacon, store it if it differs, conditional on no beacon from a later version being
  there (``beacon_version``) and on the item still existing;
- a MODIFY that leaves ``version`` unchanged is a beacon write (ours or the backfill's):
  ignored, so the indexer never feeds itself;
- a MODIFY whose email ciphertext did not change (a PATCH of other fields) keeps the
  beacon already there without decrypting anything;
- REMOVE: nothing to do (the beacon and its GSI entry went with the item);
- other item types (secrets): ignored.

Log lines carry counts and ids only.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib import models
from chalicelib.beacons import BeaconKeys
from chalicelib.crypto import Opener, RecordRef
from chalicelib.errors import IntegrityError
from chalicelib.store import layout
from chalicelib.store.beacons import BeaconIndex, beacon_of, beacon_version_of, decode_stream_image
from chalicelib.store.records import PersonRecord

logger = logging.getLogger(__name__)

PERSON = "person"
EMAIL = "email"

# Outcomes, counted per batch (and by the backfill job).
WRITTEN = "written"
UNCHANGED = "unchanged"
STALE = "stale"
SKIPPED = "skipped"  # not a person, a removal, or our own beacon write
MALFORMED = "malformed"


@dataclass(frozen=True)
class StreamChange:
    """One stream record, in boto3's item shape."""

    event: str  # INSERT | MODIFY | REMOVE
    new: dict[str, Any] | None
    old: dict[str, Any] | None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> StreamChange:
        """A record from ``GetRecords`` (boto3) or a Lambda event (base64 binaries)."""
        data = record.get("dynamodb", {})
        new, old = data.get("NewImage"), data.get("OldImage")
        return cls(
            event=str(record.get("eventName", "")),
            new=decode_stream_image(new) if new else None,
            old=decode_stream_image(old) if old else None,
        )


class Indexer:
    def __init__(self, opener: Opener, keys: BeaconKeys, beacons: BeaconIndex) -> None:
        self._opener = opener
        self._keys = keys
        self._beacons = beacons

    def beacon_for(self, record: PersonRecord, opener: Opener | None = None) -> bytes | None:
        """The beacon the record's email should carry (None if the record has no email)."""
        ref = RecordRef(record.customer_id, PERSON, record.person_id)
        opened = (opener or self._opener).open(ref, record.fields, record.slots, (EMAIL,))
        if EMAIL not in opened:
            return None
        email = models.decode_field(EMAIL, opened[EMAIL])
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
        if beacon == beacon_of(item) and beacon_version_of(item) is not None:
            return UNCHANGED
        written = self._beacons.set_beacon(record.customer_id, record.person_id, record.version, beacon)
        return WRITTEN if written else STALE

    def handle(self, change: StreamChange, opener: Opener | None = None) -> str:
        if change.event not in ("INSERT", "MODIFY") or change.new is None:
            return SKIPPED
        if _person(change.new) is None:
            return SKIPPED
        if change.event == "MODIFY" and change.old is not None:
            if _version(change.old) == _version(change.new):
                return SKIPPED  # a beacon write: ours, or the backfill's
            email_unchanged = change.old.get(_EMAIL_ATTR) == change.new.get(_EMAIL_ATTR)
            if email_unchanged and beacon_of(change.new) is not None:
                return UNCHANGED  # e.g. a PATCH of other fields: no decrypt needed
        return self.index_item(change.new, opener)

    def handle_records(self, records: Iterable[Mapping[str, Any]]) -> Counter[str]:
        """One stream batch; a KMS or DynamoDB failure propagates (the batch is retried:
        every step is idempotent)."""
        counts: Counter[str] = Counter()
        opener = self.for_batch()
        for record in records:
            counts[self.handle(StreamChange.from_record(record), opener)] += 1
        logger.info("indexer batch: %s", dict(sorted(counts.items())))
        return counts


_EMAIL_ATTR = layout.FIELD_PREFIX + EMAIL


class _NoWrites:
    def __init__(self, beacons: BeaconIndex) -> None:
        self._beacons = beacons

    def set_beacon(self, customer_id: str, person_id: str, version: int, beacon: bytes) -> bool:
        return True

    def find(self, customer_id: str, beacon: bytes, limit: int = 100) -> list[str]:
        return self._beacons.find(customer_id, beacon, limit)


def _version(item: Mapping[str, Any]) -> str | None:
    value = item.get(layout.VERSION, {})
    return value.get("N") if isinstance(value, dict) else None


def _person(item: Mapping[str, Any]) -> PersonRecord | None:
    """The person record of an item, or None for anything that is not a person."""
    try:
        customer_id = layout.customer_of(item[layout.PK]["S"])
        person_id = layout.person_id_of(item[layout.SK]["S"])
    except (KeyError, TypeError):
        return None
    if customer_id is None or person_id is None:
        return None
    try:
        return layout.person_from_item(customer_id, dict(item))
    except IntegrityError:
        logger.warning("indexer: person %s of %s is malformed", person_id, customer_id)
        return None
