"""Side-by-side benchmark: KMS calls, throughput, latency and storage of field encryption.

    python -m bench.run [--records 1000] [--kms-latency-ms 10] [--out docs] [--skip-cold-start]

One process, moto's ``mock_aws`` for KMS and DynamoDB, a simulated KMS round trip
added to every KMS call through a botocore ``before-call.kms.*`` hook. Every approach
writes and then reads back (in another order) the same person records, five PII
fields each, and every read is checked against what was written. Approaches:

- ``naive-per-field-kms``: the tutorial pattern, one ``kms:Encrypt``/``Decrypt`` per field
  (written here only; the encryption context binds tenant, record and field).
- ``aws-encryption-sdk-per-field`` / ``-per-record``: one ESDK message per field or per
  record (dev dependency only; context checked on decrypt, as a careful user would).
- ``pii-vault-cache-off`` / ``pii-vault-cache-on``: the shipped app over HTTP
  (``chalice.test.Client``), data key caches off, or at the bounds the stages ship
  with in ``.chalice/config.json``. ``pii-vault-cache-on-multiget`` reads the same way
  through ``GET .../people?ids=`` in batches of 100 (latency per record amortised).

Then, per stage: the import time of ``app.py`` (``python -X importtime``), with and
without cached bytecode, and the size of the deployment zip from ``chalice package``.
Prints Markdown tables and writes ``docs/benchmark.json``, ``docs/benchmark-coldstart.json``
and ``docs/benchmark.png``. Numbers, not assertions: nothing here fails on a slow run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from chalicelib.models import decode_field, encode_field

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
APP = "pii-vault"
FIELDS = ("name", "surname", "email", "dob", "address")
BATCH = 100
STAGES = ("writer", "reader")

# --------------------------------------------------------------------------- data


def people(count: int, seed: int = 20261124) -> list[dict[str, Any]]:
    """Deterministic, plausible people (valid for pii-vault's validation rules)."""
    rng = random.Random(seed)
    first = ["Grace", "Ada", "Mirabelle", "Kwame", "Yuki", "Olamide", "Søren", "Lucía", "Priya", "Mateo"]
    last = ["Hopper", "Lovelace", "Quenneville", "Mensah", "Tanaka", "Adeyemi", "Kierkegaard", "García"]
    cities = [("London", "GB", "E1 6AN"), ("Montréal", "CA", "H2X 1Y4"), ("Osaka", "JP", "530-0001"),
              ("Lagos", "NG", "100001"), ("Madrid", "ES", "28013"), ("Austin", "US", "78701")]
    out = []
    for n in range(count):
        name, surname = rng.choice(first), rng.choice(last)
        city, country, postal = rng.choice(cities)
        out.append({
            "name": name,
            "surname": surname,
            "email": f"{name.lower().replace('ø', 'o').replace('í', 'i')}.{surname.lower().replace('í', 'i')}{n}@example.org",
            "dob": f"{rng.randint(1930, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "address": {"line1": f"{rng.randint(1, 999)} {rng.choice(['High St', 'Rue Oberkampf', 'Main St'])}",
                        "city": city, "postal_code": postal, "country": country},
        })
    return out


def plaintext_bytes(person: dict[str, Any]) -> int:
    return sum(len(encode_field(person[name])) for name in FIELDS)


# --------------------------------------------------------------------------- AWS plumbing


class KmsMeter:
    """botocore hooks: count every KMS operation and sleep the simulated round trip."""

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.calls: Counter[str] = Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1
        if self.latency_s:
            time.sleep(self.latency_s)

    def attach(self, events: Any) -> None:
        events.register("before-call.kms.*", self)

    def total(self) -> int:
        return sum(self.calls.values())


@contextmanager
def aws_sandbox() -> Iterator[dict[str, str]]:
    """mock_aws with dummy credentials; AWS_ENDPOINT_URL would bypass the mock."""
    saved = dict(os.environ)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "PII_VAULT_ROLE"):
        os.environ.pop(name, None)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION=REGION)
    from moto import mock_aws

    from tools.bootstrap import bootstrap

    try:
        with mock_aws():
            import boto3

            yield bootstrap(boto3.client("kms", region_name=REGION), boto3.client("dynamodb", region_name=REGION))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def kms_client(meter: KmsMeter) -> Any:
    import boto3

    client = boto3.client("kms", region_name=REGION)
    meter.attach(client.meta.events)
    return client


