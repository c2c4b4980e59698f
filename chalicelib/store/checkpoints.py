"""Where a bulk job's segment stands: its checkpoint, saved after every page.

(job id, segment) -> the key the next page starts after (``LastEvaluatedKey``), counters,
whether the segment is done and how many pages it took: ids and counters only (a key holds
tenant and record ids). In the jobs table (``tables.JOB_PK``/``JOB_SK``); dry runs keep
theirs in memory. A checkpoint is only a position: anything irreversible a job does at the
end (shredding a key, marking a tenant erased) is decided by a fresh query, never by a
stored ``done``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from chalicelib.store import tables
from chalicelib.store.dynamodb import Key, adapter


@dataclass
class Checkpoint:
    job_id: str
    segment: int
    last_key: Key | None = None
    counts: Counter[str] = field(default_factory=Counter)
    done: bool = False
    pages: int = 0

    def report(self) -> dict[str, Any]:
        return {
            "job": self.job_id,
            "segment": self.segment,
            "done": self.done,
            "pages": self.pages,
            "counts": dict(sorted(self.counts.items())),
        }

    def copy(self) -> Checkpoint:
        return replace(self, counts=Counter(self.counts))


class Checkpoints(Protocol):
    def load(self, job_id: str, segment: int) -> Checkpoint | None: ...

    def save(self, checkpoint: Checkpoint) -> None: ...


class MemoryCheckpoints:
    """Dry runs (and tests): nothing persisted beyond this object."""

    def __init__(self) -> None:
        self._saved: dict[tuple[str, int], Checkpoint] = {}

    def load(self, job_id: str, segment: int) -> Checkpoint | None:
        saved = self._saved.get((job_id, segment))
        return None if saved is None else saved.copy()

    def save(self, checkpoint: Checkpoint) -> None:
        self._saved[(checkpoint.job_id, checkpoint.segment)] = checkpoint.copy()


class DynamoDbCheckpoints:
    """Checkpoints in the jobs table."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._ddb = adapter(dynamodb)
        self._table = table_name

    def load(self, job_id: str, segment: int) -> Checkpoint | None:
        item = self._ddb.get(self._table, tables.job_key(job_id, segment))
        if not item:
            return None
        return Checkpoint(
            job_id=job_id,
            segment=segment,
            last_key=json.loads(item["last_key"]["S"]) if "last_key" in item else None,
            counts=Counter({k: int(v["N"]) for k, v in item.get("counts", {}).get("M", {}).items()}),
            done=bool(item.get("done", {}).get("BOOL", False)),
            pages=int(item.get("pages", {}).get("N", "0")),
        )

    def save(self, checkpoint: Checkpoint) -> None:
        item: dict[str, Any] = {
            **tables.job_key(checkpoint.job_id, checkpoint.segment),
            "counts": {"M": {k: {"N": str(v)} for k, v in checkpoint.counts.items()}},
            "done": {"BOOL": checkpoint.done},
            "pages": {"N": str(checkpoint.pages)},
            "updated_at": {"N": str(int(time.time()))},
        }
        if checkpoint.last_key is not None:
            item["last_key"] = {"S": json.dumps(checkpoint.last_key, sort_keys=True)}
        self._ddb.call("put_item", TableName=self._table, Item=item)
