"""Make moto's TransactWriteItems behave as DynamoDB's under retries and at scale.

moto 5.2.5 departs from DynamoDB in two ways that lose acknowledged writes under load
(issue 19; ``tests/integration/test_moto_transactions.py`` shows both against moto alone):

- **ClientRequestToken is ignored.** DynamoDB makes identical calls with one token
  within 10 minutes "have the same effect as one single call"; botocore fills a token
  into every TransactWriteItems and re-sends it when it retries after a timeout or a
  dropped answer. moto runs the retry again: a delete that was applied is refused by its
  own condition (the client is told 412 for a delete that happened).
- **Every transaction deep-copies every table it touches** (its rollback copy), so one
  costs O(table size): 14 ms at 100 people, 54 ms at 1,000, 174 ms at 3,000. The local
  stack's moto is serialised (tools/motoserver.py), so every other call queues behind it
  until botocore's read timeout fires and the retry above happens. The copy takes the
  table's stream too (every record since the stack started), so it grows with every write
  of the session: on a busy machine 117 ms per transaction at 100 items (200 stream
  records), 795 ms at 1,000, 3.5 s at 3,000. That is why the e2e secret PUTs (six writers
  on one head, a transaction per attempt) outlived the client's 10 s after the tests
  before them had filled the table.

``install()`` keeps moto's own transaction logic and changes only these: a successful
transaction's token is remembered for 10 minutes (an identical retry answers success
without writing again; the same token with other parameters answers
``IdempotentParameterMismatchException``), and the rollback copy holds the items the
transaction names (and the length of each stream shard) instead of whole tables, so a
cancelled transaction still leaves neither items nor stream records behind.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import moto.dynamodb.models as dynamodb_models
from moto.core.responses import ActionResult
from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler

TOKEN_LIFETIME_S = 600.0  # DynamoDB: "valid for 10 minutes after the first request that uses it is completed"


class IdempotentParameterMismatchException(DynamodbException):
    def __init__(self) -> None:
        super().__init__(
            ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException",
            "the ClientRequestToken was used with other parameters within the last 10 minutes",
        )


_in_transaction = threading.local()


class _TableCopiesOff:
    """Stands in for the ``copy`` module inside moto.dynamodb.models: during a transaction a
    Table "copies" to itself (the per-item snapshot below restores what changed)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        if isinstance(value, Table) and getattr(_in_transaction, "active", False):
            return value
        return copy.deepcopy(value, memo)


# (table, hash key, range key, the item before, deep-copied or None)
_Saved = tuple[Table, Any, Any, Any]


def _snapshot(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> tuple[list[_Saved], dict[int, Any]]:
    """The items a transaction names, as they are now, and each stream shard's length."""
    saved: list[_Saved] = []
    shards: dict[int, Any] = {}
    for entry in transact_items:
        for op in entry.values():
            table = backend.tables.get(op.get("TableName", ""))
            if table is None:
                continue  # moto answers ResourceNotFound itself, before writing anything
            source = op.get("Key") or op.get("Item") or {}
            names = [name for name in (table.hash_key_attr, table.range_key_attr) if name is not None]
            key = {name: source[name] for name in names if name in source}
            try:
                hash_key, range_key = backend.get_keys_value(table, key)
            except Exception:  # noqa: BLE001, S112 - a malformed key: moto refuses the transaction itself
                continue
            saved.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
            if table.stream_shard is not None:
                shards.setdefault(id(table.stream_shard), (table.stream_shard, len(table.stream_shard.items)))
    return saved, shards


def _restore(saved: list[_Saved], shards: dict[int, Any]) -> None:
    for table, hash_key, range_key, before in reversed(saved):
        if range_key is not None:
            if before is None:
                table.items[hash_key].pop(range_key, None)
            else:
                table.items[hash_key][range_key] = before
        elif before is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = before
    for shard, length in shards.values():
        del shard.items[length:]  # a cancelled transaction leaves no stream records


def _tokens(backend: DynamoDBBackend) -> dict[str, tuple[str, float]]:
    tokens: dict[str, tuple[str, float]] = backend.__dict__.setdefault("_pii_vault_client_tokens", {})
    return tokens


_originals: dict[str, Any] = {}


def install() -> None:
    """Idempotent; patches moto's classes (every backend, every region) until ``uninstall()``."""
    if _originals:
        return
    _originals.update(
        copy=vars(dynamodb_models)["copy"],
        backend=DynamoDBBackend.transact_write_items,
        handler=DynamoHandler.transact_write_items,
    )
    backend_transact: Callable[..., None] = _originals["backend"]
    handler_transact: Callable[..., Any] = _originals["handler"]

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        saved, shards = _snapshot(self, transact_items)
        _in_transaction.active = True
        try:
            backend_transact(self, transact_items)
        except BaseException:
            _restore(saved, shards)
            raise
        finally:
            _in_transaction.active = False

    def transact_with_token(self: DynamoHandler) -> Any:
        token = self.body.get("ClientRequestToken")
        if token is None:
            return handler_transact(self)
        parameters = {name: value for name, value in self.body.items() if name != "ClientRequestToken"}
        # moto hands binary attribute values over decoded (bytes): hex them for the fingerprint.
        canonical = json.dumps(parameters, sort_keys=True, default=lambda value: bytes(value).hex())
        fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
        tokens, now = _tokens(self.dynamodb_backend), time.monotonic()
        for old in [t for t, (_, at) in tokens.items() if now - at > TOKEN_LIFETIME_S]:
            del tokens[old]
        if token in tokens:
            if tokens[token][0] != fingerprint:
                raise IdempotentParameterMismatchException()
            return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})  # as moto answers one
        result = handler_transact(self)
        tokens[token] = (fingerprint, time.monotonic())  # only a transaction that succeeded
        return result

    vars(dynamodb_models)["copy"] = _TableCopiesOff()
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    DynamoHandler.transact_write_items = transact_with_token  # type: ignore[method-assign]


def uninstall() -> None:
    """Back to moto as it ships (tests that compare the two)."""
    if not _originals:
        return
    vars(dynamodb_models)["copy"] = _originals.pop("copy")
    DynamoDBBackend.transact_write_items = _originals.pop("backend")  # type: ignore[method-assign]
    DynamoHandler.transact_write_items = _originals.pop("handler")  # type: ignore[method-assign]