def ddb_client() -> Any:
    import boto3

    return boto3.client("dynamodb", region_name=REGION)


def attribute_size(value: dict[str, Any]) -> int:
    """DynamoDB's billed size of one attribute value (AWS 'item sizes' rules)."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode("utf-8"))
    if kind == "B":
        return len(raw)
    if kind == "N":
        digits = raw.lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_size(v) + 1 for k, v in raw.items())
    if kind == "L":
        return 3 + sum(attribute_size(v) + 1 for v in raw)
    return sum(len(str(v)) for v in raw)


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def binary_bytes(value: Any) -> int:
    """All binary bytes in an item: ciphertexts and wrapped keys."""
    if isinstance(value, dict):
        return sum(len(v) if k == "B" else binary_bytes(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(binary_bytes(v) for v in value)
    return 0


def tenant_items(ddb: Any, table: str, customer_id: str) -> list[dict[str, Any]]:
    items, kwargs = [], {}
    while True:
        page = ddb.query(
            TableName=table, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"C#{customer_id}"}}, **kwargs,
        )
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --------------------------------------------------------------------------- approaches


class Approach:
    """Writes one record, reads one record back; subclasses pick the encryption."""

    name = ""
    customer_id = ""
    batch_reads = False

    def __init__(self, resources: dict[str, str], meter: KmsMeter) -> None:
        self.key_arn = resources["key_arn"]
        self.table = resources["table_name"]
        self.meter = meter
        self.ddb = ddb_client()

    def write(self, index: int, person: dict[str, Any]) -> None:
        raise NotImplementedError

    def read(self, index: int) -> dict[str, Any]:
        raise NotImplementedError

    def read_batch(self, indexes: list[int]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _key(self, index: int) -> dict[str, Any]:
        return {"pk": {"S": f"C#{self.customer_id}"}, "sk": {"S": f"P#{index:032x}"}}

    def _context(self, index: int, name: str | None = None) -> dict[str, str]:
        context = {"app": APP, "customer_id": self.customer_id, "record_id": f"{index:032x}"}
        return {**context, "field": name} if name else context


class NaivePerFieldKms(Approach):
    name, customer_id = "naive-per-field-kms", "bench-naive"

    def __init__(self, resources: dict[str, str], meter: KmsMeter) -> None:
        super().__init__(resources, meter)
        self.kms = kms_client(meter)

    def write(self, index: int, person: dict[str, Any]) -> None:
        item = dict(self._key(index))
        for name in FIELDS:
            blob = self.kms.encrypt(KeyId=self.key_arn, Plaintext=encode_field(person[name]),
                                    EncryptionContext=self._context(index, name))["CiphertextBlob"]
            item[name] = {"B": blob}
        self.ddb.put_item(TableName=self.table, Item=item)

    def read(self, index: int) -> dict[str, Any]:
        item = self.ddb.get_item(TableName=self.table, Key=self._key(index), ConsistentRead=True)["Item"]
        return {
            name: decode_field(name, self.kms.decrypt(KeyId=self.key_arn, CiphertextBlob=item[name]["B"],
                                                EncryptionContext=self._context(index, name))["Plaintext"])
            for name in FIELDS
        }


class _Esdk(Approach):
    def __init__(self, resources: dict[str, str], meter: KmsMeter) -> None:
        super().__init__(resources, meter)
        import aws_encryption_sdk
        import botocore.session
        from aws_encryption_sdk import CommitmentPolicy

        session = botocore.session.Session()
        meter.attach(session)  # the provider builds its own KMS client from this session
        self.esdk = aws_encryption_sdk.EncryptionSDKClient(
            commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
        )
        self.provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
            key_ids=[self.key_arn], botocore_session=session
        )

    def _encrypt(self, plaintext: bytes, context: dict[str, str]) -> bytes:
        return self.esdk.encrypt(source=plaintext, key_provider=self.provider, encryption_context=context)[0]

    def _decrypt(self, message: bytes, context: dict[str, str]) -> bytes:
        plaintext, header = self.esdk.decrypt(source=message, key_provider=self.provider)
        # The ESDK authenticates the context but does not compare it with what we expect.
        if any(header.encryption_context.get(k) != v for k, v in context.items()):
            raise RuntimeError("encryption context mismatch")
        return plaintext


class EsdkPerField(_Esdk):
    name, customer_id = "aws-encryption-sdk-per-field", "bench-esdk-field"

    def write(self, index: int, person: dict[str, Any]) -> None:
        item = dict(self._key(index))
        for name in FIELDS:
            item[name] = {"B": self._encrypt(encode_field(person[name]), self._context(index, name))}
        self.ddb.put_item(TableName=self.table, Item=item)

    def read(self, index: int) -> dict[str, Any]:
        item = self.ddb.get_item(TableName=self.table, Key=self._key(index), ConsistentRead=True)["Item"]
        return {name: decode_field(name, self._decrypt(item[name]["B"], self._context(index, name))) for name in FIELDS}


class EsdkPerRecord(_Esdk):
    name, customer_id = "aws-encryption-sdk-per-record", "bench-esdk-record"

    def write(self, index: int, person: dict[str, Any]) -> None:
        document = json.dumps({name: person[name] for name in FIELDS}, separators=(",", ":"), ensure_ascii=False)
        item = {**self._key(index), "record": {"B": self._encrypt(document.encode(), self._context(index))}}
        self.ddb.put_item(TableName=self.table, Item=item)

    def read(self, index: int) -> dict[str, Any]:
        item = self.ddb.get_item(TableName=self.table, Key=self._key(index), ConsistentRead=True)["Item"]
        return json.loads(self._decrypt(item["record"]["B"], self._context(index)))


NO_CACHE = {
    "PII_VAULT_WRITER_KEY_CACHE_SECONDS": "0",
    "PII_VAULT_WRITER_KEY_CACHE_MAX_RECORDS": "0",
    "PII_VAULT_READER_KEY_CACHE_SECONDS": "0",
    "PII_VAULT_READER_KEY_CACHE_MAX_ENTRIES": "0",
}


def stage_environment(stage: str) -> dict[str, str]:
    """The environment a deployed stage gets: global plus stage variables of .chalice/config.json."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    return {**config.get("environment_variables", {}), **config["stages"][stage]["environment_variables"]}


