"""Versioned secrets in DynamoDB: a head item counting versions, one item per version.

The writer cannot read the head, so it offers a version built on its guess of the
head's counter; a wrong guess fails the head's condition and DynamoDB hands back the
counter (plaintext metadata only), which ``SecretVersionConflict`` carries to the
caller for its next attempt. The service owns that retry loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from chalicelib.store import layout
from chalicelib.store.dynamodb import Cancelled, ConditionFailed, OnTable
from chalicelib.store.records import (
    DeleteProgress,
    SecretHead,
    SecretRead,
    SecretVersion,
    SecretVersionConflict,
    check_secret_version,
)
from chalicelib.support.errors import IntegrityError, NotFoundError


class DynamoDbSecrets(OnTable):
    """``SecretStore`` over one DynamoDB table."""

    def put_secret_version(self, secret: SecretVersion, expected: SecretHead, new_head: SecretHead) -> None:
        """Store version ``expected.latest + 1`` and move the head in one transaction.

        All or nothing: no gaps, no duplicates, no version without its counter. The
        condition pins everything the new version's AAD binds (counter, incarnation,
        legacy bound), so a version is never stored under a head it was not sealed for.
        """
        if secret.version != expected.latest + 1 or new_head.latest != secret.version:
            raise ValueError("a secret version must follow the latest one")
        check_secret_version(secret.version)
        names = {"#inc": layout.INCARNATION}
        values: dict[str, Any] = {
            ":next": {"N": str(secret.version)},
            ":now": {"S": secret.created_at},
            ":inc": {"S": new_head.incarnation or ""},
            ":legacy": {"N": str(new_head.legacy_until)},
        }
        if expected.latest == 0:
            condition = f"attribute_not_exists({layout.PK})"  # a first version: no head yet
        else:
            # Any later one needs the head at `expected` (a stale guess from before a delete
            # must not skip numbers) and not being deleted.
            values[":expected"] = {"N": str(expected.latest)}
            names["#deleting"] = layout.DELETING
            condition = f"{layout.LATEST} = :expected AND attribute_not_exists(#deleting)"
            if expected.incarnation is None:
                condition += " AND attribute_not_exists(#inc)"  # the secret's first v2 version
            else:
                values[":old_inc"] = {"S": expected.incarnation}
                condition += " AND #inc = :old_inc"
        head_update = {
            "Key": layout.item_key(secret.customer_id, layout.secret_head_key(secret.secret_id)),
            "UpdateExpression": (
                f"SET {layout.LATEST} = :next, {layout.UPDATED_AT} = :now, "
                f"{layout.CREATED_AT} = if_not_exists({layout.CREATED_AT}, :now), "
                f"#inc = :inc, {layout.LEGACY_UNTIL} = :legacy"
            ),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        put_version = {
            "Item": layout.secret_version_item(secret),
            "ConditionExpression": f"attribute_not_exists({layout.PK})",
        }
        try:
            self._table.transact([("Update", head_update), ("Put", put_version)])
        except Cancelled as cancelled:
            head, version = cancelled.reasons[0], cancelled.reasons[1]
            if head.get("Code") == "ConditionalCheckFailed":
                # The head as stored, or none at all: the secret was deleted meanwhile.
                raise SecretVersionConflict(layout.secret_head_of(head.get("Item"))) from None
            if version.get("Code") == "ConditionalCheckFailed":
                # An orphan version sits at the next number: build past it.
                raise SecretVersionConflict(replace(expected, latest=secret.version)) from None
            raise SecretVersionConflict(expected) from None  # TransactionConflict: a concurrent writer won

    def delete_secret(
        self, customer_id: str, secret_id: str, max_versions: int, before_removal: Callable[[], None] | None = None
    ) -> DeleteProgress:
        """Mark the secret deleted, remove up to ``max_versions`` versions, newest first.

        The mark comes first, so the secret reads as gone at once and no version can be
        added until the last one is removed. The head's counter is the only progress
        pointer: each call bumps it (how a writer that cannot read learns it; the number
        it burns has no item), deletes the top ``max_versions`` numbers, and only then
        lowers the counter below them. A call that fails midway has lowered nothing, so
        the next one deletes the same numbers again (deleting a missing item is a no-op)
        and no version is ever skipped. The head goes once nothing is left under it.
        Each call does bounded work, so a secret with thousands of large versions is
        removed over several requests, never by one that times out.
        """
        head = layout.item_key(customer_id, layout.secret_head_key(secret_id))
        try:
            response = self._table.call(
                "update_item",
                Key=head,
                UpdateExpression="SET #deleting = :true ADD #latest :one",
                ConditionExpression=f"attribute_exists({layout.PK})",
                ExpressionAttributeNames={"#deleting": layout.DELETING, "#latest": layout.LATEST},
                ExpressionAttributeValues={":true": {"BOOL": True}, ":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            )
        except ConditionFailed as exc:
            raise NotFoundError("secret not found") from exc
        latest = int(response["Attributes"][layout.LATEST]["N"])
        if before_removal is not None:
            before_removal()
        below = max(0, latest - max_versions)
        keys = [layout.item_key(customer_id, layout.secret_version_key(secret_id, v)) for v in range(latest, below, -1)]
        self._table.batch_delete(keys)
        try:
            if below > 0:
                self._table.call(
                    "update_item",
                    Key=head,
                    UpdateExpression="SET #latest = :below",
                    ConditionExpression="#deleting = :true AND #latest = :latest",
                    ExpressionAttributeNames={"#deleting": layout.DELETING, "#latest": layout.LATEST},
                    ExpressionAttributeValues={
                        ":true": {"BOOL": True},
                        ":below": {"N": str(below)},
                        ":latest": {"N": str(latest)},
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return DeleteProgress(remaining=below)
            self._table.call(
                "delete_item",
                Key=head,
                ConditionExpression=f"{layout.LATEST} = :latest",
                ExpressionAttributeValues={":latest": {"N": str(latest)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ConditionFailed as exc:
            # A concurrent DELETE moved the head on (call again), or removed it (done; a head
            # that is not being deleted belongs to a secret re-created since).
            return DeleteProgress(remaining=1 if layout.secret_head_of(exc.item).deleting else 0)
        return DeleteProgress(remaining=0)

    def _head(self, customer_id: str, secret_id: str) -> SecretHead | None:
        response = self._table.call(
            "get_item",
            Key=layout.item_key(customer_id, layout.secret_head_key(secret_id)),
            ConsistentRead=self._table.consistent,
        )
        head = layout.secret_head_of(response.get("Item"))
        return head if response.get("Item") and not head.deleting and head.latest > 0 else None

    def get_secret(self, customer_id: str, secret_id: str, version: int | None) -> SecretRead | None:
        """The exact version the head names: never "the last key in sort order"."""
        head = self._head(customer_id, secret_id)
        if head is None:
            return None
        number = head.latest if version is None else version
        if number > head.latest:
            return None
        response = self._table.call(
            "get_item",
            Key=layout.item_key(customer_id, layout.secret_version_key(secret_id, number)),
            ConsistentRead=self._table.consistent,
        )
        item = response.get("Item")
        if item is None:
            if version is None:
                raise IntegrityError("the latest version a secret's head names is missing")
            return None
        return SecretRead(head, layout.secret_from_item(customer_id, item))

    def list_secret_versions(self, customer_id: str, secret_id: str) -> list[SecretVersion]:
        """Version metadata only: the projection never fetches ciphertext. Keys are
        parsed strictly (a non-canonical one is an integrity error), and only versions
        up to the head's counter count."""
        head = self._head(customer_id, secret_id)
        if head is None:
            return []
        out: list[SecretVersion] = []
        kwargs: dict[str, Any] = {}
        while True:
            response = self._table.call(
                "query",
                **layout.secret_versions_condition(customer_id, secret_id),
                ProjectionExpression=f"{layout.SK}, {layout.CREATED_AT}",
                ConsistentRead=self._table.consistent,
                **kwargs,
            )
            out.extend(layout.secret_from_item(customer_id, item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return [v for v in out if v.version <= head.latest]
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
