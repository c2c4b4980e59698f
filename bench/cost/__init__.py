"""The all-in cost table: dollars per million operations, every service an operation touches.

    python -m bench.cost [--dir docs]

Reads what the other parts of ``make bench`` measured (``--dir``): ``benchmark-operations.json``
(the shipped stages, one operation at a time: duration, DynamoDB units, log bytes),
``workload.json`` (KMS calls and fleet key table reads per operation at scale: the goal row of
the shipped design), ``benchmark.json`` (the seed's per-field design and the ESDK per record)
and, if present, ``benchmark-lookup.json`` (a search without an index). Prices: bench/prices.py.
Writes ``cost.json``, ``cost.md`` (the table with its assumptions) and ``cost.png`` there.

Per operation, per million:

- API Gateway REST: one request per API call;
- Lambda: requests, and GB-seconds at the function's memory (the registry's) for the measured
  mean duration with the time spent in moto's DynamoDB replaced by ``DYNAMODB_CALL_MS`` per
  request (moto's GSI query and transactions take time in proportion to the table), billed per
  started millisecond;
- DynamoDB on-demand request units, as metered (``bench.aws.DynamoMeter``), plus for pii-vault
  reads the fleet key table's reads and writes per read at scale;
- KMS requests: pii-vault's at scale (workload model); the baselines' per operation (they cache
  nothing);
- CloudWatch Logs ingestion: the function's log lines as Lambda's JSON format writes them
  (measured) and the API access log line (the stage's format, rendered for the request), each
  plus PutLogEvents' 26 bytes per event;
- X-Ray: traces recorded, at the default sampling rule's 5% (at low traffic the first request
  of each second is traced too: up to every request, $5 per million).

The baselines are priced as if deployed the same way (API Gateway, a 512 MB function, the same
audit line and access log); their durations are their own code's, measured in ``bench.run``.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench import prices
from bench.stages import stage
from chalicelib.stages import Trigger

XRAY_SAMPLED = 0.05  # the default sampling rule beyond its reservoir of one request a second
# Assumed: one DynamoDB request's latency seen from Lambda in the same region ("single-digit
# milliseconds"); it stands in for the time the request took on moto.
DYNAMODB_CALL_MS = 5.0
NAIVE_PAGE = 100  # people per page of the naive lookup (bench.lookup: GET .../people?limit=100)
FLEET_READ_UNITS = 0.5  # a fleet key table GetItem: eventually consistent, an entry well under 4 KB
FLEET_WRITE_UNITS = 1.0  # a fleet key table PutItem: an entry under 1 KB
STORED_DESIGNS = {
    "pii-vault-cache-on": "pii-vault",
    "naive-per-field-kms": "seed: KMS per field",
    "aws-encryption-sdk-per-record": "ESDK per record",
}
COMPONENTS = ("api_gateway", "lambda", "dynamodb", "kms", "logs", "xray")
ROUTES = {
    "create": ("POST", "/customers/{customer_id}/people", 201),
    "read": ("GET", "/customers/{customer_id}/people/{person_id}", 200),
    "search": ("POST", "/customers/{customer_id}/people/search", 200),
    "secret_put": ("PUT", "/customers/{customer_id}/secrets/{secret_id}", 201),
    "secret_get": ("GET", "/customers/{customer_id}/secrets/{secret_id}", 200),
}


@dataclass(frozen=True)
class Usage:
    """What one operation uses."""

    api_requests: float = 1.0
    invocations: float = 1.0
    billed_ms: float = 0.0  # per operation, all invocations
    memory_mb: int = 512
    write_units: float = 0.0
    read_units: float = 0.0
    kms_requests: float = 0.0
    log_bytes: float = 0.0
    fixed_per_call: float = 0.0  # a managed service's own per-call price (Secrets Manager, SSM)

    def dollars_per_million(self) -> dict[str, float]:
        gb_seconds = self.billed_ms / 1000 * self.memory_mb / 1024
        cost = {
            "api_gateway": self.api_requests * prices.API_GATEWAY_REST_PER_REQUEST,
            "lambda": self.invocations * prices.LAMBDA_PER_REQUEST + gb_seconds * prices.LAMBDA_PER_GB_SECOND,
            "dynamodb": self.write_units * prices.DYNAMODB_PER_WRITE_UNIT
            + self.read_units * prices.DYNAMODB_PER_READ_UNIT,
            "kms": self.kms_requests * prices.KMS_PER_REQUEST + self.fixed_per_call,
            "logs": self.log_bytes / prices.GB * prices.CLOUDWATCH_LOGS_PER_GB_INGESTED,
            "xray": self.invocations * XRAY_SAMPLED * prices.XRAY_PER_TRACE_RECORDED,
        }
        per_million = {k: v * 1_000_000 for k, v in cost.items()}
        per_million["total"] = sum(per_million.values())
        return per_million


def access_log_bytes(method: str, route: str, status: int, response_bytes: float, latency_ms: float) -> int:
    """The API stage's access log line (its JSON format) rendered for one request, plus the event overhead."""
    from infra.observability import ACCESS_LOG_FORMAT

    ids = {"customer_id": "acme-corporation", "person_id": uuid.uuid4().hex, "secret_id": "api-token-0001"}
    values = {
        "$context.requestId": str(uuid.uuid4()),
        "$context.extendedRequestId": "Ab1Cd2Ef3Gh4IjK=",
        "$context.requestTimeEpoch": "1796000000000",
        "$context.httpMethod": method,
        "$context.resourcePath": route,
        "$context.path": "/api" + route.format(**ids),
        "$context.status": str(status),
        "$context.responseLength": str(round(response_bytes)),
        "$context.responseLatency": str(round(latency_ms) + 12),
        "$context.integration.status": str(status),
        "$context.integration.latency": str(round(latency_ms)),
        "$context.error.responseType": "-",
        "$context.identity.userArn": "arn:aws:sts::123456789012:assumed-role/app-backend/app-backend-session",
        "$context.identity.accountId": "123456789012",
        "$context.identity.sourceIp": "203.0.113.10",
        "$context.xrayTraceId": "Root=1-67a8f3b2-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=0",
    }
    line = json.dumps({key: values[value] for key, value in ACCESS_LOG_FORMAT.items()}, separators=(",", ":"))
    return len(line.encode("utf-8")) + prices.CLOUDWATCH_EVENT_OVERHEAD_BYTES


