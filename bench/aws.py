"""AWS plumbing of the benchmark: moto sandbox, metered clients, DynamoDB item sizes, the key layout."""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.stages import REGION


class KmsMeter:
    """botocore hooks: count every KMS operation and sleep the simulated round trip."""

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.calls: Counter[str] = Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1
        if self.latency_s:
            time.sleep(self.latency_s)

    def attach(self, events: Any) -> None:
        events.register("before-call.kms.*", self)

    def total(self) -> int:
        return sum(self.calls.values())


class DynamoMeter:
    """botocore hooks: DynamoDB request units as billed on demand (AWS "item sizes" rules).

    A write of one item costs one write unit per started KB (PutItem: measured from the
    item sent; UpdateItem and DeleteItem, which the benchmark does not time: one unit, a
    lower bound); a transaction costs twice. A read costs one read unit per started 4 KB
    of each item returned, half for an eventually consistent read.

    The hooks only keep what they see; sizes are computed when the units are asked for,
    so the metering adds next to nothing to the latencies the benchmark times.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._writes: list[tuple[str, Any]] = []  # (operation, item or transaction items)
        self._reads: list[tuple[str, float, Any]] = []  # (operation, read factor, parsed response)

    def attach(self, events: Any) -> None:
        events.register("before-parameter-build.dynamodb.*", self._before)
        events.register("after-call.dynamodb.*", self._after)

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        self.calls[model.name] += 1
        context["bench_read_factor"] = 1.0 if params.get("ConsistentRead") else 0.5
        if model.name == "BatchGetItem":
            tables = params.get("RequestItems", {}).values()
            context["bench_read_factor"] = 1.0 if all(t.get("ConsistentRead") for t in tables) else 0.5
        if model.name == "PutItem":
            self._writes.append((model.name, params["Item"]))
        elif model.name in ("UpdateItem", "DeleteItem", "TransactWriteItems"):
            self._writes.append((model.name, params.get("TransactItems")))

    def _after(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if model.name in ("GetItem", "BatchGetItem", "Query"):
            self._reads.append((model.name, context.get("bench_read_factor", 1.0), parsed))

    @property
    def write_units(self) -> float:
        units = 0.0
        for operation, sent in self._writes:
            if operation == "PutItem":
                units += math.ceil(item_size(sent) / 1024)
            elif operation == "TransactWriteItems":
                units += 2 * len(sent or [])
            else:
                units += 1
        return units

    @property
    def read_units(self) -> float:
        units = 0.0
        for operation, factor, parsed in self._reads:
            if operation == "GetItem" and "Item" in parsed:
                units += factor * math.ceil(item_size(parsed["Item"]) / 4096)
            elif operation == "BatchGetItem":
                items = [i for found in parsed.get("Responses", {}).values() for i in found]
                units += factor * sum(math.ceil(item_size(i) / 4096) for i in items)
            elif operation == "Query":
                units += factor * math.ceil(sum(item_size(i) for i in parsed.get("Items", [])) / 4096)
        return units


@contextmanager
def aws_sandbox() -> Iterator[dict[str, str]]:
    """mock_aws with dummy credentials; AWS_ENDPOINT_URL would bypass the mock."""
    saved = dict(os.environ)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "PII_VAULT_ROLE"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - moto's dummy credentials
        AWS_DEFAULT_REGION=REGION,
    )
    from moto import mock_aws

    from infra.local import bootstrap

    try:
        with mock_aws():
            import boto3

            yield bootstrap(boto3.client("kms", region_name=REGION), boto3.client("dynamodb", region_name=REGION))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def kms_client(meter: KmsMeter) -> Any:
    import boto3

    client = boto3.client("kms", region_name=REGION)
    meter.attach(client.meta.events)
    return client


def ddb_client(meter: DynamoMeter | None = None) -> Any:
    import boto3

    client = boto3.client("dynamodb", region_name=REGION)
    if meter is not None:
        meter.attach(client.meta.events)
    return client


def person_key(customer_id: str, record_id: str) -> dict[str, dict[str, str]]:
    """The table key of a person record, from the store's layout (the only code that spells keys)."""
    from chalicelib.store import layout

    return {layout.PK: {"S": layout.partition_key(customer_id)}, layout.SK: {"S": layout.person_sort_key(record_id)}}


def tenant_items(ddb: Any, table: str, customer_id: str) -> list[dict[str, Any]]:
    from chalicelib.store import layout

    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = ddb.query(
            TableName=table,
            KeyConditionExpression=f"{layout.PK} = :pk",
            ExpressionAttributeValues={":pk": {"S": layout.partition_key(customer_id)}},
            **kwargs,
        )
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def attribute_size(value: dict[str, Any]) -> int:
    """DynamoDB's billed size of one attribute value (AWS 'item sizes' rules)."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode("utf-8"))
    if kind == "B":
        return len(raw)
    if kind == "N":
        digits = raw.lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_size(v) + 1 for k, v in raw.items())
    if kind == "L":
        return 3 + sum(attribute_size(v) + 1 for v in raw)
    return sum(len(str(v)) for v in raw)


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def binary_bytes(value: Any) -> int:
    """All binary bytes in an item: ciphertexts and wrapped keys."""
    if isinstance(value, dict):
        return sum(len(v) if k == "B" else binary_bytes(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(binary_bytes(v) for v in value)
    return 0
