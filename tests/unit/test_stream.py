"""A poison record never holds the stream (issue 21 D): the indexer skips, counts and logs what it
cannot process and fails the batch only for what a retry can cure; the local stand-in of the event
source mapping (tools/streampoll.py) bisects, retries a bounded number of times and parks."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest

from chalicelib.envelope.format import Opener
from chalicelib.keys.refs import KeyTableResolver
from chalicelib.service.indexer import SKIPPED_MESSAGE, UNPROCESSABLE, WRITTEN, Indexer
from chalicelib.stages.registry import STREAM_DELIVERY, StreamDelivery
from chalicelib.store import layout
from chalicelib.support.errors import KeyUnavailableError, ServiceUnavailableError, ThrottledError
from tests.unit import test_lookup
from tests.unit.test_lookup import PERSON, World
from tools.streampoll import StreamPoller


@pytest.fixture
def world() -> World:
    """test_lookup's world: fake KMS and store, the writer, the reader, the indexer."""
    return test_lookup.make_world()


class Shredded:
    """An unwrapper whose KMS key is gone for some data keys (a tenant's key pending deletion)."""

    def __init__(self, inner: Any, gone: set[bytes], error: Exception) -> None:
        self._inner, self._gone, self._error = inner, gone, error

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        if wrapped in self._gone:
            raise self._error
        plaintext: bytes = self._inner.unwrap(wrapped, context)
        return plaintext


def record(customer: str, person_id: str, n: int = 0) -> dict[str, Any]:
    keys = layout.person_key(customer, person_id)
    return {"eventID": f"e{n}", "eventName": "INSERT", "dynamodb": {"Keys": keys, "SequenceNumber": str(100 + n)}}


def poisoned(world: World, error: Exception) -> tuple[Indexer, str, str]:
    """An indexer for which tenant "gone"'s person cannot be opened, and that person and another's."""
    gone = world.writer.create_person("gone", PERSON).id
    other = world.writer.create_person("acme", PERSON).id
    refs = set(world.store.people[("gone", gone)].refs.values())
    blobs = {wrapped.blob for (_partition, ref), wrapped in world.kms.keys.entries.items() if ref in refs}
    shredded = Shredded(world.kms.decryptor(), blobs, error)
    opener = Opener(shredded, "pii-vault", resolver=KeyTableResolver(world.kms.keys, shredded))
    return Indexer(opener, world.keys, world.beacons), gone, other


def test_given_a_record_whose_tenant_key_is_shredded_then_it_is_skipped_counted_logged_and_the_next_indexed(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    indexer, gone, other = poisoned(world, KeyUnavailableError("the tenant's KMS key is disabled or pending deletion"))
    with caplog.at_level(logging.INFO):
        counts = indexer.handle_records([record("gone", gone, 1), record("acme", other, 2)])
    assert counts == Counter({UNPROCESSABLE: 1, WRITTEN: 1})
    assert [v.id for v in world.reader.search_people("acme", PERSON["email"], ("email",))] == [other]
    [line] = [r for r in caplog.records if r.getMessage().startswith(SKIPPED_MESSAGE)]
    assert line.levelno == logging.ERROR
    assert line.getMessage() == f"{SKIPPED_MESSAGE} (key_unavailable): event e1, person {gone} of gone"


@pytest.mark.parametrize(
    "bad",
    [
        {"eventName": "INSERT", "dynamodb": "not a record"},
        {"eventName": "MODIFY", "dynamodb": {"Keys": {"pk": {"S": "C#acme"}, "sk": {"B": "UA=="}}}},
    ],
    ids=["shape", "binary-sort-key"],
)
def test_given_a_record_of_an_unexpected_shape_then_it_is_skipped_and_the_batch_goes_on(
    world: World, bad: dict[str, Any]
) -> None:
    other = world.writer.create_person("acme", PERSON).id
    counts = world.indexer.handle_records([bad, record("acme", other)])
    assert counts[WRITTEN] == 1 and sum(counts.values()) == 2


@pytest.mark.parametrize("error", [ThrottledError("kms is throttling"), ServiceUnavailableError("kms is down")])
def test_given_a_transient_failure_then_the_batch_fails_for_the_mapping_to_retry(
    world: World, error: Exception
) -> None:
    indexer, gone, other = poisoned(world, error)
    with pytest.raises(type(error)):
        indexer.handle_records([record("acme", other), record("gone", gone)])


# -- the event source mapping's stand-in -------------------------------------------------------


class Handler:
    """Fails (as a transient error would, every time) any batch holding a record of ``bad``."""

    def __init__(self, bad: set[str]) -> None:
        self.bad = bad
        self.calls: list[list[str]] = []
        self.handled: list[str] = []

    def __call__(self, batch: list[dict[str, Any]]) -> Counter[str]:
        ids = [r["eventID"] for r in batch]
        self.calls.append(ids)
        if self.bad & set(ids):
            raise ThrottledError("dynamodb is throttling requests; retry later")
        self.handled += ids
        return Counter(written=len(ids))


def batch(n: int) -> list[dict[str, Any]]:
    return [record("acme", f"{i:032x}", i) for i in range(n)]


def poller(handler: Handler, delivery: StreamDelivery = STREAM_DELIVERY) -> tuple[StreamPoller, list[dict[str, Any]]]:
    parked: list[dict[str, Any]] = []
    return StreamPoller(None, "arn:stream", handler, park=parked.append, delivery=delivery), parked


def test_given_a_batch_that_keeps_failing_on_one_record_then_bisect_isolates_it_retries_it_boundedly_and_parks_it() -> (
    None
):
    handler = Handler({"e5"})
    stream, parked = poller(handler)
    stream.deliver("shard-1", batch(8))
    assert handler.handled == [f"e{i}" for i in range(8) if i != 5]  # every other record, once, in order
    assert handler.calls.count(["e5"]) == 1 + STREAM_DELIVERY.max_retry_attempts
    [failure] = parked
    assert failure["DDBStreamBatchInfo"] == {
        "shardId": "shard-1",
        "startSequenceNumber": "105",
        "endSequenceNumber": "105",
        "batchSize": 1,
        "streamArn": "arn:stream",
    }
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert stream.counts["parked"] == 1 and stream.counts["written"] == 7
    assert len(handler.calls) <= 2 * 8 + STREAM_DELIVERY.max_retry_attempts  # bounded


def test_given_no_bisect_then_the_whole_batch_is_retried_boundedly_and_parked() -> None:
    handler = Handler({"e1"})
    stream, parked = poller(handler, StreamDelivery(batch_size=100, bisect=False, max_retry_attempts=2))
    stream.deliver("shard-1", batch(3))
    assert handler.calls == [["e0", "e1", "e2"]] * 3 and handler.handled == []
    assert [p["DDBStreamBatchInfo"]["batchSize"] for p in parked] == [3]


def test_given_a_healthy_batch_then_one_call_nothing_parked() -> None:
    handler = Handler(set())
    stream, parked = poller(handler)
    stream.deliver("shard-1", batch(4))
    assert handler.calls == [["e0", "e1", "e2", "e3"]] and parked == []


def test_given_the_deployed_mapping_then_it_bisects_and_bounds_its_retries() -> None:
    assert STREAM_DELIVERY.bisect and 0 < STREAM_DELIVERY.max_retry_attempts <= 10
