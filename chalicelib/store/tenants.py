"""The tenant key registry in DynamoDB: stages read it (GetItem), ``tools.tenants`` writes it."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.keys.tenants import TenantKey
from chalicelib.store import layout
from chalicelib.support.aws_errors import translate
from chalicelib.support.errors import StorageError


class DynamoDbTenantRegistry:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._ddb = dynamodb_client
        self._table = table_name

    def get(self, customer_id: str) -> TenantKey | None:
        try:
            item = self._ddb.get_item(
                TableName=self._table, Key=layout.tenant_registry_key(customer_id), ConsistentRead=True
            ).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "dynamodb", "GetItem", StorageError) from exc
        if not item:
            return None
        entry = layout.tenant_registry_of(item)
        return TenantKey(
            customer_id, entry[layout.TENANT_KEY_ARN], entry[layout.TENANT_KEY_OWNER], entry[layout.TENANT_STATE]
        )

    def put(self, entry: TenantKey, at: str) -> None:
        """Operator side (tools.tenants): the stages' roles may not write this table."""
        item = layout.tenant_registry_item(entry.customer_id, entry.key_arn, entry.owner, entry.state, at)
        try:
            self._ddb.put_item(TableName=self._table, Item=item)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "dynamodb", "PutItem", StorageError) from exc

    def scan(self) -> list[TenantKey]:
        out: list[TenantKey] = []
        kwargs: dict[str, Any] = {}
        while True:
            try:
                response = self._ddb.scan(TableName=self._table, ConsistentRead=True, **kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, "dynamodb", "Scan", StorageError) from exc
            for item in response.get("Items", []):
                e = layout.tenant_registry_of(item)
                out.append(
                    TenantKey(
                        e[layout.TENANT_PK],
                        e[layout.TENANT_KEY_ARN],
                        e[layout.TENANT_KEY_OWNER],
                        e[layout.TENANT_STATE],
                    )
                )
            if "LastEvaluatedKey" not in response:
                return sorted(out, key=lambda t: t.customer_id)
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
