"""What one operation costs in the shipped stages, metered: the inputs of the all-in cost table.

    python -m bench.operations [--size quick|full] [--count N] [--kms-latency-ms 10] [--out docs]

moto in one process; the writer, reader and indexer stages built from the registry with their
deployed settings (``bench.stages.deployed_environment``: caches at their shipped bounds, the
fleet key table and the tenant registry on), each called as Lambda calls it (``app(event,
context)`` with an API Gateway proxy event; the indexer's stream handler with one KEYS_ONLY
record per invocation, its most expensive batching). After a warm-up (lazy imports, clients,
caches), ``--count`` operations of each kind, each checked:

- ``create``: POST a person (writer); ``index``: the indexer's follow-up of that write;
- ``read``: GET a person (reader); ``search``: POST .../people/search by email (reader);
- ``secret_put``: PUT a secret (writer); ``secret_get``: GET it (reader).

Per operation: the handler's mean and p50 duration (what Lambda bills, on this machine, with
moto's in-process DynamoDB and a simulated KMS round trip on every KMS call), DynamoDB request
units as billed on demand (``bench.aws.DynamoMeter``), KMS calls (warm caches: the workload
model gives them at scale), the log lines the function writes as Lambda's JSON log format
renders them (``lambda_json_line``) and the response body's bytes (for the API access log line).
Writes ``docs/benchmark-operations.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import statistics
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.aws import DynamoMeter, KmsMeter, StoredItems, aws_sandbox, ddb_client, kms_client
from bench.lambda_events import api_event, stream_event
from bench.measure import percentile
from bench.sizes import add_size_argument, size_from_argv
from bench.stages import REGION, ROOT, deployed_environment
from tools.sample import people

CUSTOMER = "bench-operations"
OPERATIONS = ("create", "index", "read", "search", "secret_put", "secret_get")
WARM_UP = 20
# Lambda's Python runtime (awslambdaric, lambda_runtime_log_utils.JsonFormatter) with the JSON log
# format: these fields, None ones dropped, json.JSONEncoder(ensure_ascii=False), one line each.
_LAMBDA_JSON = json.JSONEncoder(ensure_ascii=False)


def lambda_json_line(record: logging.LogRecord, request_id: str) -> str:
    """``record`` as Lambda's JSON log format writes it (an INFO line: no stack trace fields)."""
    created = datetime.fromtimestamp(record.created, tz=UTC)
    fields = {
        "timestamp": created.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "level": logging.getLevelName(min(50, max(0, record.levelno)) // 10 * 10),
        "message": record.getMessage(),
        "logger": record.name,
        "requestId": request_id,
    }
    return _LAMBDA_JSON.encode(fields) + "\n"


class LogMeter(logging.Handler):
    """The log lines the stages write (their own loggers, at the shipped INFO level), as Lambda ships them."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__(logging.INFO)
        self.prefixes = prefixes
        self.request_id = str(uuid.uuid4())
        self.lines = 0
        self.bytes = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(self.prefixes):
            self.lines += 1
            self.bytes += len(lambda_json_line(record, self.request_id).encode("utf-8"))


@contextmanager
def log_meter() -> Iterator[LogMeter]:
    from chalicelib.support.config import APP_NAME

    meter = LogMeter(("chalicelib", APP_NAME))
    root = logging.getLogger()
    root.addHandler(meter)
    try:
        yield meter
    finally:
        root.removeHandler(meter)


class Context:
    """The Lambda context the handlers read (the jobs' deadline)."""

    function_name = "bench"
    memory_limit_in_mb = 512

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def _app(stage: str, resources: dict[str, str], kms: Any, ddb: Any) -> Any:
    """The stage's app with its deployed settings (a Chalice app is its API stage's Lambda handler)."""
    from chalicelib.stages import settings_for
    from chalicelib.stages.app import create_app

    env = {**deployed_environment(stage, resources), "AWS_DEFAULT_REGION": REGION}
    return create_app(settings=settings_for(env), kms_client=kms, dynamodb_client=ddb)


def measure_operations(count: int, kms_latency_s: float, warm_up: int = WARM_UP) -> dict[str, Any]:
    warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported")
    data = people(count + warm_up, seed=31)
    rng = random.Random(31)
    with aws_sandbox() as resources:
        kms_meter, ddb_meter = KmsMeter(kms_latency_s), DynamoMeter(StoredItems())
        from chalicelib.stages.app import lambda_handlers

        def clients(stage: str) -> tuple[Any, Any]:
            """Each stage signs as itself (its own role on AWS), all metered together."""
            return kms_client(kms_meter, principal=stage), ddb_client(ddb_meter, principal=stage)

        writer, reader = _app("writer", resources, *clients("writer")), _app("reader", resources, *clients("reader"))
        index_beacons = lambda_handlers(_app("indexer", resources, *clients("indexer")), "indexer")["index_beacons"]
        ids: list[str] = []

        def call(app: Any, event: dict[str, Any], ok: int) -> dict[str, Any]:
            answer: dict[str, Any] = app(event, Context())
            if answer["statusCode"] != ok:
                raise RuntimeError(
                    f"{event['httpMethod']} {event['resource']}: {answer['statusCode']} {answer['body']}"
                )
            return answer

        def create(i: int) -> Any:
            answer = call(writer, api_event("POST", PEOPLE, {"customer_id": CUSTOMER}, data[i]), 201)
            ids.append(json.loads(answer["body"])["id"])
            return answer

        def index(i: int) -> Any:
            from chalicelib.store import layout

            keys = layout.person_key(CUSTOMER, ids[i])
            return index_beacons(stream_event(keys, resources["stream_arn"]), Context())

        def read(i: int) -> Any:
            answer = call(reader, api_event("GET", PERSON, {"customer_id": CUSTOMER, "person_id": ids[i]}), 200)
            if json.loads(answer["body"])["data"] != data[i]:
                raise RuntimeError("a read did not return what was written")
            return answer

        def search(i: int) -> Any:
            event = api_event("POST", SEARCH, {"customer_id": CUSTOMER}, {"email": data[i]["email"]})
            answer = call(reader, event, 200)
            if [item["id"] for item in json.loads(answer["body"])["items"]] != [ids[i]]:
                raise RuntimeError("a search did not find the person")
            return answer

        def secret_put(i: int) -> Any:
            params = {"customer_id": CUSTOMER, "secret_id": f"secret-{i}"}
            return call(writer, api_event("PUT", SECRET, params, {"value": f"token-{i}-{uuid.uuid4()}"}), 201)

        def secret_get(i: int) -> Any:
            return call(reader, api_event("GET", SECRET, {"customer_id": CUSTOMER, "secret_id": f"secret-{i}"}), 200)

        steps: dict[str, Callable[[int], Any]] = {
            "create": create,
            "index": index,
            "read": read,
            "search": search,
            "secret_put": secret_put,
            "secret_get": secret_get,
        }
        warm = list(range(warm_up))
        measured = list(range(warm_up, warm_up + count))
        for name in OPERATIONS:  # warm-up: imports, clients, caches; not counted
            for i in warm:
                steps[name](i)
        results = {}
        for name in OPERATIONS:
            order = measured if name in ("create", "index", "secret_put") else rng.sample(measured, len(measured))
            results[name] = _timed(name, steps[name], order, kms_meter, ddb_meter)
    return {"count": count, "kms_latency_ms": kms_latency_s * 1000, "operations": results}


PEOPLE = "/customers/{customer_id}/people"
PERSON = "/customers/{customer_id}/people/{person_id}"
SEARCH = "/customers/{customer_id}/people/search"
SECRET = "/customers/{customer_id}/secrets/{secret_id}"  # noqa: S105 - a route, not a credential


def _timed(name: str, step: Callable[[int], Any], order: list[int], kms: KmsMeter, ddb: DynamoMeter) -> dict[str, Any]:
    before = (kms.total(), ddb.write_units, ddb.read_units, dict(ddb.calls), ddb.seconds)
    durations: list[float] = []
    response_bytes = 0
    with log_meter() as logs:
        for i in order:
            started = time.perf_counter()
            answer = step(i)
            durations.append((time.perf_counter() - started) * 1000)
            if isinstance(answer, dict) and isinstance(answer.get("body"), str):
                response_bytes += len(answer["body"].encode("utf-8"))
    n = len(order)
    calls = {op: (ddb.calls[op] - before[3].get(op, 0)) / n for op in ddb.calls if ddb.calls[op] > before[3].get(op, 0)}
    return {
        "operations": n,
        "mean_ms": statistics.fmean(durations),
        "billed_ms": statistics.fmean(math.ceil(d) for d in durations),  # Lambda bills each invocation per started ms
        "dynamodb_ms": (ddb.seconds - before[4]) * 1000 / n,  # of mean_ms: inside DynamoDB requests (moto)
        "p50_ms": percentile(durations, 50),
        "p99_ms": percentile(durations, 99),
        "kms_calls": (kms.total() - before[0]) / n,
        "dynamodb_write_units": (ddb.write_units - before[1]) / n,
        "dynamodb_read_units": (ddb.read_units - before[2]) / n,
        "dynamodb_calls": calls,
        "log_lines": logs.lines / n,
        "log_bytes": logs.bytes / n,
        "response_bytes": response_bytes / n,
    }


def operations_table(document: dict[str, Any]) -> str:
    lines = [
        "| operation | mean ms | p50 ms | KMS calls | write units | read units | log lines | log bytes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in document["operations"].items():
        lines.append(
            f"| {name} | {r['mean_ms']:.2f} | {r['p50_ms']:.2f} | {r['kms_calls']:.3f} | "
            f"{r['dynamodb_write_units']:.2f} | {r['dynamodb_read_units']:.2f} | {r['log_lines']:.1f} | "
            f"{r['log_bytes']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    size = size_from_argv(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.operations", description=(__doc__ or "").split("\n")[0])
    add_size_argument(parser)
    parser.add_argument("--count", type=int, default=size.operations, help="timed operations of each kind")
    parser.add_argument("--kms-latency-ms", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)
    document = measure_operations(args.count, args.kms_latency_ms / 1000)
    print(operations_table(document))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark-operations.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
