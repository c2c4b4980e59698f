"""AWS plumbing of the benchmark: moto sandbox, metered clients, DynamoDB item sizes, the key layout."""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
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

    Writes: an item written (PutItem, UpdateItem, DeleteItem, each item of a BatchWriteItem)
    costs one write unit per started KB of the larger of the item before and after the write;
    each item of a transaction (ConditionCheck included) twice. With ``stored`` (the sandbox's
    probe: the item as the table holds it, read without a request) those sizes are exact;
    without it PutItem counts the item sent and UpdateItem / DeleteItem one unit (lower bounds).
    Reads: a GetItem (a missing item too), each item of a BatchGetItem and each Query page cost
    one read unit per started 4 KB, half when eventually consistent (a GSI query always is).

    The hooks keep what they see (the probe reads an in-process dict); sizes of what was read
    are computed when the units are asked for, so the metering adds little to timed latencies.
    ``seconds``: the time spent in DynamoDB requests (moto's, here), from sending to the parsed
    answer, so that a caller can tell its own code's time from the database's.
    """

    def __init__(self, stored: StoredItems | None = None) -> None:
        self.calls: Counter[str] = Counter()
        self.stored = stored
        self._writes: list[tuple[str, float]] = []  # (table, write units) of each item written
        self._reads: list[tuple[str, float, Any, int]] = []  # (operation, read factor, response, keys asked)
        self.seconds = 0.0

    def attach(self, events: Any) -> None:
        events.register("before-parameter-build.dynamodb.*", self._before)
        events.register("before-call.dynamodb.*", self._started)
        events.register("after-call.dynamodb.*", self._after)

    @staticmethod
    def _started(context: dict[str, Any], **_: Any) -> None:
        context["bench_started"] = time.perf_counter()

    @staticmethod
    def _written(params: dict[str, Any], operation: str) -> list[tuple[str, dict[str, Any], int, bool]]:
        """(table, key or whole item, weight, whether the item is sent whole) of every item a request writes."""
        if operation == "PutItem":
            return [(params["TableName"], params["Item"], 1, True)]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(params["TableName"], params["Key"], 1, False)]
        found = []
        if operation == "TransactWriteItems":
            for entry in params.get("TransactItems", []):
                ((kind, action),) = entry.items()
                whole = kind == "Put"
                found.append((action["TableName"], action["Item"] if whole else action["Key"], 2, whole))
        elif operation == "BatchWriteItem":
            for table, requests in params.get("RequestItems", {}).items():
                for request in requests:
                    put = request.get("PutRequest")
                    found.append(
                        (table, put["Item"], 1, True) if put else (table, request["DeleteRequest"]["Key"], 1, False)
                    )
        return found

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        operation = model.name
        self.calls[operation] += 1
        consistent = params.get("ConsistentRead") and "IndexName" not in params
        context["bench_read_factor"] = 1.0 if consistent else 0.5
        if operation == "BatchGetItem":
            tables = params.get("RequestItems", {}).values()
            context["bench_read_factor"] = 1.0 if all(t.get("ConsistentRead") for t in tables) else 0.5
            context["bench_keys"] = sum(len(t.get("Keys", [])) for t in tables)
        written = self._written(params, operation)
        if written:
            before = [self.stored.size(table, item) if self.stored else 0 for table, item, _, _ in written]
            context["bench_writes"] = (written, before)

    def _after(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        self.seconds += time.perf_counter() - context.pop("bench_started", time.perf_counter())
        if model.name in ("GetItem", "BatchGetItem", "Query"):
            factor = context.get("bench_read_factor", 1.0)
            self._reads.append((model.name, factor, parsed, context.get("bench_keys", 0)))
        pending = context.pop("bench_writes", None)
        if pending is not None:
            written, before = pending
            for (table, item, weight, whole), size_before in zip(written, before, strict=True):
                if self.stored is not None:
                    size_after = self.stored.size(table, item)
                else:
                    size_after = item_size(item) if whole else 0
                self._writes.append((table, weight * max(1, math.ceil(max(size_before, size_after) / 1024))))

    @property
    def write_units(self) -> float:
        """Write units of every write, any table."""
        return self.write_units_where(lambda _table: True)

    def write_units_where(self, wanted: Callable[[str], bool]) -> float:
        """Write units of the items written to the tables ``wanted(table name)`` accepts."""
        return sum(units for table, units in self._writes if wanted(table))

    @property
    def read_units(self) -> float:
        units = 0.0
        for operation, factor, parsed, asked in self._reads:
            if operation == "GetItem":
                units += factor * max(1, math.ceil(item_size(parsed.get("Item", {})) / 4096))
            elif operation == "BatchGetItem":
                items = [i for found in parsed.get("Responses", {}).values() for i in found]
                missing = max(0, asked - len(items))
                units += factor * (sum(max(1, math.ceil(item_size(i) / 4096)) for i in items) + missing)
            elif operation == "Query":
                units += factor * max(1, math.ceil(sum(item_size(i) for i in parsed.get("Items", [])) / 4096))
        return units


class StoredItems:
    """The size of an item as a moto table in this process holds it (no request: moto's own state)."""

    def __init__(self, region: str = REGION) -> None:
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        self._backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][region]

    def size(self, table_name: str, key_or_item: dict[str, Any]) -> int:
        """Billed size of the stored item with this key (0 if there is none)."""
        from moto.dynamodb.models.dynamo_type import DynamoType

        table = self._backend.get_table(table_name)
        hash_key = DynamoType(key_or_item[table.hash_key_attr])
        range_key = DynamoType(key_or_item[table.range_key_attr]) if table.range_key_attr else None
        stored = table.get_item(hash_key, range_key)
        return 0 if stored is None else item_size(_decoded(stored.to_json()["Attributes"]))


def _decoded(item: dict[str, Any]) -> dict[str, Any]:
    """An item as moto keeps it (binaries as base64 text), binaries as bytes again."""
    return {name: _decoded_value(value) for name, value in item.items()}


def _decoded_value(value: dict[str, Any]) -> dict[str, Any]:
    import base64

    ((kind, inner),) = value.items()
    if kind == "B" and isinstance(inner, str):
        return {kind: base64.b64decode(inner)}
    if kind == "BS":
        return {kind: [base64.b64decode(v) if isinstance(v, str) else v for v in inner]}
    if kind == "M":
        return {kind: _decoded(inner)}
    if kind == "L":
        return {kind: [_decoded_value(v) for v in inner]}
    return value


def local_resources(kms: Any, ddb: Any) -> dict[str, str]:
    """Every key and table of a local environment (what ``make dev`` bootstraps, from the base
    stack's specs), as ``tools.devstack.local_environment`` expects them."""
    from infra.local import bootstrap

    return bootstrap(kms, ddb)


@contextmanager
def aws_sandbox() -> Iterator[dict[str, str]]:
    """mock_aws with dummy credentials and a bootstrapped local environment (its resources);
    AWS_ENDPOINT_URL would bypass the mock."""
    saved = dict(os.environ)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "PII_VAULT_ROLE"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - moto's dummy credentials
        AWS_DEFAULT_REGION=REGION,
    )
    from moto import mock_aws

    from tools.moto_fidelity import install

    install()  # moto answers as KMS does (GenerateMac names the key ARN, disabled keys refuse)
    try:
        with mock_aws():
            import boto3

            yield local_resources(boto3.client("kms", region_name=REGION), boto3.client("dynamodb", region_name=REGION))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _session(principal: str | None) -> Any:
    """pii-vault's stages sign as themselves (tools/recorder/principals.py), the other approaches
    and the bench's own setup with the sandbox's credentials."""
    import boto3

    if principal is None:
        return boto3
    from tools.recorder.principals import stage_session

    return stage_session(principal, REGION)


def kms_client(meter: KmsMeter, principal: str | None = None) -> Any:
    client = _session(principal).client("kms", region_name=REGION)
    meter.attach(client.meta.events)
    return client


def ddb_client(meter: DynamoMeter | None = None, principal: str | None = None) -> Any:
    """A DynamoDB client of the sandbox (signing as ``principal``); ``meter`` counts its requests' units."""
    client = _session(principal).client("dynamodb", region_name=REGION)
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
