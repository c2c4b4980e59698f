"""The one-off migration that strips the beacons earlier versions kept on person items."""

from __future__ import annotations

from tests.integration.conftest import Stack, body_of, send
from tests.integration.test_lookup import PERSON
from tools.migrate_beacons import strip_legacy_beacons


def test_given_items_with_legacy_beacons_then_they_are_stripped_and_nothing_else_changes(stack: Stack) -> None:
    ddb, table = stack.dynamodb, stack.resources["table_name"]
    ids = [body_of(send(stack.writer, "POST", "/customers/acme/people", PERSON))["id"] for _ in range(3)]
    assert send(stack.writer, "PUT", "/customers/acme/secrets/api-token", {"value": "v"}).status_code == 201
    # What the indexer of earlier versions left on two of the people.
    for person_id in ids[:2]:
        ddb.update_item(
            TableName=table,
            Key={"pk": {"S": "C#acme"}, "sk": {"S": f"P#{person_id}"}},
            UpdateExpression="SET beacon = :b, beacon_version = :v",
            ExpressionAttributeValues={":b": {"B": b"b" * 16}, ":v": {"N": "1"}},
        )
    with_beacons = {(i["pk"]["S"], i["sk"]["S"]): i for i in stack.scan()}

    assert strip_legacy_beacons(ddb, table, dry_run=True) == {"items_with_beacons": 2}
    assert {(i["pk"]["S"], i["sk"]["S"]): i for i in stack.scan()} == with_beacons
    assert strip_legacy_beacons(ddb, table) == {"items_with_beacons": 2, "stripped": 2}

    after = {(i["pk"]["S"], i["sk"]["S"]): i for i in stack.scan()}
    assert set(after) == set(with_beacons)  # no item created or removed
    for key, item in with_beacons.items():
        assert after[key] == {k: v for k, v in item.items() if k not in ("beacon", "beacon_version")}
    assert strip_legacy_beacons(ddb, table) == {}  # idempotent
    for person_id in ids:
        assert send(stack.reader, "GET", f"/customers/acme/people/{person_id}").status_code == 200
