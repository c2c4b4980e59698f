"""Versioned secrets in DynamoDB: a head item counting versions, one item per version.

The writer cannot read the head, so it offers a version built on its guess of the
head's counter; a wrong guess fails the head's condition and DynamoDB hands back the
counter (plaintext metadata only), which ``SecretVersionConflict`` carries to the
caller for its next attempt. The service owns that retry loop.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.errors import ConflictError, NotFoundError
from chalicelib.store import layout
from chalicelib.store.dynamodb import TRANSACT_MAX, Cancelled, OnTable
from chalicelib.store.records import SecretVersion, SecretVersionConflict, check_secret_version

# Rounds of a DELETE racing writers that keep adding versions.
_DELETE_ROUNDS = 16


class DynamoDbSecrets(OnTable):
    """``SecretStore`` over one DynamoDB table."""

    def put_secret_version(self, secret: SecretVersion, expected_latest: int) -> None:
        """Store version ``expected_latest + 1`` and move the head's counter in one transaction.

        All or nothing: no gaps, no duplicates, no version without its counter.
        """
        if secret.version != expected_latest + 1:
            raise ValueError("a secret version must follow the latest one")
        check_secret_version(secret.version)
        head_update = {
            "Key": layout.item_key(secret.customer_id, layout.secret_head_key(secret.secret_id)),
            "UpdateExpression": (
                f"SET {layout.LATEST} = :next, #type = :type, {layout.UPDATED_AT} = :now, "
                f"{layout.CREATED_AT} = if_not_exists({layout.CREATED_AT}, :now)"
            ),
            # A first version needs no head; any later one needs the head at `expected`
            # (a stale guess from before a delete must not skip numbers).
            "ConditionExpression": (
                f"attribute_not_exists({layout.PK})" if expected_latest == 0 else f"{layout.LATEST} = :expected"
            ),
            "ExpressionAttributeNames": {"#type": layout.TYPE},
            "ExpressionAttributeValues": {
                ":next": {"N": str(secret.version)},
                ":type": {"S": layout.SECRET_TYPE},
                ":now": {"S": secret.created_at},
                **({":expected": {"N": str(expected_latest)}} if expected_latest else {}),
            },
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
                # The head's counter, or none at all: the secret was deleted meanwhile.
                latest = int(head.get("Item", {}).get(layout.LATEST, {}).get("N", 0))
                raise SecretVersionConflict(latest) from None
            if version.get("Code") == "ConditionalCheckFailed":
                raise SecretVersionConflict(secret.version) from None  # an orphan version: build past it
            raise SecretVersionConflict(expected_latest) from None  # TransactionConflict: a concurrent writer won

    def delete_secret(self, customer_id: str, secret_id: str) -> None:
        """Delete every version, then the head, without ever reading a version.

        Bumping the head's counter is how a writer that cannot read learns it (the
        number it burns is never used: the head goes away). Up to 99 versions go in
        one transaction with the head, all or nothing; beyond that, batches delete
        oldest first, so an interrupted delete never resurrects an older value as the
        latest, and the head goes last, conditional on no version having been added.
        """
        head = layout.item_key(customer_id, layout.secret_head_key(secret_id))
        for _round in range(_DELETE_ROUNDS):
            try:
                response = self._table.call(
                    "update_item",
                    Key=head,
                    UpdateExpression=f"ADD {layout.LATEST} :one",
                    ConditionExpression=f"attribute_exists({layout.PK})",
                    ExpressionAttributeValues={":one": {"N": "1"}},
                    ReturnValues="UPDATED_NEW",
                )
            except ClientError as exc:
                raise NotFoundError("secret not found") from exc
            latest = int(response["Attributes"][layout.LATEST]["N"])
            keys = [layout.item_key(customer_id, layout.secret_version_key(secret_id, v)) for v in range(1, latest + 1)]
            delete_head: dict[str, Any] = {
                "Key": head,
                "ConditionExpression": f"{layout.LATEST} = :latest",
                "ExpressionAttributeValues": {":latest": {"N": str(latest)}},
            }
            try:
                if len(keys) < TRANSACT_MAX:
                    self._table.transact([*(("Delete", {"Key": key}) for key in keys), ("Delete", delete_head)])
                else:
                    self._table.batch_delete(keys)
                    self._table.call("delete_item", **delete_head)
            except (Cancelled, ClientError):
                continue  # a new version was added meanwhile: delete it too
            return
        raise ConflictError("secret is being written concurrently; retry the delete")

    def get_secret(self, customer_id: str, secret_id: str, version: int | None) -> SecretVersion | None:
        if version is not None:
            response = self._table.call(
                "get_item",
                Key=layout.item_key(customer_id, layout.secret_version_key(secret_id, version)),
                ConsistentRead=self._table.consistent,
            )
            item = response.get("Item")
            return layout.secret_from_item(customer_id, item) if item else None
        response = self._table.call(
            "query",
            **layout.secret_versions_condition(customer_id, secret_id),
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=self._table.consistent,
        )
        items = response.get("Items", [])
        return layout.secret_from_item(customer_id, items[0]) if items else None

    def list_secret_versions(self, customer_id: str, secret_id: str) -> list[SecretVersion]:
        """Version metadata only: the projection never fetches ciphertext."""
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
                return out
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
