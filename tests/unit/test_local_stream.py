"""The local table's stream becomes KEYS_ONLY (infra.local, from the table spec). moto cannot re-enable a stream
once disabled, so the upgrade of a table whose stream carried whole images is shown on a fake."""

from __future__ import annotations

from typing import Any

from chalicelib.store import layout
from chalicelib.support.environment import Table
from infra.local import ensure_stream
from infra.specs import TABLES


class FakeTableClient:
    def __init__(self, stream: dict[str, Any]) -> None:
        self.stream = stream
        self.updates: list[dict[str, Any]] = []

    def describe_table(self, TableName: str) -> dict[str, Any]:
        index = {"IndexName": layout.BEACON_INDEX}
        table = {"StreamSpecification": self.stream, "GlobalSecondaryIndexes": [index], "LatestStreamArn": "arn"}
        return {"Table": table}

    def update_table(self, TableName: str, StreamSpecification: dict[str, Any]) -> None:
        if StreamSpecification.get("StreamEnabled") and self.stream.get("StreamEnabled"):
            raise AssertionError("DynamoDB refuses to enable a stream on a table that has one")
        self.updates.append(StreamSpecification)
        self.stream = StreamSpecification

    def get_waiter(self, name: str) -> Any:
        return type("Waiter", (), {"wait": lambda self, **_: None})()


def test_given_a_stream_with_whole_images_then_it_is_replaced_by_a_keys_only_stream() -> None:
    ddb = FakeTableClient({"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    changes: list[str] = []
    ensure_stream(ddb, TABLES[Table.PII], "pii-vault", changes)
    assert ddb.updates == [{"StreamEnabled": False}, {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}]
    assert [c.split(" ")[:3] for c in changes] == [
        ["disabled", "the", "NEW_AND_OLD_IMAGES"],
        ["enabled", "the", "KEYS_ONLY"],
    ]


def test_given_a_keys_only_stream_then_nothing_changes() -> None:
    ddb = FakeTableClient({"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    changes: list[str] = []
    ensure_stream(ddb, TABLES[Table.PII], "pii-vault", changes)
    assert (ddb.updates, changes) == ([], [])
