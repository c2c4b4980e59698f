"""The indexer for the local stack: polls the PII table's stream and feeds the records to
the same handler the deployed ``indexer`` stage runs (``chalice local`` runs no stream
handlers). Also used in process by the integration tests and the benchmark.

    python -m tools.streampoll        # env: AWS_ENDPOINT_URL (moto), PII_VAULT_* settings

moto (and botocore 1.44) pitfall: ARN-bearing Streams calls go to an account-id
endpoint moto does not serve unless ``account_id_endpoint_mode`` is ``disabled``.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

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

    def __init__(self, streams: Any, stream_arn: str, handle: Callable[[list[dict[str, Any]]], Any]) -> None:
        self._streams = streams
        self._arn = stream_arn
        self._handle = handle
        self._last: dict[str, str | None] = {}  # shard id -> last sequence number handled
        self.counts: Counter[str] = Counter()

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
            response = self._streams.get_records(ShardIterator=self._iterator(shard_id), Limit=100)
            records = response.get("Records", [])
            if records:
                counts = self._handle(records)
                if isinstance(counts, Counter):
                    self.counts.update(counts)
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
                logging.getLogger(__name__).exception("stream poll failed; retrying")
                stop.wait(1.0)


def main() -> int:
    import faulthandler

    from chalicelib.stages import settings_for
    from chalicelib.stages.app import _client
    from chalicelib.stages.wiring import Clients, build_indexer

    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>`: every thread's stack to the log
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = settings_for(role="indexer")
    ddb = _client("dynamodb", settings)
    arn = settings.stream_arn or ddb.describe_table(TableName=settings.table_name)["Table"]["LatestStreamArn"]
    indexer = build_indexer(settings, Clients.of(_client("kms", settings), ddb))
    poller = StreamPoller(streams_client(region_name=settings.region), arn, indexer.handle_records)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"indexer: polling {arn}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        poller.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