def function_log_bytes(measured: Mapping[str, Any]) -> float:
    """The function's log lines of one operation as CloudWatch Logs counts them."""
    return float(measured["log_bytes"]) + float(measured["log_lines"]) * prices.CLOUDWATCH_EVENT_OVERHEAD_BYTES


def billed_ms(mean_ms: float, dynamodb_ms: float, dynamodb_calls: float) -> float:
    """The billed duration of an invocation: its own time, and ``DYNAMODB_CALL_MS`` per DynamoDB request."""
    return float(math.ceil(max(0.0, mean_ms - dynamodb_ms) + dynamodb_calls * DYNAMODB_CALL_MS))


def function_usage(measured: Mapping[str, Any], memory_mb: int) -> Usage:
    """One function invocation as ``bench.operations`` measured it."""
    calls = float(sum(measured["dynamodb_calls"].values()))
    return Usage(
        api_requests=0.0,
        invocations=1.0,
        billed_ms=billed_ms(float(measured["mean_ms"]), float(measured.get("dynamodb_ms", 0.0)), calls),
        memory_mb=memory_mb,
        write_units=float(measured["dynamodb_write_units"]),
        read_units=float(measured["dynamodb_read_units"]),
        kms_requests=float(measured["kms_calls"]),
        log_bytes=function_log_bytes(measured),
    )


def plus(a: Usage, b: Usage) -> Usage:
    return Usage(
        api_requests=a.api_requests + b.api_requests,
        invocations=a.invocations + b.invocations,
        billed_ms=a.billed_ms + b.billed_ms,
        memory_mb=a.memory_mb,
        write_units=a.write_units + b.write_units,
        read_units=a.read_units + b.read_units,
        kms_requests=a.kms_requests + b.kms_requests,
        log_bytes=a.log_bytes + b.log_bytes,
        fixed_per_call=a.fixed_per_call + b.fixed_per_call,
    )


