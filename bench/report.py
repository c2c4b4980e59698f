"""Markdown tables and summary lines of the benchmark."""

from __future__ import annotations

from typing import Any

from bench.prices import PRICES_AS_OF, SSM_STANDARD_PARAMETER_LIMIT, SecretsWorkload, secrets_costs

COLUMNS = (
    ("approach", "approach", "{}"),
    ("KMS calls/record write", "kms_calls_per_record_write", "{:.3f}"),
    ("KMS calls/record read", "kms_calls_per_record_read", "{:.3f}"),
    ("records/s write", "records_per_s_write", "{:.0f}"),
    ("records/s read", "records_per_s_read", "{:.0f}"),
    ("p50 ms write", "p50_ms_write", "{:.2f}"),
    ("p99 ms write", "p99_ms_write", "{:.2f}"),
    ("p50 ms read", "p50_ms_read", "{:.2f}"),
    ("p99 ms read", "p99_ms_read", "{:.2f}"),
    ("stored bytes/record", "stored_bytes_per_record", "{:.0f}"),
    ("ciphertext overhead bytes/field", "ciphertext_overhead_bytes_per_field", "{:.0f}"),
    ("$ per 1M records written", "usd_per_million_records_write", "{:.2f}"),
    ("$ per 1M records read", "usd_per_million_records_read", "{:.2f}"),
)


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def results_table(results: list[dict[str, Any]]) -> str:
    return markdown([c[0] for c in COLUMNS], [[fmt.format(r[key]) for _, key, fmt in COLUMNS] for r in results])


def ratios(results: list[dict[str, Any]]) -> dict[str, float]:
    by = {r["approach"]: r for r in results}
    naive, off = by.get("naive-per-field-kms"), by.get("pii-vault-cache-off")
    if not naive or not off:
        return {}
    return {
        "write": naive["kms_calls_per_record_write"] / max(off["kms_calls_per_record_write"], 1e-12),
        "read": naive["kms_calls_per_record_read"] / max(off["kms_calls_per_record_read"], 1e-12),
    }


# Writes with the masked projection (as deployed) against writes without it, same run, same caches.
MASKED_VIEW_PAIRS = (
    ("pii-vault-cache-off", "pii-vault-cache-off-no-masked-view"),
    ("pii-vault-cache-on", "pii-vault-cache-on-no-masked-view"),
)


def masked_view_table(results: list[dict[str, Any]]) -> str:
    """The masked view's write cost side by side: KMS calls, rate, latency, stored bytes per record."""
    by = {r["approach"]: r for r in results}
    lines = [
        "| writes | masked view | KMS calls/record | records/s | p50 ms | p99 ms | stored bytes/record |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for with_view, without in MASKED_VIEW_PAIRS:
        for name, label in ((with_view, "with"), (without, "without")):
            row = by.get(name)
            if row is None:
                continue
            lines.append(
                f"| {with_view.removeprefix('pii-vault-')} | {label} | {row['kms_calls_per_record_write']:.4g} "
                f"| {row['records_per_s_write']:.0f} | {row['p50_ms_write']:.2f} | {row['p99_ms_write']:.2f} "
                f"| {row['stored_bytes_per_record']:.0f} |"
            )
    return "\n".join(lines) if len(lines) > 2 else ""


def cost_note() -> str:
    return (
        f"Dollars: KMS requests plus DynamoDB on-demand request units per record as metered ({PRICES_AS_OF}; "
        "bench/prices.py). Not included here: API Gateway, Lambda, logs, the keys' monthly fees, storage; "
        "the all-in table is `python -m bench.cost` (docs/cost.md)."
    )


def secrets_line(workload: SecretsWorkload = SecretsWorkload()) -> str:
    """10,000 customer secrets a month in pii-vault, Secrets Manager and SSM Parameter Store."""
    cost = secrets_costs(workload)
    return (
        f"{workload.secrets:,} customer secrets a month, each read {workload.reads_per_secret} times and written "
        f"{workload.writes_per_secret} time(s): pii-vault ${cost['pii-vault']:,.2f} (one KMS key, caches off, "
        f"DynamoDB on demand; ${cost['pii-vault-with-api-gateway-and-lambda-requests']:,.2f} with API Gateway and "
        f"Lambda requests), Secrets Manager ${cost['secrets-manager']:,.2f}, SSM Parameter Store SecureString "
        f"${cost['ssm-advanced-securestring']:,.2f} as advanced parameters or "
        f"${cost['ssm-standard-securestring']:,.2f} as standard ones "
        f"(at most {SSM_STANDARD_PARAMETER_LIMIT:,} per account and region, "
        f"standard throughput); both services with their "
        f"AWS managed key. {PRICES_AS_OF}; bench/prices.py."
    )
