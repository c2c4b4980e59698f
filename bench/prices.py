"""List prices the benchmark turns into dollars: stated once, with the date they were taken.

AWS us-east-1 public list prices, no free tier, as of 2026-11 (DynamoDB on demand since
its 2024-11 price cut). Prices change: check the AWS pricing pages before quoting a total.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_AS_OF = "2026-11, AWS us-east-1 list prices, no free tier"

KMS_PER_REQUEST = 0.03 / 10_000  # symmetric Encrypt, Decrypt, GenerateDataKey
KMS_PER_KEY_MONTH = 1.00  # one customer managed key
DYNAMODB_PER_WRITE_UNIT = 0.625 / 1_000_000  # on demand, per write request unit (1 KB)
DYNAMODB_PER_READ_UNIT = 0.125 / 1_000_000  # on demand, per read request unit (4 KB strongly consistent)
DYNAMODB_PER_GB_MONTH = 0.25  # standard table class storage
API_GATEWAY_REST_PER_REQUEST = 3.50 / 1_000_000  # REST API, first 333 million requests a month
LAMBDA_PER_REQUEST = 0.20 / 1_000_000  # requests only; duration (GB-seconds) not counted here
SECRETS_MANAGER_PER_SECRET_MONTH = 0.40
SECRETS_MANAGER_PER_CALL = 0.05 / 10_000
SSM_ADVANCED_PER_PARAMETER_MONTH = 0.05
SSM_ADVANCED_PER_CALL = 0.05 / 10_000  # API interactions with advanced parameters
SSM_STANDARD_PARAMETER_LIMIT = 10_000  # per account and region; standard storage and calls are free


def per_million_records(kms_calls: float, request_units: float, unit_price: float) -> float:
    """Dollars per million records from KMS calls and DynamoDB request units per record."""
    return 1_000_000 * (kms_calls * KMS_PER_REQUEST + request_units * unit_price)


@dataclass(frozen=True)
class SecretsWorkload:
    """Customer secrets a month, and the assumptions behind their price."""

    secrets: int = 10_000
    reads_per_secret: int = 100  # GetSecretValue / GetParameter / GET .../secrets/{id}
    writes_per_secret: int = 1  # one rotation (PUT) a month
    # pii-vault with caches off (an upper bound): one KMS call per write and per read; a write
    # is a transaction of two items (head and version) under 1 KB, twice the units of a write;
    # a read is at most two strongly consistent item reads (head, then the version it names).
    pii_vault_write_units: float = 4
    pii_vault_read_units: float = 2
    pii_vault_bytes_per_secret: int = 1024


def secrets_costs(w: SecretsWorkload = SecretsWorkload()) -> dict[str, float]:
    """Dollars a month for the same secrets in pii-vault, Secrets Manager and SSM Parameter Store."""
    reads, writes = w.secrets * w.reads_per_secret, w.secrets * w.writes_per_secret
    calls = reads + writes
    pii_vault = (
        KMS_PER_KEY_MONTH
        + calls * KMS_PER_REQUEST
        + writes * w.pii_vault_write_units * DYNAMODB_PER_WRITE_UNIT
        + reads * w.pii_vault_read_units * DYNAMODB_PER_READ_UNIT
        + w.secrets * w.pii_vault_bytes_per_secret / 1024**3 * DYNAMODB_PER_GB_MONTH
    )
    # The services below with their default AWS managed key (aws/secretsmanager, aws/ssm):
    # no key fee and no KMS requests billed to you, so their figures are lower bounds and
    # pii-vault's (its own key, caches off) an upper bound.
    return {
        "pii-vault": pii_vault,
        "pii-vault-with-api-gateway-and-lambda-requests": (
            pii_vault + calls * (API_GATEWAY_REST_PER_REQUEST + LAMBDA_PER_REQUEST)
        ),
        "secrets-manager": w.secrets * SECRETS_MANAGER_PER_SECRET_MONTH + calls * SECRETS_MANAGER_PER_CALL,
        "ssm-advanced-securestring": w.secrets * SSM_ADVANCED_PER_PARAMETER_MONTH + calls * SSM_ADVANCED_PER_CALL,
        "ssm-standard-securestring": 0.0,  # free, but at most SSM_STANDARD_PARAMETER_LIMIT parameters
    }