@dataclass(frozen=True)
class AtScale:
    """Per operation at scale, from the workload model's goal row of the shipped design."""

    row: str
    kms_per_write: float  # both views' data keys of a person write
    kms_per_read: float
    fleet_gets_per_read: float
    fleet_puts_per_read: float


def at_scale(workload: Mapping[str, Any]) -> AtScale:
    from bench.workload.designs import SHIPPED_DESIGN
    from bench.workload.report import GOAL_ROW

    for row in workload["rows"]:
        if row["row"] == GOAL_ROW and row["design"] == SHIPPED_DESIGN:
            uniform = next(r for r in row["runs"] if r["locality"] == "uniform")
            reads = uniform["reads"]
            return AtScale(
                f"{GOAL_ROW} ({SHIPPED_DESIGN}, reads uniform over the history)",
                float(row["write"]),
                float(row["read_uniform"]),
                uniform.get("fleet_gets", 0) / reads,
                uniform.get("fleet_puts", 0) / reads,
            )
    raise ValueError(f"workload.json has no {GOAL_ROW!r} row for the {SHIPPED_DESIGN} design")


def _api(op: str, function: Usage, measured: Mapping[str, Any]) -> Usage:
    method, route, status = ROUTES[op]
    access = access_log_bytes(method, route, status, measured["response_bytes"], measured["mean_ms"])
    return replace(function, api_requests=1.0, log_bytes=function.log_bytes + access)


def pii_vault_rows(operations: Mapping[str, Any], scale: AtScale) -> list[dict[str, Any]]:
    ops = operations["operations"]
    fleet = Usage(
        api_requests=0.0,
        invocations=0.0,
        read_units=scale.fleet_gets_per_read * FLEET_READ_UNITS,
        write_units=scale.fleet_puts_per_read * FLEET_WRITE_UNITS,
    )

    def at(op: str, role: str, kms: float, *, opens: bool) -> Usage:
        memory = stage(role).function_for(Trigger.HTTP).memory_mb
        usage = replace(_api(op, function_usage(ops[op], memory), ops[op]), kms_requests=kms)
        return plus(usage, fleet) if opens else usage

    index = function_usage(ops["index"], stage("indexer").function_for(Trigger.STREAM).memory_mb)
    rows = [
        ("create", plus(at("create", "writer", scale.kms_per_write, opens=False), index), "writer + indexer follow-up"),
        ("read", at("read", "reader", scale.kms_per_read, opens=True), "reader"),
        ("search", at("search", "reader", scale.kms_per_read, opens=True), "reader, beacon index"),
        ("secret put", at("secret_put", "writer", scale.kms_per_write / 2, opens=False), "writer (one view's key)"),
        ("secret get", at("secret_get", "reader", scale.kms_per_read, opens=True), "reader"),
    ]
    return [_row("pii-vault (shipped)", op, usage, basis) for op, usage, basis in rows]


