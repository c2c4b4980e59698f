"""One-off migration: strip the email beacons earlier versions kept on person items.

Before beacons had a table of their own (docs/find-and-forget.md, "Migrating a deployed
stack"), the indexer wrote ``beacon`` and ``beacon_version`` on each person item of the PII
table and the table had a ``beacon-index`` GSI on them. The writer can read those back
(a failed conditional write hands back the whole item), so they must go. Order:

1. deploy this version: the base stack adds the beacon table and drops the PII table's
   ``beacon-index`` GSI; the indexer writes the beacon table only;
2. run the backfill (``python -m tools.jobs backfill``; the indexer role): every person
   gets its beacon in the beacon table (search may miss people until it has finished);
3. run this tool once, as an administrator: it removes the two attributes from every item
   that has them (an UpdateItem per item, conditional on the item existing, so it never
   creates one). It needs ``dynamodb:Scan`` and ``dynamodb:UpdateItem`` on the PII table and
   no KMS permission. No stage role gets this write: the indexer never regains a write on the
   PII table.

    python -m tools.migrate_beacons --table pii-vault-prod [--dry-run]

Idempotent: a second run finds nothing to strip.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.store import layout

_PAGE = 500


def _names() -> dict[str, str]:
    names = {"#pk": layout.PK, "#sk": layout.SK}
    names.update({f"#b{i}": name for i, name in enumerate(layout.LEGACY_BEACON_ATTRIBUTES)})
    return names


def items_with_beacons(ddb: Any, table: str) -> Iterator[dict[str, Any]]:
    """The keys of every item still carrying a legacy beacon attribute (a projected, filtered Scan)."""
    names = _names()
    beacons = [name for name in names if name.startswith("#b")]
    kwargs: dict[str, Any] = {}
    while True:
        page = ddb.scan(
            TableName=table,
            Limit=_PAGE,
            ProjectionExpression="#pk, #sk",
            FilterExpression=" OR ".join(f"attribute_exists({name})" for name in beacons),
            ExpressionAttributeNames=names,
            **kwargs,
        )
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def strip_legacy_beacons(ddb: Any, table: str, *, dry_run: bool = False) -> Counter[str]:
    """Remove ``layout.LEGACY_BEACON_ATTRIBUTES`` from every item of ``table`` that has them."""
    names = _names()
    removals = ", ".join(name for name in names if name.startswith("#b"))
    counts: Counter[str] = Counter()
    for item in items_with_beacons(ddb, table):
        counts["items_with_beacons"] += 1
        if dry_run:
            continue
        try:
            ddb.update_item(
                TableName=table,
                Key={layout.PK: item[layout.PK], layout.SK: item[layout.SK]},
                UpdateExpression=f"REMOVE {removals}",
                ConditionExpression="attribute_exists(#pk)",
                ExpressionAttributeNames={key: value for key, value in names.items() if key != "#sk"},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            counts["gone_meanwhile"] += 1
            continue
        counts["stripped"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.migrate_beacons", description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", required=True, help="the PII table")
    parser.add_argument("--dry-run", action="store_true", help="count the items, change nothing")
    parser.add_argument("--endpoint-url", help="a local stack's moto endpoint")
    args = parser.parse_args(argv)
    import boto3

    ddb = boto3.client("dynamodb", endpoint_url=args.endpoint_url)
    counts = strip_legacy_beacons(ddb, args.table, dry_run=args.dry_run)
    json.dump(dict(sorted(counts.items())), sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
