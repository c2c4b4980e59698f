"""Lookup by email: beacon search against "query the tenant and decrypt every record".

    python -m bench.lookup [--size quick|full] [--people 1000 10000] [--lookups 50] [--naive-lookups 10]
                           [--kms-latency-ms 10] [--out docs/benchmark-lookup.json]
    python -m bench.lookup --lag 20     # indexing lag on the local stack (make dev's setup)

moto in one process, the shipped apps through ``chalice.test.Client`` (writer key cache
at its shipped bounds), the indexer fed from the table's stream as ``make dev`` feeds it,
a simulated KMS round trip on every KMS call. Per lookup: KMS calls, DynamoDB read
capacity units (computed from the item sizes the reads returned, with DynamoDB's
rounding: 4 KB per strongly consistent item or query page, half for the eventually
consistent GSI), p50/p99 latency. Each lookup runs on a cold reader (no data key cached,
as a new container or a first request for a tenant), so the KMS column is the worst case.
Writes: the writer's own cost is the same with or without beacons (it is unchanged);
the indexer's extra work per write is counted. Numbers, not assertions.
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
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.aws import aws_sandbox, item_size
from bench.measure import percentile
from bench.sizes import add_size_argument, size_from_argv
from bench.stages import REGION, ROOT


def person(n: int, rng: random.Random) -> dict[str, Any]:
    return {
        "name": rng.choice(["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald"]) + f"{n}",
        "surname": rng.choice(["Lovelace", "Hopper", "Turing", "Liskov", "Knuth"]),
        "email": f"user{n}.{rng.randrange(10**6)}@example{n % 7}.com",
        "dob": f"19{rng.randrange(40, 99)}-0{rng.randrange(1, 9)}-1{rng.randrange(0, 9)}",
        "address": {"line1": f"{n} Main St", "city": "Springfield", "postal_code": "12345", "country": "US"},
    }


class Meter:
    """KMS calls (with a simulated round trip) and DynamoDB read units of attached clients."""

    def __init__(self, kms_latency_s: float) -> None:
        self.kms: Counter[str] = Counter()
        self.rcu = 0.0
        self.writes: Counter[str] = Counter()
        self.wcu = 0.0
        self._latency = kms_latency_s

    def attach_kms(self, client: Any) -> Any:
        def before(model: Any, **_: Any) -> None:
            self.kms[model.name] += 1
            if self._latency:
                time.sleep(self._latency)

        client.meta.events.register("before-call.kms.*", before)
        return client

    def attach_ddb(self, client: Any) -> Any:
        def after(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
            name = model.name
            if name == "Query":
                sizes = sum(item_size(i) for i in parsed.get("Items", []))
                units = max(1, math.ceil(sizes / 4096))
                self.rcu += units * (0.5 if self._index_query else 1.0)
            elif name == "BatchGetItem":
                for items in parsed.get("Responses", {}).values():
                    self.rcu += sum(max(1, math.ceil(item_size(i) / 4096)) for i in items)
            elif name == "GetItem" and parsed.get("Item"):
                self.rcu += max(1, math.ceil(item_size(parsed["Item"]) / 4096))
            elif name in ("UpdateItem", "PutItem", "DeleteItem"):
                self.writes[name] += 1

        def before(params: dict[str, Any], model: Any, **_: Any) -> None:
            self._index_query = model.name == "Query" and "IndexName" in params

        self._index_query = False
        # The API parameters (IndexName) are visible before serialisation, not at before-call.
        client.meta.events.register("before-parameter-build.dynamodb.*", lambda **kw: before(kw["params"], kw["model"]))
        client.meta.events.register("after-call.dynamodb.*", after)
        return client

    def reset(self) -> None:
        self.kms.clear()
        self.rcu = 0.0
        self.writes.clear()


def run_size(count: int, lookups: int, naive_lookups: int, kms_latency_s: float) -> list[dict[str, Any]]:
    import boto3
    from chalice.test import Client

    from chalicelib.stages.app import create_app
    from chalicelib.stages.wiring import Clients, build_indexer
    from chalicelib.support.config import Settings
    from tools.devstack import LOCAL_CALLER, LOCAL_CALLER_ROLE
    from tools.streampoll import StreamPoller, streams_client

    callers: dict[str, Any] = {"allowed_callers": (LOCAL_CALLER_ROLE,), "local_caller": LOCAL_CALLER}
    rng = random.Random(count)
    data = [person(n, rng) for n in range(count)]
    customer = f"bench{count}"
    with aws_sandbox():
        reader_meter, indexer_meter = Meter(kms_latency_s), Meter(kms_latency_s)
        writer = create_app(
            settings=Settings("writer", region=REGION, **callers),
            kms_client=boto3.client("kms", region_name=REGION),
            dynamodb_client=boto3.client("dynamodb", region_name=REGION),
        )
        indexer_ddb = indexer_meter.attach_ddb(boto3.client("dynamodb", region_name=REGION))
        indexer = build_indexer(
            Settings("indexer", region=REGION),
            Clients.of(indexer_meter.attach_kms(boto3.client("kms", region_name=REGION)), indexer_ddb),
        )
        arn = indexer_ddb.describe_table(TableName="pii-vault")["Table"]["LatestStreamArn"]
        poller = StreamPoller(streams_client(region_name=REGION), arn, indexer.handle_records)

        write_ms: list[float] = []
        ids: list[str] = []
        with Client(writer) as client:
            for body in data:
                started = time.perf_counter()
                response = client.http.post(
                    f"/customers/{customer}/people", body=json.dumps(body), headers={"Content-Type": "application/json"}
                )
                write_ms.append((time.perf_counter() - started) * 1000)
                ids.append(json.loads(response.body)["id"])
        indexer_meter.reset()
        started = time.perf_counter()
        poller.drain()
        index_s = time.perf_counter() - started
        indexed = {
            "approach": "indexer (per write)",
            "people": count,
            "kms_calls": sum(indexer_meter.kms.values()) / count,
            "kms_by_operation": dict(indexer_meter.kms),
            "ddb_writes": sum(indexer_meter.writes.values()) / count,
            "ms_per_record": index_s * 1000 / count,
            "writer_p50_ms": percentile(write_ms, 50),
            "writer_p99_ms": percentile(write_ms, 99),
            "beacons_written": poller.counts["written"],
        }

        def cold_reader() -> Any:
            # A new container: nothing cached (data keys, beacon root).
            return create_app(
                settings=Settings(
                    "reader", region=REGION, reader_key_cache_seconds=0, reader_key_cache_max_entries=0, **callers
                ),
                kms_client=reader_meter.attach_kms(boto3.client("kms", region_name=REGION)),
                dynamodb_client=reader_meter.attach_ddb(boto3.client("dynamodb", region_name=REGION)),
            )

        def measure(name: str, runs: int, lookup: Callable[[Any, str], list[str]]) -> dict[str, Any]:
            latencies, kms, rcu = [], [], []
            for index in rng.sample(range(count), runs):
                with Client(cold_reader()) as client:
                    reader_meter.reset()
                    started = time.perf_counter()
                    found = lookup(client, data[index]["email"])
                    latencies.append((time.perf_counter() - started) * 1000)
                    if found != [ids[index]]:
                        raise AssertionError(f"{name}: wrong answer")
                    kms.append(sum(reader_meter.kms.values()))
                    rcu.append(reader_meter.rcu)
            return {
                "approach": name,
                "people": count,
                "lookups": runs,
                "kms_calls": statistics.mean(kms),
                "rcu": statistics.mean(rcu),
                "p50_ms": percentile(latencies, 50),
                "p99_ms": percentile(latencies, 99),
            }

        def beacon(client: Any, email: str) -> list[str]:
            response = client.http.post(
                f"/customers/{customer}/people/search",
                body=json.dumps({"email": email}),
                headers={"Content-Type": "application/json"},
            )
            return [item["id"] for item in json.loads(response.body)["items"]]

        def naive(client: Any, email: str) -> list[str]:
            found, token = [], None
            while True:
                path = f"/customers/{customer}/people?limit=100&fields=email" + (f"&next={token}" if token else "")
                page = json.loads(client.http.get(path).body)
                found += [item["id"] for item in page["items"] if item["data"]["email"] == email]
                token = page["next"]
                if not token:
                    return found

        return [
            indexed,
            measure("beacon search", lookups, beacon),
            measure("naive: query tenant + decrypt all", naive_lookups, naive),
        ]


def measure_lag(samples: int) -> dict[str, Any]:
    """Create -> first search hit, through the local stack (stream poller as in make dev)."""
    import requests

    from tools.devstack import DevStack

    lags = []
    with DevStack.on_free_ports() as stack:
        for n in range(samples):
            body = person(n, random.Random(n))
            started = time.perf_counter()
            created = requests.post(f"{stack.writer_url}/customers/lag/people", json=body, timeout=10)
            created.raise_for_status()
            while True:
                found = requests.post(
                    f"{stack.reader_url}/customers/lag/people/search", json={"email": body["email"]}, timeout=10
                ).json()["items"]
                if found:
                    break
                time.sleep(0.02)
            lags.append((time.perf_counter() - started) * 1000)
    return {"samples": samples, "p50_ms": percentile(lags, 50), "p99_ms": percentile(lags, 99), "max_ms": max(lags)}


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| approach | people | KMS calls / lookup | read units / lookup | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "rcu" in r:
            lines.append(
                f"| {r['approach']} | {r['people']:,} | {r['kms_calls']:.2f} | {r['rcu']:.1f} | "
                f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
            )
    lines += [
        "",
        "| writes | people | writer p50 ms | writer p99 ms | indexer KMS calls / write | "
        "indexer DynamoDB writes / write | indexer ms / write |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "ddb_writes" in r:
            lines.append(
                f"| with beacons | {r['people']:,} | {r['writer_p50_ms']:.1f} | {r['writer_p99_ms']:.1f} | "
                f"{r['kms_calls']:.4f} | {r['ddb_writes']:.2f} | {r['ms_per_record']:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    size = size_from_argv(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.lookup", description=(__doc__ or "").split("\n")[0])
    add_size_argument(parser)
    parser.add_argument("--people", type=int, nargs="+", default=list(size.lookup_people))
    parser.add_argument("--lookups", type=int, default=size.lookups)
    parser.add_argument("--naive-lookups", type=int, default=size.naive_lookups)
    parser.add_argument("--kms-latency-ms", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmark-lookup.json")
    parser.add_argument("--lag", type=int, metavar="SAMPLES", help="measure indexing lag on a local stack instead")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported")
    logging.getLogger("chalicelib").disabled = True  # audit lines per request would drown the tables
    if args.lag:
        print(json.dumps(measure_lag(args.lag), indent=2))
        return 0
    rows: list[dict[str, Any]] = []
    for count in args.people:
        rows += run_size(count, min(args.lookups, count), min(args.naive_lookups, count), args.kms_latency_ms / 1000)
        print(table(rows), file=sys.stderr, flush=True)
    print(table(rows))
    document = {"size": args.size, "kms_latency_ms": args.kms_latency_ms, "rows": rows}
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