class PiiVault(Approach):
    """The shipped app, both stages, over chalice.test.Client with the stage's settings."""

    cache_env: dict[str, str] | None = None

    def __init__(self, resources: dict[str, str], meter: KmsMeter) -> None:
        super().__init__(resources, meter)
        from chalice.test import Client

        from chalicelib.api import create_app
        from chalicelib.config import Settings
        from tools.devstack import LOCAL_CALLER_ENV

        self.ids: dict[int, str] = {}
        clients = []
        for stage in STAGES:
            env = {**stage_environment(stage), "AWS_DEFAULT_REGION": REGION, **(self.cache_env or {})}
            env.update(PII_VAULT_TABLE=self.table, PII_VAULT_KMS_KEY_ID=self.key_arn, **LOCAL_CALLER_ENV)
            app = create_app(settings=Settings.from_env(env), kms_client=kms_client(meter), dynamodb_client=ddb_client())
            clients.append(Client(app))
        self.writer, self.reader = (client.http for client in clients)

    def write(self, index: int, person: dict[str, Any]) -> None:
        response = self.writer.post(f"/customers/{self.customer_id}/people", body=json.dumps(person),
                                    headers={"Content-Type": "application/json"})
        if response.status_code != 201:
            raise RuntimeError(f"write failed: {response.status_code}")
        self.ids[index] = json.loads(response.body)["id"]

    def read(self, index: int) -> dict[str, Any]:
        response = self.reader.get(f"/customers/{self.customer_id}/people/{self.ids[index]}")
        if response.status_code != 200:
            raise RuntimeError(f"read failed: {response.status_code}")
        return json.loads(response.body)["data"]

    def read_batch(self, indexes: list[int]) -> list[dict[str, Any]]:
        ids = ",".join(self.ids[i] for i in indexes)
        response = self.reader.get(f"/customers/{self.customer_id}/people?ids={ids}")
        body = json.loads(response.body)
        if response.status_code != 200 or body["missing"]:
            raise RuntimeError(f"multi-get failed: {response.status_code}")
        by_id = {item["id"]: item["data"] for item in body["items"]}
        return [by_id[self.ids[i]] for i in indexes]


class PiiVaultCacheOff(PiiVault):
    name, customer_id, cache_env = "pii-vault-cache-off", "bench-pv-off", NO_CACHE


class PiiVaultCacheOn(PiiVault):
    name, customer_id = "pii-vault-cache-on", "bench-pv-on"


