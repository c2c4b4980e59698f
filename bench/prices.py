"""List prices the benchmark turns into dollars: each stated once, with where and when it was taken.

AWS public list prices, region us-east-1, no free tier, checked 2026-12-06 (``PRICES_AS_OF``);
``SOURCES`` names the page each comes from and what the check found. Prices change: check the
pages before quoting a total.
"""

from __future__ import annotations

from dataclasses import dataclass

REGION = "us-east-1"
PRICES_AS_OF = "2026-12-06, AWS us-east-1 list prices, no free tier"

KMS_PER_REQUEST = 0.03 / 10_000  # symmetric Encrypt, Decrypt, GenerateDataKey, GenerateMac, ReEncrypt
KMS_PER_KEY_MONTH = 1.00  # one customer managed key
DYNAMODB_PER_WRITE_UNIT = 0.625 / 1_000_000  # on demand, per write request unit (1 KB)
DYNAMODB_PER_READ_UNIT = 0.125 / 1_000_000  # on demand, per read request unit (4 KB strongly consistent)
DYNAMODB_PER_GB_MONTH = 0.25  # standard table class storage
API_GATEWAY_REST_PER_REQUEST = 3.50 / 1_000_000  # REST API, first 333 million requests a month
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
LAMBDA_PER_GB_SECOND = 0.0000166667  # x86_64 (the stages' architecture), first 6 billion GB-seconds a month
CLOUDWATCH_LOGS_PER_GB_INGESTED = 0.50  # standard log class, first 10 TB a month
CLOUDWATCH_EVENT_OVERHEAD_BYTES = 26  # PutLogEvents counts each event's UTF-8 message plus 26 bytes
XRAY_PER_TRACE_RECORDED = 5.00 / 1_000_000  # the functions trace actively (X-Ray)
SECRETS_MANAGER_PER_SECRET_MONTH = 0.40
SECRETS_MANAGER_PER_CALL = 0.05 / 10_000
SSM_ADVANCED_PER_PARAMETER_MONTH = 0.05
SSM_ADVANCED_PER_CALL = 0.05 / 10_000  # API interactions with advanced parameters (or higher throughput)
SSM_STANDARD_PARAMETER_LIMIT = 10_000  # per account and region; standard storage and calls are free

GB = 1024**3

# Where each price comes from, and what the check of 2026-12-06 found in the search tool's stored
# copies (the live pricing pages render their rate tables from a price list, so the stored text
# often lacks the figures; "not confirmed" marks a price kept as the repository had it).
SOURCES: dict[str, tuple[str, str]] = {
    "API Gateway REST": (
        "https://aws.amazon.com/api-gateway/pricing/",
        "REST APIs $3.50 per million, first 333 million a month: confirmed (a transcription of the page)",
    ),
    "Lambda": (
        "https://aws.amazon.com/lambda/pricing/",
        "$0.20 per million requests, $0.0000166667 per GB-second on x86 (US East): confirmed (a "
        "transcription of the page)",
    ),
    "DynamoDB on demand": (
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "a write unit per 1 KB, a read unit per 4 KB strongly consistent, half eventually consistent: "
        "confirmed on the page; $0.625 / $0.125 per million units (since the 2024-11 price cut): not "
        "confirmed (not in the stored text)",
    ),
    "KMS": (
        "https://aws.amazon.com/kms/pricing/",
        "$1 per customer managed key a month, $0.03 per 10,000 symmetric requests: third-party copies only",
    ),
    "CloudWatch Logs": (
        "https://aws.amazon.com/cloudwatch/pricing/",
        "$0.50 per GB ingested (standard log class, first tier): a third-party transcription; each "
        "event counted as its UTF-8 message plus 26 bytes (the PutLogEvents batch rule)",
    ),
    "X-Ray": (
        "https://aws.amazon.com/xray/pricing/",
        "$5.00 per million traces recorded: not confirmed; the default sampling (the first request "
        "each second, 5% of the rest): confirmed (X-Ray developer guide, sampling rules)",
    ),
    "Secrets Manager": (
        "https://aws.amazon.com/secrets-manager/pricing/",
        "$0.40 per secret a month, $0.05 per 10,000 API calls: confirmed (the page's pricing examples)",
    ),
    "SSM Parameter Store": (
        "https://aws.amazon.com/systems-manager/pricing/",
        "standard parameters free (at most 10,000, standard throughput), advanced $0.05 a month each "
        "and $0.05 per 10,000 API interactions: third-party copies only",
    ),
}


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
        + w.secrets * w.pii_vault_bytes_per_secret / GB * DYNAMODB_PER_GB_MONTH
    )
    # The services below with their default AWS managed key (aws/secretsmanager, aws/ssm): no key
    # fee, and the KMS requests they make on your behalf are not counted here, so their figures
    # are lower bounds and pii-vault's (its own key, caches off) an upper bound.
    return {
        "pii-vault": pii_vault,
        "pii-vault-with-api-gateway-and-lambda-requests": (
            pii_vault + calls * (API_GATEWAY_REST_PER_REQUEST + LAMBDA_PER_REQUEST)
        ),
        "secrets-manager": w.secrets * SECRETS_MANAGER_PER_SECRET_MONTH + calls * SECRETS_MANAGER_PER_CALL,
        "ssm-advanced-securestring": w.secrets * SSM_ADVANCED_PER_PARAMETER_MONTH + calls * SSM_ADVANCED_PER_CALL,
        "ssm-standard-securestring": 0.0,  # free, but at most SSM_STANDARD_PARAMETER_LIMIT parameters
    }
