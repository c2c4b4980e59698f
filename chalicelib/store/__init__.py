"""Persistence of sealed records in one DynamoDB table.

``records`` (what is stored, and the protocols the services use), ``layout`` (the only
code that knows keys and attribute names), ``dynamodb`` (client plumbing) and the two
stores on top, ``people`` and ``secrets``. ``DynamoDbStore`` is both stores over one table.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from chalicelib.store.dynamodb import DynamoDbTable
from chalicelib.store.people import DynamoDbPeople
from chalicelib.store.secrets import DynamoDbSecrets


class DynamoDbStore(DynamoDbPeople, DynamoDbSecrets):
    """``records.Store`` over a low-level boto3 DynamoDB client (injected)."""

    def __init__(
        self,
        dynamodb_client: Any,
        table_name: str,
        *,
        consistent_reads: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        table = DynamoDbTable(dynamodb_client, table_name, consistent_reads=consistent_reads, sleep=sleep)
        DynamoDbPeople.__init__(self, table)
        DynamoDbSecrets.__init__(self, table)