class PiiVaultCacheOnMultiget(PiiVault):
    name, customer_id, batch_reads = "pii-vault-cache-on-multiget", "bench-pv-multi", True


APPROACHES: tuple[type[Approach], ...] = (
    NaivePerFieldKms, EsdkPerField, EsdkPerRecord, PiiVaultCacheOff, PiiVaultCacheOn, PiiVaultCacheOnMultiget,
)

# --------------------------------------------------------------------------- measuring


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


@dataclass
class Phase:
    kms_calls: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)


def _timed(records: int, meter: KmsMeter, steps: list[tuple[int, Callable[[], None]]]) -> Phase:
    """Run ``steps`` (records covered, action); per-record latency is step time / records covered."""
    before = meter.total()
    latencies: list[float] = []
    started = time.perf_counter()
    for covered, step in steps:
        t0 = time.perf_counter()
        step()
        latencies += [(time.perf_counter() - t0) * 1000 / covered] * covered
    return Phase(meter.total() - before, time.perf_counter() - started, latencies)


def run_approach(cls: type[Approach], resources: dict[str, str], data: list[dict[str, Any]],
                 latency_s: float, read_order: list[int]) -> dict[str, Any]:
    meter = KmsMeter(latency_s)
    approach = cls(resources, meter)
    n = len(data)

    def write(i: int) -> Callable[[], None]:
        return lambda: approach.write(i, data[i])

    def read(i: int) -> Callable[[], None]:
        def step() -> None:
            if approach.read(i) != data[i]:
                raise RuntimeError(f"{cls.name}: record {i} did not round-trip")
        return step

    def read_batch(indexes: list[int]) -> Callable[[], None]:
        def step() -> None:
            if approach.read_batch(indexes) != [data[i] for i in indexes]:
                raise RuntimeError(f"{cls.name}: a batch did not round-trip")
        return step

    writes = _timed(n, meter, [(1, write(i)) for i in range(n)])
    if cls.batch_reads:
        chunks = [read_order[s : s + BATCH] for s in range(0, n, BATCH)]
        reads = _timed(n, meter, [(len(c), read_batch(c)) for c in chunks])
    else:
        reads = _timed(n, meter, [(1, read(i)) for i in read_order])
    items = tenant_items(approach.ddb, approach.table, approach.customer_id)
    if len(items) != n:
        raise RuntimeError(f"{cls.name}: expected {n} stored items, found {len(items)}")
    plain = sum(plaintext_bytes(p) for p in data)
    return {
        "approach": cls.name,
        "records": n,
        "kms_latency_ms": latency_s * 1000,
        "kms_calls_per_record_write": writes.kms_calls / n,
        "kms_calls_per_record_read": reads.kms_calls / n,
        "kms_operations": dict(meter.calls),
        "records_per_s_write": n / writes.seconds,
        "records_per_s_read": n / reads.seconds,
        "p50_ms_write": percentile(writes.latencies_ms, 50),
        "p99_ms_write": percentile(writes.latencies_ms, 99),
        "p50_ms_read": percentile(reads.latencies_ms, 50),
        "p99_ms_read": percentile(reads.latencies_ms, 99),
        "stored_bytes_per_record": sum(item_size(i) for i in items) / n,
        "ciphertext_overhead_bytes_per_field": (sum(binary_bytes(i) for i in items) - plain) / n / len(FIELDS),
        "read_mode": "multi-get, 100 ids per request" if cls.batch_reads else "one GET per record",
    }


# --------------------------------------------------------------------------- cold start


_IMPORTTIME = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s?(\s*)(\S+)")


def app_import_us(stderr: str) -> int:
    """Cumulative microseconds of the top-level ``app`` import in ``-X importtime`` output."""
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match and match.group(4) == "app" and not match.group(3):
            return int(match.group(2))
    raise ValueError("no top-level 'app' line in -X importtime output")


# What the Lambda Python runtime brings with bytecode: the standard library and boto3/botocore.
# Everything else (app.py, chalicelib, chalice, cryptography, ...) comes from the zip.
_RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")

_RUNTIME_MODULES = """
import json, sys, sysconfig
import app
stdlib = sysconfig.get_paths()["stdlib"]
names = [n for n, m in list(sys.modules.items())
         if (getattr(m, "__file__", None) or "").startswith(stdlib) and "site-packages" not in m.__file__
         or n.split(".")[0] in RUNTIME]
print(json.dumps(names))
"""


