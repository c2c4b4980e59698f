"""pii-vault client: every route of the API stages as typed calls, SigV4-signed, pooled, retried.

from pii_vault_client import Client, NotFoundError

vault = Client(writer_url="http://127.0.0.1:8001", reader_url="http://127.0.0.1:8002")
created = vault.create_person("acme", person)           # random Idempotency-Key, retried safely
person = vault.get_person("acme", created.id, fields=["email"])
for page in vault.list_pages("acme", limit=50): ...

``call(method, url, session=...)`` is one signed request without a ``Client`` (README).
"""

from __future__ import annotations

from typing import Any

from pii_vault_client.client import ROUTES, Client
from pii_vault_client.config import Config
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
    WaiterError,
)
from pii_vault_client.hooks import RequestEvent, log_requests
from pii_vault_client.models import (
    Page,
    People,
    Person,
    Response,
    ResponseMetadata,
    Secret,
    SecretDeletion,
    SecretVersion,
    SecretVersions,
    Written,
)
from pii_vault_client.signing import sign

__version__ = "0.2.0"
__all__ = [
    "ROUTES",
    "Client",
    "Config",
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
    "Person",
    "PiiVaultError",
    "PreconditionFailedError",
    "RequestEvent",
    "RequestInProgressError",
    "Response",
    "ResponseMetadata",
    "Secret",
    "SecretDeletion",
    "SecretVersion",
    "SecretVersions",
    "ServiceUnavailableError",
    "StorageError",
    "ThrottledError",
    "TransportError",
    "UnsupportedMediaTypeError",
    "ValidationError",
    "VersionLimitError",
    "WaiterError",
    "Written",
    "call",
    "log_requests",
    "sign",
]


def call(
    method: str,
    url: str,
    *,
    session: Any = None,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    config: Config | None = None,
) -> Response:
    """One signed request to any pii-vault URL, retried as ``config`` says; returns the answer
    whatever its status (``.status``, ``.headers``, ``.json()``). ``session``: a boto3 or
    botocore Session, or botocore credentials (default: botocore's credential chain)."""
    with Client(session=session, config=config) as client:
        return client.send(method, url, json_body=json_body, headers=headers)
