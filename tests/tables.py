"""Raw table reads for tests: what an attacker or an auditor with table access would see."""

from __future__ import annotations

from typing import Any


def scan_all(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of ``table``, through boto3's own paginator."""
    return [item for page in dynamodb.get_paginator("scan").paginate(TableName=table) for item in page["Items"]]