def _stage_env(stage: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PII_VAULT_", "AWS_ENDPOINT_URL"))}
    env.update(stage_environment(stage))
    return env


def import_time_ms(stage: str, *, bytecode: bool, runs: int = 7) -> float:
    """Median ``-X importtime`` of ``import app`` for a stage.

    ``bytecode=False`` mimics a Lambda cold start from a zip without ``.pyc`` files: the
    runtime's own modules (stdlib, boto3) load from cached bytecode, everything shipped in
    the zip compiles from source (the deployment directory is read-only, so every cold start).
    """
    env = _stage_env(stage)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    samples = []
    with tempfile.TemporaryDirectory() as prefix:
        env["PYTHONPYCACHEPREFIX"] = prefix  # bytecode goes here, never into the project tree
        modules = ["app"]
        if not bytecode:
            listing = subprocess.run(
                [sys.executable, "-c", f"RUNTIME = {_RUNTIME_PACKAGES!r}\n" + _RUNTIME_MODULES],
                cwd=ROOT, env={**env, "PYTHONDONTWRITEBYTECODE": "1"}, capture_output=True, text=True, timeout=120,
            )
            modules = json.loads(listing.stdout)
        warm = "import importlib\nfor name in %r:\n    try:\n        importlib.import_module(name)\n" \
               "    except Exception:\n        pass\n" % (modules,)
        subprocess.run([sys.executable, "-c", warm], cwd=ROOT if bytecode else tempfile.gettempdir(), env=env,
                       capture_output=True, timeout=120)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        for _ in range(runs):
            result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import app"], cwd=ROOT, env=env,
                                    capture_output=True, text=True, timeout=120)
            if result.returncode != 0:
                raise RuntimeError(f"import app failed for {stage}: {result.stderr[-500:]}")
            samples.append(app_import_us(result.stderr) / 1000)
    return statistics.median(samples)


def package_zip(stage: str) -> dict[str, Any]:
    """``chalice package`` on a clean copy of the project (no __pycache__); zip size and contents."""
    chalice = Path(sys.executable).with_name("chalice")
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        project.mkdir()
        shutil.copy2(ROOT / "app.py", project)
        shutil.copy2(ROOT / "requirements.txt", project)
        shutil.copytree(ROOT / "chalicelib", project / "chalicelib", ignore=ignore)
        shutil.copytree(ROOT / ".chalice", project / ".chalice", ignore=ignore)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PII_VAULT_", "AWS_ENDPOINT_URL"))}
        env.update(AWS_DEFAULT_REGION=REGION, PYTHONDONTWRITEBYTECODE="1")
        out = Path(tmp) / "out"
        result = subprocess.run([str(chalice), "package", "--stage", stage, str(out)], cwd=project, env=env,
                                capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(f"chalice package --stage {stage} failed: {(result.stderr or result.stdout)[-300:]}")
        archive = out / "deployment.zip"
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            unpacked = sum(info.file_size for info in zf.infolist())
        return {"zip_bytes": archive.stat().st_size, "unzipped_bytes": unpacked,
                "files": len(names), "pyc_files": sum(n.endswith(".pyc") for n in names)}


def cold_start() -> list[dict[str, Any]]:
    rows = []
    for stage in STAGES:
        row: dict[str, Any] = {
            "stage": stage,
            "import_ms_cached_bytecode": import_time_ms(stage, bytecode=True),
            "import_ms_no_bytecode": import_time_ms(stage, bytecode=False),
        }
        try:
            row.update(package_zip(stage))
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            row["package_error"] = str(exc)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- output


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
)


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def results_table(results: list[dict[str, Any]]) -> str:
    return markdown([c[0] for c in COLUMNS], [[fmt.format(r[key]) for _, key, fmt in COLUMNS] for r in results])


def cold_start_table(rows: list[dict[str, Any]]) -> str:
    headers = ["stage", "import app ms (cached .pyc)", "import app ms (no .pyc)", "zip bytes", "unzipped bytes",
               ".pyc in zip"]
    cells = []
    for r in rows:
        packaged = "package_error" not in r
        cells.append([
            r["stage"], f"{r['import_ms_cached_bytecode']:.1f}", f"{r['import_ms_no_bytecode']:.1f}",
            f"{r['zip_bytes']:,}" if packaged else "n/a", f"{r['unzipped_bytes']:,}" if packaged else "n/a",
            str(r["pyc_files"]) if packaged else "n/a",
        ])
    return markdown(headers, cells)


