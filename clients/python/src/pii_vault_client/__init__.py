"""pii-vault client: SigV4-signed calls with retries, idempotency keys, pagination, typed errors.

from pii_vault_client import Client, NotFoundError

vault = Client(writer_url="http://127.0.0.1:8001", reader_url="http://127.0.0.1:8002")
created = vault.create_person("acme", person)           # random Idempotency-Key, retried safely
person = vault.get_person("acme", created["id"], fields=["email"])
for page in vault.list_pages("acme", limit=50): ...
"""

from pii_vault_client.client import Client, Page, People, Response
from pii_vault_client.errors import (
    ConflictError,
    CredentialsError,
    DependencyError,
    ForbiddenError,
    IdempotencyKeyReusedError,
    IntegrityError,
    InternalError,
    KeyServiceError,
    MalformedJsonError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    PiiVaultError,
    PreconditionFailedError,
    RequestInProgressError,
    ServiceUnavailableError,
    StorageError,
    ThrottledError,
    TransportError,
    UnsupportedMediaTypeError,
    ValidationError,
    VersionLimitError,
)
from pii_vault_client.signing import sign

__version__ = "0.1.0"
__all__ = [
    "Client",
    "ConflictError",
    "CredentialsError",
    "DependencyError",
    "ForbiddenError",
    "IdempotencyKeyReusedError",
    "IntegrityError",
    "InternalError",
    "KeyServiceError",
    "MalformedJsonError",
    "MethodNotAllowedError",
    "NotFoundError",
    "Page",
    "PayloadTooLargeError",
    "People",
    "PiiVaultError",
    "PreconditionFailedError",
    "RequestInProgressError",
    "Response",
    "ServiceUnavailableError",
    "StorageError",
    "ThrottledError",
    "TransportError",
    "UnsupportedMediaTypeError",
    "ValidationError",
    "VersionLimitError",
    "sign",
]
