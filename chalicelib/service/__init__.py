"""Use cases. The writer service can only seal; the reader service can only open; the
masked service can only open masked projections.

Each takes its collaborators as constructor arguments (store, sealer or opener,
clock), so tests run them against fakes and production against DynamoDB and KMS.
Log lines name tenants, record ids and field names; never values.
"""

from __future__ import annotations

from chalicelib.service.common import (
    PERSON,
    SECRET,
    DecryptedPerson,
    DecryptedSecret,
    PeopleBatch,
    PeoplePage,
    WriteResult,
    new_record_id,
    secret_record_id,
    timestamp,
    utc_now,
)
from chalicelib.service.masked import MaskedService
from chalicelib.service.reader import ReaderService
from chalicelib.service.writer import WriterService

__all__ = [
    "PERSON",
    "SECRET",
    "DecryptedPerson",
    "DecryptedSecret",
    "MaskedService",
    "PeopleBatch",
    "PeoplePage",
    "ReaderService",
    "WriteResult",
    "WriterService",
    "new_record_id",
    "secret_record_id",
    "timestamp",
    "utc_now",
]