def ratios(results: list[dict[str, Any]]) -> dict[str, float]:
    by = {r["approach"]: r for r in results}
    naive, off = by.get("naive-per-field-kms"), by.get("pii-vault-cache-off")
    if not naive or not off:
        return {}
    return {
        "write": naive["kms_calls_per_record_write"] / max(off["kms_calls_per_record_write"], 1e-12),
        "read": naive["kms_calls_per_record_read"] / max(off["kms_calls_per_record_read"], 1e-12),
    }


def chart(results: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["approach"] for r in results]
    panels = (
        ("KMS calls per record", "kms_calls_per_record_write", "kms_calls_per_record_read", True),
        ("records per second", "records_per_s_write", "records_per_s_read", False),
        ("p50 latency per record (ms)", "p50_ms_write", "p50_ms_read", False),
        ("stored bytes per record", "stored_bytes_per_record", None, False),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(20, 5.5))
    ys = range(len(names))
    for ax, (label, write_key, read_key, log) in zip(axes, panels):
        if read_key:
            ax.barh([y + 0.2 for y in ys], [r[write_key] for r in results], height=0.4, label="write", color="#4C72B0")
            ax.barh([y - 0.2 for y in ys], [r[read_key] for r in results], height=0.4, label="read", color="#DD8452")
            ax.legend(loc="lower right", fontsize=8)
        else:
            ax.barh(list(ys), [r[write_key] for r in results], height=0.6, color="#55A868")
        if log:
            ax.set_xscale("log")
            for y, r in zip(ys, results):
                ax.text(r[write_key], y + 0.2, f" {r[write_key]:.3g}", va="center", fontsize=7)
                ax.text(r[read_key], y - 0.2, f" {r[read_key]:.3g}", va="center", fontsize=7)
        ax.set_yticks(list(ys))
        ax.set_yticklabels(names if ax is axes[0] else [], fontsize=9)
        ax.invert_yaxis()
        ax.set_title(label, fontsize=11)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1000, help="person records per approach (default 1000)")
    parser.add_argument("--kms-latency-ms", type=float, default=10.0, help="simulated KMS round trip (default 10)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where benchmark.json/.png go")
    parser.add_argument("--approaches", default="", help="comma-separated subset of approach names")
    parser.add_argument("--skip-cold-start", action="store_true", help="no import timing, no chalice package")
    args = parser.parse_args(argv)
    if args.records < 1 or args.kms_latency_ms < 0:
        parser.error("--records must be >= 1 and --kms-latency-ms >= 0")
    chosen = [c for c in APPROACHES if not args.approaches or c.name in args.approaches.split(",")]
    if not chosen:
        parser.error(f"no such approach; known: {', '.join(c.name for c in APPROACHES)}")
    sys.path.insert(0, str(ROOT))
    # Known and by design: chalice.test.Client does not enforce the IAMAuthorizer (SigV4).
    warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")

    data = people(args.records)
    read_order = list(range(args.records))
    random.Random(7).shuffle(read_order)
    started = time.perf_counter()
    results = []
    with aws_sandbox() as resources:
        for cls in chosen:
            t0 = time.perf_counter()
            results.append(run_approach(cls, resources, data, args.kms_latency_ms / 1000, read_order))
            print(f"  {cls.name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)

    title = (f"{args.records} person records x 5 PII fields, simulated KMS latency "
             f"{args.kms_latency_ms:g} ms/call, moto in one process")
    print(f"\n## Field encryption: {title}\n")
    print(results_table(results))
    factor = ratios(results)
    if factor:
        print(f"\nKMS calls per record, naive / pii-vault with caches off: "
              f"{factor['write']:.1f}x fewer on writes, {factor['read']:.1f}x fewer on reads")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    chart(results, args.out / "benchmark.png", title)
    if not args.skip_cold_start:
        rows = cold_start()
        print("\n## Cold start per stage (median of 7 imports; zip from `chalice package`)\n")
        print(cold_start_table(rows))
        for row in rows:
            if "package_error" in row:
                print(f"\n{row['stage']}: {row['package_error']}")
        (args.out / "benchmark-coldstart.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out / 'benchmark.json'} and {args.out / 'benchmark.png'}"
          f"{'' if args.skip_cold_start else ' and ' + str(args.out / 'benchmark-coldstart.json')}"
          f" in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
