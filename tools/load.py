"""Load the local system with concurrent clients, then prove that nothing was lost.

N client threads (default 16 x 500 operations) run a mixed workload of create, patch,
read and delete against the writer and reader endpoints. Each client owns the people it
creates (clients share tenants, not records), so it knows what every acknowledged write
left behind. Afterwards the table is scanned raw and every record a client believes
live is read back through the reader: it must be present, at the acknowledged version,
and decrypt to exactly what was sent; every acknowledged delete must be gone. A write
that got no definite answer (no response: timeout, refused or reset connection; or a
5xx) is "unanswered": either outcome is accepted for its record, it is counted apart
from the acknowledged writes, and a stored person nobody was told about must be one of
the unanswered creates. Then the whole record (tools/load_check.py): no item in the run's
tenants that does not read as a person (no stub from a late beacon or masked write), the
masked view of every live person is the masking of its full view at its version, and
search by email finds every live person within the indexer's lag.

    python -m tools.load [--clients 16] [--ops 500] [--max-seconds 600] [--seed 1]
    python -m tools.load --writer-url URL --reader-url URL --moto-url URL [--masked-url URL]   # a running `make dev`

Without URLs it starts its own DevStack on free loopback ports. Only loopback URLs are
accepted: this is a test of the local system, never of a deployed one. It prints the
numbers; it does not judge speed. Exit status 1 if anything was lost or any 5xx seen.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from tools import load_check as check
from tools.load_check import Record
from tools.sample import random_person

OPS = ("create", "patch", "read", "delete")
WEIGHTS = (30, 25, 35, 10)
TENANTS = 4
TIMEOUT_S = check.TIMEOUT_S
MAX_CLIENTS = 128
MAX_OPS_PER_CLIENT = 100_000


class LoadError(RuntimeError):
    """Bad arguments (e.g. a non-loopback URL)."""


def require_loopback(url: str) -> str:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise LoadError(f"{url}: only loopback URLs are allowed (127.0.0.1, ::1, localhost)")
    return url.rstrip("/")


def check_bounds(clients: int, operations: int) -> None:
    if not 1 <= clients <= MAX_CLIENTS or not 1 <= operations <= MAX_OPS_PER_CLIENT:
        raise LoadError(f"clients must be 1-{MAX_CLIENTS} and operations 1-{MAX_OPS_PER_CLIENT}")


# -- the workload ----------------------------------------------------------------------


# One operation's outcome: (op, HTTP status, or the exception's name when none arrived).
Outcome = tuple[str, int | str]


@dataclass
class ClientResult:
    records: list[Record] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=lambda: {op: [] for op in OPS})
    statuses: Counter[Outcome] = field(default_factory=Counter)  # (op, status or exception name)
    read_mismatches: int = 0
    unanswered: Counter[str] = field(default_factory=Counter)  # writes without a definite answer, by op


class Client:
    """One simulated client: its own session, its own records, a deterministic random stream."""

    def __init__(self, index: int, writer_url: str, reader_url: str, tenants: Sequence[str], seed: int) -> None:
        self.rng = random.Random(seed * 1000 + index)
        self.writer, self.reader = writer_url, reader_url
        self.tenants = tenants
        self.session = requests.Session()
        self.result = ClientResult()
        self.live: list[Record] = []

    def _call(self, op: str, method: str, url: str, **kwargs: Any) -> requests.Response | None:
        started = time.perf_counter()
        try:
            response = self.session.request(method, url, timeout=TIMEOUT_S, **kwargs)
        except requests.RequestException as exc:
            self.result.latencies[op].append(time.perf_counter() - started)
            self.result.statuses[(op, type(exc).__name__)] += 1
            return None
        self.result.latencies[op].append(time.perf_counter() - started)
        self.result.statuses[(op, response.status_code)] += 1
        return response

    def step(self) -> None:
        op = "create" if not self.live else self.rng.choices(OPS, WEIGHTS)[0]
        getattr(self, op)()

    def create(self) -> None:
        customer_id = self.rng.choice(self.tenants)
        person = random_person(self.rng)
        response = self._call("create", "POST", f"{self.writer}/customers/{customer_id}/people", json=person)
        if response is not None and response.status_code == 201:
            body = response.json()
            record = Record(customer_id, body["id"], body["version"], person)
            self.result.records.append(record)
            self.live.append(record)
        elif response is None or response.status_code >= 500:
            self.result.unanswered["create"] += 1  # maybe stored, under an id nobody learnt

    def _url(self, base: str, record: Record) -> str:
        return f"{base}/customers/{record.customer_id}/people/{record.person_id}"

    def _retire(self, op: str, record: Record, *states: tuple[bool, int, dict[str, Any]]) -> None:
        """No answer: the write may or may not have happened; stop using this record."""
        self.result.unanswered[op] += 1
        record.uncertain = list(states)
        self.live.remove(record)

    def patch(self) -> None:
        record = self.rng.choice(self.live)
        fresh = random_person(self.rng)
        names = self.rng.sample(sorted(fresh), self.rng.randint(1, 3))
        change = {name: fresh[name] for name in names}
        response = self._call(
            "patch", "PATCH", self._url(self.writer, record), json=change, headers={"If-Match": f'"{record.version}"'}
        )
        if response is not None and response.status_code == 200:
            record.version = response.json()["version"]
            record.data = {**record.data, **change}
        elif response is None or response.status_code >= 500:
            old, new = (True, record.version, record.data), (True, record.version + 1, {**record.data, **change})
            self._retire("patch", record, old, new)

    def read(self) -> None:
        record = self.rng.choice(self.live)
        response = self._call("read", "GET", self._url(self.reader, record))
        if response is not None and response.status_code == 200:
            body = response.json()
            if (body["version"], body["data"]) != (record.version, record.data):
                self.result.read_mismatches += 1

    def delete(self) -> None:
        record = self.rng.choice(self.live)
        response = self._call(
            "delete", "DELETE", self._url(self.writer, record), headers={"If-Match": f'"{record.version}"'}
        )
        if response is not None and response.status_code == 204:
            record.live = False
            self.live.remove(record)
        elif response is None or response.status_code >= 500:
            self._retire("delete", record, (True, record.version, record.data), (False, 0, {}))

    def run(self, operations: int, deadline: float) -> ClientResult:
        for _ in range(operations):
            if time.monotonic() > deadline:
                break
            self.step()
        self.session.close()
        return self.result


# -- running and reporting -------------------------------------------------------------------


@dataclass
class Report:
    clients: int
    operations: int
    seconds: float
    by_op: Counter[str]
    statuses: Counter[Outcome]
    latencies: dict[str, list[float]]
    read_mismatches: int
    unanswered: Counter[str]  # writes without a definite answer (no response or 5xx), by op
    verification: check.Verification

    @property
    def lost(self) -> int:
        return len(self.verification.lost)

    @property
    def server_errors(self) -> int:
        return sum(n for (_, status), n in self.statuses.items() if not isinstance(status, int) or status >= 500)

    def errors(self) -> Counter[Outcome]:
        """Everything but the expected answer of each operation, by status (or exception)."""
        expected = {"create": 201, "patch": 200, "read": 200, "delete": 204}
        return Counter({key: n for key, n in self.statuses.items() if key[1] != expected[key[0]]})

    def render(self) -> str:
        all_latencies = [x for values in self.latencies.values() for x in values]
        errors = self.errors()
        by_status: Counter[int | str] = Counter()
        for (_, status), n in errors.items():
            by_status[status] += n
        v = self.verification
        lines = [
            f"operations: {self.operations} ({', '.join(f'{op} {self.by_op[op]}' for op in OPS)}) "
            f"by {self.clients} clients in {self.seconds:.1f}s ({self.operations / max(self.seconds, 1e-9):.0f} ops/s)",
            "errors by status: "
            + (
                ", ".join(f"{status}: {n}" for status, n in sorted(by_status.items(), key=str)) if by_status else "none"
            ),
            f"latency: {_percentiles(all_latencies)}",
            *(f"  {op:<7} {_percentiles(self.latencies[op])}" for op in OPS if self.latencies[op]),
            f"read-your-writes mismatches: {self.read_mismatches}",
            f"unanswered writes (no response or 5xx; either outcome accepted): {sum(self.unanswered.values())} "
            f"({', '.join(f'{op} {self.unanswered[op]}' for op in OPS if op != 'read')})",
            f"verified from a table scan ({v.scanned_items} person items): {v.present} acknowledged writes present and "
            f"decrypting to what was sent, {v.gone} acknowledged deletes gone, {v.uncertain} records after an "
            f"unanswered patch or delete, {v.orphans} of {self.unanswered['create']} unanswered creates stored",
            f"whole record: {len(v.live)} live people; masked view matches for "
            + ("(not checked: no masked stage)" if v.masked_checked is None else str(v.masked_checked))
            + "; found by email search: "
            + ("(not checked)" if v.found_by_search is None else f"{v.found_by_search} (within {v.index_lag_s:.1f}s)"),
            *(f"  LOST {line}" for line in v.lost[:20]),
            f"lost: {self.lost}",
        ]
        return "\n".join(lines)


def _percentiles(seconds: list[float]) -> str:
    if not seconds:
        return "no samples"
    if len(seconds) == 1:
        p50 = p95 = p99 = seconds[0]
    else:
        cuts = statistics.quantiles(seconds, n=100, method="inclusive")
        p50, p95, p99 = cuts[49], cuts[94], cuts[98]
    return f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"


def run(
    writer_url: str,
    reader_url: str,
    dynamodb: Any,
    table_name: str,
    *,
    clients: int = 16,
    operations: int = 500,
    max_seconds: float = 600.0,
    seed: int = 1,
    masked_url: str | None = None,
    tenant_prefix: str = "load",
    index_lag_s: float = check.INDEX_LAG_S,
) -> Report:
    """Run the workload, then verify against the table. Bounded by count and by time."""
    check_bounds(clients, operations)
    writer_url, reader_url = require_loopback(writer_url), require_loopback(reader_url)
    run_id = uuid.UUID(int=random.Random(seed).getrandbits(128)).hex[:8] + uuid.uuid4().hex[:4]
    tenants = [f"{tenant_prefix}-{run_id}-t{i}" for i in range(TENANTS)]
    workers = [Client(i, writer_url, reader_url, tenants, seed) for i in range(clients)]
    deadline = time.monotonic() + max_seconds
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(lambda c: c.run(operations, deadline), workers))
    seconds = time.perf_counter() - started

    records = [r for result in results for r in result.records]
    unanswered: Counter[str] = Counter()
    for result in results:
        unanswered.update(result.unanswered)
    people, others = check.scan_tenants(dynamodb, table_name, tenants)
    verification = check.verify(records, people, check.http_person(reader_url), unanswered["create"])
    verification.lost += [f"an item that is not a person in a tenant of the run: sort key {sk}" for sk in others]
    if masked_url is not None:
        check.verify_masked(verification, check.http_person(require_loopback(masked_url)))
    marker = check.http_marker(writer_url, f"{tenant_prefix}-{run_id}-marker", random_person(random.Random(seed)))
    check.verify_search(verification, check.http_search(reader_url), marker=marker, lag_s=index_lag_s)
    statuses: Counter[Outcome] = Counter()
    latencies: dict[str, list[float]] = {op: [] for op in OPS}
    for result in results:
        statuses.update(result.statuses)
        for op in OPS:
            latencies[op].extend(result.latencies[op])
    by_op = Counter({op: len(latencies[op]) for op in OPS})
    return Report(
        clients=clients,
        operations=sum(by_op.values()),
        seconds=seconds,
        by_op=by_op,
        statuses=statuses,
        latencies=latencies,
        read_mismatches=sum(r.read_mismatches for r in results),
        unanswered=unanswered,
        verification=verification,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.load", description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--ops", type=int, default=500, help="operations per client")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="stop issuing operations after this")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--writer-url")
    parser.add_argument("--reader-url")
    parser.add_argument("--moto-url", help="the moto server behind them (for the table scan)")
    parser.add_argument("--masked-url", help="the masked stage (optional: its views are then checked too)")
    parser.add_argument("--table", default="pii-vault")
    args = parser.parse_args(argv)
    given = [args.writer_url, args.reader_url, args.moto_url]
    if any(given) and not all(given):
        parser.error("--writer-url, --reader-url and --moto-url go together")
    from tools.devstack import DevStack, DevStackError

    try:
        check_bounds(args.clients, args.ops)
        for url in [*given, args.masked_url]:
            if url:
                require_loopback(url)
        if all(given):
            dynamodb = _dynamodb(require_loopback(args.moto_url))
            report = _run_and_print(args, args.writer_url, args.reader_url, args.masked_url, dynamodb, args.table)
        else:
            print("starting a local stack (moto + chalice local writer, reader and masked stage)...", flush=True)
            with DevStack.on_free_ports() as stack:
                urls = stack.writer_url, stack.reader_url, stack.masked_url
                report = _run_and_print(args, *urls, stack.client("dynamodb"), stack.resources["table_name"])
    except (LoadError, DevStackError) as exc:
        print(f"tools.load: {exc}", file=sys.stderr)
        return 2
    return 1 if report.lost or report.server_errors else 0


def _dynamodb(moto_url: str) -> Any:
    import boto3

    from tools.devstack import FAKE_CREDENTIALS, REGION

    return boto3.session.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        region_name=REGION,
    ).client("dynamodb", endpoint_url=moto_url)


def _run_and_print(
    args: argparse.Namespace, writer_url: str, reader_url: str, masked_url: str | None, dynamodb: Any, table: str
) -> Report:
    print(
        f"pii-vault load: {args.clients} clients x {args.ops} operations (create/patch/read/delete "
        f"{'/'.join(map(str, WEIGHTS))}%), writer {writer_url}, reader {reader_url}",
        flush=True,
    )
    report = run(
        writer_url,
        reader_url,
        dynamodb,
        table,
        clients=args.clients,
        operations=args.ops,
        max_seconds=args.max_seconds,
        seed=args.seed,
        masked_url=masked_url,
    )
    print(report.render(), flush=True)
    return report


if __name__ == "__main__":
    sys.exit(main())
