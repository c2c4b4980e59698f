"""Rewrap of the key table (format v3): each data key moved once, however many records name it.

Format v3 records hold key references; the wrapped data keys live once in the key table
(``chalicelib/store/key_table.py``). Moving them to another KMS key is one ``kms:ReEncrypt``
and one conditional UpdateItem per data key, not per record: a pool key serves thousands of
records of many tenants. The references stay the same (a reference commits to the data key,
which a rewrap does not change), so no record is touched.

Scope as for items (``chalicelib/service/rewrap.py``): one tenant (its two partitions, full
and masked view, one Query each: its tenant-scoped keys) or every tenant (a parallel scan;
pool keys too). Each entry is updated only if it still holds the wrapped key read (an
entry is written once by a writer and changed only by a rewrap), and its ``k`` names the
target once moved. The verify pass asks KMS, without Decrypt, whether each entry is under
the target. Dry runs call no KMS and write nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.service.bulk import PAGE_SIZE, Item, Key, PageSource, Processor, scan_pages
from chalicelib.service.rewrap import RewrapMap, RewrapPlan
from chalicelib.store import key_table
from chalicelib.support.aws_errors import conditional_write, translate
from chalicelib.support.errors import StorageError

KEY_TABLE_WRITE_ATTRIBUTES = (key_table.PARTITION, key_table.REFERENCE, key_table.WRAPPED, key_table.KMS_KEY)


def key_table_pages(ddb: Any, table: str, plan: RewrapPlan, segment: int, total_segments: int) -> PageSource:
    """The entries in the plan's scope: a parallel-scan segment, or (one tenant) its two partitions."""
    if plan.customer_id is None:
        return scan_pages(ddb, table, segment, total_segments)
    partitions = key_table.tenant_partitions(plan.customer_id) if segment == 0 else ()

    def page(start: Key | None) -> tuple[list[Item], Key | None]:
        position = dict(start or {})
        index = int(position.pop("#partition", {"N": "0"})["N"])
        while index < len(partitions):
            kwargs = {"ExclusiveStartKey": position} if position else {}
            try:
                response = ddb.query(
                    TableName=table,
                    Limit=PAGE_SIZE,
                    ConsistentRead=True,
                    KeyConditionExpression="#p = :p",
                    ExpressionAttributeNames={"#p": key_table.PARTITION},
                    ExpressionAttributeValues={":p": {"S": partitions[index]}},
                    **kwargs,
                )
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, "dynamodb", "Query", StorageError) from exc
            last = response.get("LastEvaluatedKey")
            if last is not None:
                return response.get("Items", []), {**last, "#partition": {"N": str(index)}}
            index, position = index + 1, {}
            if response.get("Items"):
                following = {"#partition": {"N": str(index)}} if index < len(partitions) else None
                return response["Items"], following
        return [], None

    return page


def _blob(item: Item, name: str) -> bytes:
    value = item[name]["B"]
    return value if isinstance(value, bytes) else bytes(value)


def key_table_processor(ddb: Any, table: str, plan: RewrapPlan, rewrap_map: RewrapMap) -> Processor:
    """ReEncrypt each entry under the source to the target (one KMS call per distinct wrapped key)."""

    def process(items: list[Item]) -> Counter[str]:
        counts: Counter[str] = Counter()
        calls_before = rewrap_map.calls
        for item in items:
            context = key_table.context_of(item[key_table.PARTITION]["S"], plan.app_name)
            if context is None:
                counts["keys_unknown_partition"] += 1
                continue
            counts["keys_seen"] += 1
            old = _blob(item, key_table.WRAPPED)
            if plan.dry_run:
                counts["would_rewrap_keys"] += 1
                continue
            new = rewrap_map.new_blob(old, context)
            if new is None:
                counts["keys_not_under_source"] += 1
            elif _update(ddb, table, item, old, new, plan.target_key):
                counts["keys_rewrapped"] += 1
            else:
                counts["keys_changed_meanwhile"] += 1
        counts["reencrypt_calls"] += rewrap_map.calls - calls_before
        return counts

    return process


def _update(ddb: Any, table: str, item: Item, old: bytes, new: bytes, target: str) -> bool:
    return conditional_write(
        "UpdateItem",
        lambda: ddb.update_item(
            TableName=table,
            Key={key_table.PARTITION: item[key_table.PARTITION], key_table.REFERENCE: item[key_table.REFERENCE]},
            UpdateExpression="SET #w = :new, #k = :target",
            ConditionExpression="#w = :old",
            ExpressionAttributeNames={"#w": key_table.WRAPPED, "#k": key_table.KMS_KEY},
            ExpressionAttributeValues={":new": {"B": new}, ":old": {"B": old}, ":target": {"S": target}},
            ReturnValues="NONE",
        ),
    )


def key_table_verify_processor(plan: RewrapPlan, checker: RewrapMap) -> Processor:
    """Count the entries in scope under the target (``checker`` maps target -> target)."""

    def process(items: list[Item]) -> Counter[str]:
        counts: Counter[str] = Counter()
        calls_before = checker.calls
        for item in items:
            context = key_table.context_of(item[key_table.PARTITION]["S"], plan.app_name)
            if context is None or checker.new_blob(_blob(item, key_table.WRAPPED), context) is None:
                counts["keys_not_under_target"] += 1
            else:
                counts["verified_keys"] += 1
        counts["reencrypt_calls"] += checker.calls - calls_before
        return counts

    return process
