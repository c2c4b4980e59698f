"""The tenant key registry in DynamoDB: stages read it (GetItem), ``tools.tenants`` writes it."""

from __future__ import annotations

from typing import Any

from chalicelib.keys.tenants import TenantKey
from chalicelib.store import tables
from chalicelib.store.dynamodb import adapter


class DynamoDbTenantRegistry:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._ddb = adapter(dynamodb)
        self._table = table_name

    def get(self, customer_id: str) -> TenantKey | None:
        item = self._ddb.get(self._table, tables.tenant_registry_key(customer_id))
        if not item:
            return None
        entry = tables.tenant_registry_of(item)
        return TenantKey(
            customer_id, entry[tables.TENANT_KEY_ARN], entry[tables.TENANT_KEY_OWNER], entry[tables.TENANT_STATE]
        )

    def put(self, entry: TenantKey, at: str) -> None:
        """Operator side (tools.tenants): the stages' roles may not write this table."""
        item = tables.tenant_registry_item(entry.customer_id, entry.key_arn, entry.owner, entry.state, at)
        self._ddb.call("put_item", TableName=self._table, Item=item)

    def scan(self) -> list[TenantKey]:
        out: list[TenantKey] = []
        for item in self._ddb.items("scan", self._table, ConsistentRead=True):
            e = tables.tenant_registry_of(item)
            out.append(
                TenantKey(
                    e[tables.TENANT_PK], e[tables.TENANT_KEY_ARN], e[tables.TENANT_KEY_OWNER], e[tables.TENANT_STATE]
                )
            )
        return sorted(out, key=lambda t: t.customer_id)