def baseline_rows(results: list[Mapping[str, Any]], operations: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The seed's per-field design and the ESDK per record, deployed the same way."""
    ops = operations["operations"]
    by = {r["approach"]: r for r in results}
    rows = []
    for approach, design in (
        ("naive-per-field-kms", "seed: KMS per field"),
        ("aws-encryption-sdk-per-record", "ESDK per record"),
    ):
        r = by.get(approach)
        if r is None:
            continue
        for op, phase in (("create", "write"), ("read", "read")):
            logged = ops[op]
            usage = _api(
                op,
                Usage(
                    invocations=1.0,
                    # one DynamoDB request per operation (PutItem or GetItem)
                    billed_ms=billed_ms(r[f"mean_ms_{phase}"], r.get(f"dynamodb_ms_per_record_{phase}", 0.0), 1.0),
                    write_units=r["dynamodb_write_units_per_record_write"] if phase == "write" else 0.0,
                    read_units=r["dynamodb_read_units_per_record_read"] if phase == "read" else 0.0,
                    kms_requests=r[f"kms_calls_per_record_{phase}"],
                    log_bytes=function_log_bytes(logged),
                ),
                logged,
            )
            rows.append(_row(design, op, usage, f"bench.run, {r['records']} records"))
    return rows


def search_without_index(lookup: Mapping[str, Any] | None, operations: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Any design without a search index: query the tenant and decrypt every email (bench.lookup)."""
    if not lookup:
        return []
    naive = [r for r in lookup["rows"] if str(r.get("approach", "")).startswith("naive")]
    if not naive:
        return []
    r = min(naive, key=lambda row: row["people"])
    logged = operations["operations"]["search"]
    # A lower bound of its duration: one DynamoDB request per page of 100 people, the simulated
    # round trip per KMS call; the decryption of every email (CPU) not counted.
    pages = math.ceil(r["people"] / NAIVE_PAGE)
    duration = pages * DYNAMODB_CALL_MS + r["kms_calls"] * float(lookup.get("kms_latency_ms", 10.0))
    usage = _api(
        "search",
        Usage(
            billed_ms=float(math.ceil(duration)),
            read_units=r["rcu"],
            kms_requests=r["kms_calls"],
            log_bytes=function_log_bytes(logged),
        ),
        logged,
    )
    basis = f"bench.lookup, {r['people']:,} people; Lambda: {pages} pages, a lower bound"
    return [_row("no index (scan + decrypt)", "search", usage, basis)]


def secrets_rows() -> list[dict[str, Any]]:
    rows = []
    for design, per_call, month in (
        ("Secrets Manager", prices.SECRETS_MANAGER_PER_CALL, prices.SECRETS_MANAGER_PER_SECRET_MONTH),
        ("SSM advanced SecureString", prices.SSM_ADVANCED_PER_CALL, prices.SSM_ADVANCED_PER_PARAMETER_MONTH),
        ("SSM standard SecureString", 0.0, 0.0),
    ):
        usage = Usage(api_requests=0.0, invocations=0.0, fixed_per_call=per_call)
        for op in ("secret put", "secret get"):
            rows.append(_row(design, op, usage, "list price per call", per_secret_month=month))
    return rows


def _row(design: str, operation: str, usage: Usage, basis: str, **extra: Any) -> dict[str, Any]:
    return {
        "design": design,
        "operation": operation,
        "basis": basis,
        "usage": asdict(usage),
        "per_million": usage.dollars_per_million(),
        **extra,
    }


def cost_rows(directory: Path) -> dict[str, Any]:
    def load(name: str) -> Any:
        path = directory / name
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    operations, workload, results = load("benchmark-operations.json"), load("workload.json"), load("benchmark.json")
    if operations is None or workload is None:
        raise FileNotFoundError(f"{directory} needs benchmark-operations.json and workload.json (make bench)")
    scale = at_scale(workload)
    rows = pii_vault_rows(operations, scale)
    rows += baseline_rows(results or [], operations)
    rows += search_without_index(load("benchmark-lookup.json"), operations)
    rows += secrets_rows()
    stored = {
        design: r["stored_bytes_per_record"]
        for r in results or []
        for approach, design in STORED_DESIGNS.items()
        if r["approach"] == approach
    }
    return {
        "prices": prices.PRICES_AS_OF,
        "stored_bytes_per_person": stored,
        "sources": prices.SOURCES,
        "at_scale": asdict(scale),
        "xray_sampled": XRAY_SAMPLED,
        "dynamodb_call_ms": DYNAMODB_CALL_MS,
        "operations_measured": operations["count"],
        "rows": rows,
    }


def cost_table(document: Mapping[str, Any]) -> str:
    header = (
        "| design | operation | API Gateway | Lambda | DynamoDB | KMS / service | CloudWatch Logs | X-Ray | "
        "**total** | basis |"
    )
    lines = [header, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in document["rows"]:
        c = row["per_million"]
        cells = " | ".join(f"{c[k]:,.2f}" for k in COMPONENTS)
        lines.append(f"| {row['design']} | {row['operation']} | {cells} | **{c['total']:,.2f}** | {row['basis']} |")
    return "\n".join(lines)
