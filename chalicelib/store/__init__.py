"""Persistence of sealed records in one DynamoDB table.

``records`` (what is stored, and the protocols the services use), ``layout`` (the only
code that knows keys and attribute names), ``dynamodb`` (client plumbing) and the two
stores on top, ``people`` and ``secrets``. ``DynamoDbStore`` is both stores over one table.
"""

from __future__ import annotations

from chalicelib.store.people import DynamoDbMaskedPeople, DynamoDbPeople
from chalicelib.store.secrets import DynamoDbSecrets


class DynamoDbStore(DynamoDbPeople, DynamoDbSecrets):
    """``records.Store``: both stores over one ``dynamodb.DynamoDbTable``."""


__all__ = ["DynamoDbMaskedPeople", "DynamoDbStore"]
