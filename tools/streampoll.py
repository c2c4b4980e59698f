"""The indexer for the local stack: polls the PII table's stream and feeds the records to
the same handler the deployed ``indexer`` stage runs (``chalice local`` runs no stream
handlers). Also used in process by the integration tests and the benchmark.

    python -m tools.streampoll [--park FILE]   # env: AWS_ENDPOINT_URL (moto), PII_VAULT_* settings

Local runs what deploys: a batch is delivered as the event source mapping does
(``chalicelib.stages.registry.STREAM_DELIVERY``): a failed batch is split in two and each
half delivered again; a batch of one that still fails is retried a bounded number of times,
then parked (as the mapping's on-failure record: the shard, the sequence numbers, the batch
size, the error; never a record's content) to ``--park`` (JSON lines), and the shard moves on.

moto (and botocore 1.44) pitfall: ARN-bearing Streams calls go to an account-id
endpoint moto does not serve unless ``account_id_endpoint_mode`` is ``disabled``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import logging
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chalicelib.stages.registry import STREAM_DELIVERY, StreamDelivery

logger = logging.getLogger(__name__)
Park = Callable[[dict[str, Any]], None]

POLL_INTERVAL_S = 0.1


def streams_client(session: Any = None, **kwargs: Any) -> Any:
    import boto3
    from botocore.config import Config

    session = session or boto3.session.Session()
    return session.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"), **kwargs)


class StreamPoller:
    """Follows every shard of one stream from its start (the local table is new), in order.

    Each poll asks for a fresh iterator after the last sequence number seen instead of
    following ``NextShardIterator``: moto rolls back a cancelled transaction by replacing
    its tables with copies, which leaves older iterators on a shard nothing writes to any
    more (a stalled indexer). A new iterator always reads the table's current shard.
    """

    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        handle: Callable[[list[dict[str, Any]]], Any],
        *,
        park: Park | None = None,
        delivery: StreamDelivery = STREAM_DELIVERY,
    ) -> None:
        self._streams = streams
        self._arn = stream_arn
        self._handle = handle
        self._park = park or _log_parked
        self._delivery = delivery
        self._last: dict[str, str | None] = {}  # shard id -> last sequence number handled
        self.counts: Counter[str] = Counter()

    def deliver(self, shard_id: str, batch: list[dict[str, Any]]) -> None:
        """One batch, as the event source mapping delivers it (see the module docstring)."""
        attempts = 0
        while True:
            try:
                counts = self._handle(batch)
            except Exception as exc:  # noqa: BLE001 - the mapping sees any function error alike
                if self._delivery.bisect and len(batch) > 1:
                    self.counts["bisected"] += 1
                    half = len(batch) // 2
                    self.deliver(shard_id, batch[:half])
                    self.deliver(shard_id, batch[half:])
                    return
                if attempts >= self._delivery.max_retry_attempts:
                    self.counts["parked"] += len(batch)
                    self._park(self._failure(shard_id, batch, exc, attempts))
                    return
                attempts += 1
                self.counts["retries"] += 1
                continue
            if isinstance(counts, Counter):
                self.counts.update(counts)
            return

    def _failure(self, shard_id: str, batch: list[dict[str, Any]], exc: Exception, attempts: int) -> dict[str, Any]:
        """The on-failure record, shaped like the mapping's (positions, never content)."""
        sequence = [r.get("dynamodb", {}).get("SequenceNumber") for r in batch]
        return {
            "timestamp": _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"),
            "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": attempts + 1},
            "responseContext": {"functionError": type(exc).__name__},
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": sequence[0],
                "endSequenceNumber": sequence[-1],
                "batchSize": len(batch),
                "streamArn": self._arn,
            },
        }

    def _iterator(self, shard_id: str) -> str:
        last = self._last.get(shard_id)
        position: dict[str, str] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": last}
            if last
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        iterator: str = self._streams.get_shard_iterator(StreamArn=self._arn, ShardId=shard_id, **position)[
            "ShardIterator"
        ]
        return iterator

    def poll_once(self) -> int:
        """One GetRecords per shard; returns the number of records handled."""
        shards = self._streams.describe_stream(StreamArn=self._arn)["StreamDescription"].get("Shards", [])
        handled = 0
        for shard in shards:
            shard_id = shard["ShardId"]
            response = self._streams.get_records(
                ShardIterator=self._iterator(shard_id), Limit=self._delivery.batch_size
            )
            records = response.get("Records", [])
            if records:
                self.deliver(shard_id, records)
                handled += len(records)
                self._last[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
        return handled

    def drain(self) -> int:
        """Poll until a round handles nothing (tests: everything written so far is indexed)."""
        total = 0
        while True:
            handled = self.poll_once()
            total += handled
            if not handled:
                return total

    def run(self, stop: threading.Event, interval: float = POLL_INTERVAL_S) -> None:
        while not stop.is_set():
            try:
                if not self.poll_once():
                    stop.wait(interval)
            except Exception:
                logger.exception("stream poll failed; retrying")
                stop.wait(1.0)


def _log_parked(failure: dict[str, Any]) -> None:
    logger.error("stream batch parked: %s", json.dumps(failure["DDBStreamBatchInfo"], sort_keys=True))


def park_to_file(path: Path) -> Park:
    """Parked batches as JSON lines in ``path`` (the local on-failure destination)."""
    lock = threading.Lock()

    def park(failure: dict[str, Any]) -> None:
        _log_parked(failure)
        with lock, path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(failure, sort_keys=True) + "\n")

    return park


def main(argv: list[str] | None = None) -> int:
    import faulthandler

    from chalicelib.stages import settings_for
    from chalicelib.stages.app import _client
    from chalicelib.stages.wiring import Clients, build_indexer

    parser = argparse.ArgumentParser(prog="python -m tools.streampoll", description=__doc__.split("\n")[0])
    parser.add_argument("--park", type=Path, help="append batches that keep failing here (JSON lines)")
    args = parser.parse_args(argv)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>`: every thread's stack to the log
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = settings_for(role="indexer")
    ddb = _client("dynamodb", settings)
    arn = settings.stream_arn or ddb.describe_table(TableName=settings.table_name)["Table"]["LatestStreamArn"]
    indexer = build_indexer(settings, Clients.of(_client("kms", settings), ddb))
    park = park_to_file(args.park) if args.park else None
    poller = StreamPoller(streams_client(region_name=settings.region), arn, indexer.handle_records, park=park)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"indexer: polling {arn}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        poller.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
