"""Cold start per stage and function: the deployment zip, the import of ``app.py`` and the first
request, the AWS SDK (botocore) included, as Lambda runs them.

    python -m bench.coldstart [--size quick|full] [--runs 3] [--out docs/benchmark-coldstart.json]

1. Packages: every stage of the registry is packaged as ``make package`` packages it (``chalice
   package`` with the stage's merge template, then bytecode compiled for the runtime). Chalice
   builds one zip for every stage (one ``requirements.txt``, one app); a zip identical to one
   already measured (same SHA-256 before the bytecode) is compiled and unpacked once.
2. A moto server (``python -m tools.motoserver``, a child process) bootstrapped as the local stack,
   and persons written through the writer's own app (``bench.lambda_events``).
3. Per function of every stage, ``--runs`` fresh processes, each as a Lambda cold start: the
   unzipped package first on ``sys.path`` (its shipped ``.pyc``; nothing written, as in the
   read-only /var/task), botocore from the interpreter (the Lambda runtime provides it, with its
   bytecode), the stage's deployed environment from the registry, the moto server as endpoint.
   Timed: ``import app``; the first invocation of the function's handler (``app.<handler>`` as
   Lambda resolves it) with a representative event: lazy imports, the SDK's import (reported on
   its own from ``-X importtime``) and client creation, and its AWS calls to moto over HTTP;
   then a second, warm invocation doing the same work. The cold start is what the first
   request costs beyond the warm one, plus the import (Lambda's init): ``import + first -
   warm``, comparable across functions whatever their work; in wall time (moto's answers over
   local HTTP included) and in the process's CPU time (the stage's code and the SDK alone, and
   far less disturbed by other work on the machine). Medians over the runs; ``vs_writer`` and
   ``vs_writer_cpu``: the median over the rounds of the ratio to the writer's in the same round.

Absolute times are this machine's, with moto answering over local HTTP (no network, no KMS
latency, no Lambda runtime start); compare stages and functions with one another.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.lambda_events import Seeded, functions, handler_name, invocations, persons_needed, seed
from bench.sizes import add_size_argument, size_from_argv
from bench.stages import REGION, ROOT, STAGES, deployed_environment
from chalicelib.stages.registry import API_FUNCTION

_IMPORTTIME = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s?(\s*)(\S+)")
# What the Lambda Python runtime brings, with bytecode: boto3 and its dependencies.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}  # moto's, never real

# The measured process: import app from the package, then call the handler with each event.
_CHILD = """
import json, sys, time
spec = json.load(open(sys.argv[1], encoding="utf-8"))
sys.path.insert(0, spec["root"])
started, started_cpu = time.perf_counter(), time.process_time()
import app
imported, imported_cpu = time.perf_counter(), time.process_time()
sdk_at_import = "botocore.session" in sys.modules  # the client machinery (botocore.exceptions is light)
handler = getattr(app, spec["handler"])

class Context:
    function_name = spec["function"]
    aws_request_id = "cold-start"
    memory_limit_in_mb = 512
    def get_remaining_time_in_millis(self):
        return 900000

requests = []
for event in spec["events"]:
    began, began_cpu = time.perf_counter(), time.process_time()
    answer = handler(event, Context())
    ms, cpu_ms = (time.perf_counter() - began) * 1000, (time.process_time() - began_cpu) * 1000
    status = answer.get("statusCode") if isinstance(answer, dict) else None
    requests.append({"ms": ms, "cpu_ms": cpu_ms, "status": status})
print(json.dumps({
    "import_ms": (imported - started) * 1000,
    "import_cpu_ms": (imported_cpu - started_cpu) * 1000,
    "sdk_at_import": sdk_at_import,
    "boto3_loaded": "boto3" in sys.modules,
    "requests": requests,
}))
"""


def top_level_imports_us(stderr: str) -> list[tuple[str, int]]:
    """(module, cumulative microseconds) of every top-level import in ``-X importtime`` output, in order."""
    found = []
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match and not match.group(3):
            found.append((match.group(4), int(match.group(2))))
    return found


def app_import_us(stderr: str) -> int:
    """Cumulative microseconds of the top-level ``app`` import in ``-X importtime`` output."""
    for name, us in top_level_imports_us(stderr):
        if name == "app":
            return us
    raise ValueError("no top-level 'app' line in -X importtime output")


def runtime_imports_after_app_us(stderr: str) -> int:
    """Microseconds of the SDK (boto3, botocore and their dependencies) imported after ``app`` (during the requests)."""
    seen_app, total = False, 0
    for name, us in top_level_imports_us(stderr):
        seen_app = seen_app or name == "app"
        if seen_app and name.split(".")[0] in RUNTIME_PACKAGES:
            total += us
    return total


# -- 1. packages ----------------------------------------------------------------------------


def package_stages(out: Path, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per stage: its unpacked package (with bytecode) and the zip's sizes, as ``make package`` builds it."""
    from infra.package import add_bytecode, chalice_package, runtime_of, write_templates

    write_templates(out)
    by_digest: dict[str, dict[str, Any]] = {}
    packages: dict[str, dict[str, Any]] = {}
    for name in names:
        target = chalice_package(name, out)
        archive = target / "deployment.zip"
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if digest not in by_digest:
            template = json.loads((target / "sam.json").read_text(encoding="utf-8"))
            add_bytecode(archive, runtime_of(template))
            root = out / f"unpacked-{digest[:12]}"
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(root)
                infos = zf.infolist()
            by_digest[digest] = {
                "root": root,
                "zip_bytes": archive.stat().st_size,
                "unzipped_bytes": sum(i.file_size for i in infos),
                "files": len(infos),
                "pyc_files": sum(i.filename.endswith(".pyc") for i in infos),
                "zip_sha256_before_bytecode": digest,
            }
        packages[name] = by_digest[digest]
    return packages


# -- 2. the local moto server ---------------------------------------------------------------


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server child process on a free port; yields its URL, stops it on exit."""
    from tools.ports import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **CREDENTIALS, "AWS_DEFAULT_REGION": REGION, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("AWS_ENDPOINT_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.motoserver", "-H", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=1).close()  # noqa: S310 - our own child, http
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the moto server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def clients(url: str) -> dict[str, Any]:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    return {name: session.client(name, endpoint_url=url) for name in ("kms", "dynamodb")}


# -- 3. the measured processes --------------------------------------------------------------


def measure_once(
    package: Mapping[str, Any], stage_name: str, function: str, events: list[dict[str, Any]], env: Mapping[str, str]
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec = {"root": str(package["root"]), "handler": handler_name(stage_name, function), "function": function}
        spec_path.write_text(json.dumps({**spec, "events": events}), encoding="utf-8")
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", _CHILD, str(spec_path)],
            cwd=package["root"],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=300,
        )
    if result.returncode != 0:
        raise RuntimeError(f"{stage_name}/{function}: the cold start failed: {result.stderr[-800:]}")
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    for request in measured["requests"]:
        if request["status"] is not None and request["status"] >= 400:
            raise RuntimeError(f"{stage_name}/{function}: a request answered {request['status']}")
    measured["sdk_import_ms_in_first_request"] = runtime_imports_after_app_us(result.stderr) / 1000
    return measured


def process_env(stage_name: str, resources: Mapping[str, str], url: str) -> dict[str, str]:
    """A Lambda function's environment: the stage's deployed variables, region, credentials; moto as endpoint."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONDONTWRITEBYTECODE": "1",
        **CREDENTIALS,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": url,
        **deployed_environment(stage_name, resources),
    }


@contextmanager
def _chatter_to_stderr() -> Iterator[None]:
    """``chalice package`` prints progress on standard output: send it to standard error."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def cold_start(runs: int, log: Any = None, stages: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One row per function of every stage (or of ``stages``, the writer's always): medians over
    ``runs`` fresh processes each.

    The processes run in rounds (every function once per round),
    so each round's figures are taken under about the same machine load: ``vs_writer`` is the median
    over the rounds of a function's cold start divided by the writer's in the same round."""
    with tempfile.TemporaryDirectory(prefix="pii-vault-coldstart-") as tmp:
        started = time.perf_counter()
        chosen = [s.name for s in STAGES if stages is None or s.name in stages or s.name == "writer"]
        with _chatter_to_stderr():
            packages = package_stages(Path(tmp) / "out", chosen)
        if log is not None:
            print(f"  packaged {len(packages)} stages: {time.perf_counter() - started:.0f} s", file=log, flush=True)
        with moto_server() as url:
            from bench.aws import local_resources

            aws = clients(url)
            resources = local_resources(aws["kms"], aws["dynamodb"])
            seeded: Seeded = seed(resources, aws, persons_needed(runs))
            names = [f for f in functions() if f[0] in chosen]
            samples: dict[tuple[str, str], list[dict[str, Any]]] = {(s, f): [] for s, f, _ in names}
            for run in range(runs):
                for stage_name, function, _ in names:
                    events = invocations(stage_name, function, seeded, run)
                    env = process_env(stage_name, resources, url)
                    samples[stage_name, function].append(
                        measure_once(packages[stage_name], stage_name, function, events, env)
                    )
                if log is not None:
                    print(f"  cold start round {run + 1}/{runs} done", file=log, flush=True)

    def cold(sample: dict[str, Any], unit: str = "ms") -> float:
        first, warm = sample["requests"]
        return float(sample[f"import_{unit}"] + first[unit] - warm[unit])

    def cpu(sample: dict[str, Any]) -> float:
        return cold(sample, "cpu_ms")

    writer = [cold(s) for s in samples["writer", API_FUNCTION]]
    writer_cpu = [cpu(s) for s in samples["writer", API_FUNCTION]]
    rows = []
    for stage_name, function, trigger in names:
        taken = samples[stage_name, function]
        cold_ms, cpu_ms = [cold(s) for s in taken], [cpu(s) for s in taken]
        rows.append(
            {
                "stage": stage_name,
                "function": function,
                "trigger": trigger,
                "runs": runs,
                "import_ms": statistics.median(s["import_ms"] for s in taken),
                "first_request_ms": statistics.median(s["requests"][0]["ms"] for s in taken),
                "sdk_import_ms_in_first_request": statistics.median(s["sdk_import_ms_in_first_request"] for s in taken),
                "cold_start_ms": statistics.median(cold_ms),
                "vs_writer": statistics.median(c / w for c, w in zip(cold_ms, writer, strict=True)),
                "cold_start_cpu_ms": statistics.median(cpu_ms),
                "vs_writer_cpu": statistics.median(c / w for c, w in zip(cpu_ms, writer_cpu, strict=True)),
                "warm_request_ms": statistics.median(s["requests"][1]["ms"] for s in taken),
                "sdk_at_import": any(s["sdk_at_import"] for s in taken),
                **{k: v for k, v in packages[stage_name].items() if k != "root"},
            }
        )
    return rows


def cold_start_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| stage | function | import app ms | first request ms | of which boto3/botocore import ms | warm request ms "
        "| cold start ms (import + first - warm) | / writer's | cold start CPU ms | / writer's "
        "| zip bytes | unzipped bytes | .pyc in zip |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['stage']} | {r['function']} | {r['import_ms']:.0f} | {r['first_request_ms']:.0f} "
            f"| {r['sdk_import_ms_in_first_request']:.0f} | {r['warm_request_ms']:.1f} | {r['cold_start_ms']:.0f} "
            f"| {r['vs_writer']:.2f} | {r['cold_start_cpu_ms']:.0f} | {r['vs_writer_cpu']:.2f} "
            f"| {r['zip_bytes']:,} | {r['unzipped_bytes']:,} | {r['pyc_files']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    size = size_from_argv(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=(__doc__ or "").split("\n")[0])
    add_size_argument(parser)
    parser.add_argument("--runs", type=int, default=size.cold_start_runs, help="fresh processes per function")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmark-coldstart.json")
    parser.add_argument("--stages", nargs="+", choices=[s.name for s in STAGES], help="default: every stage")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    rows = cold_start(args.runs, log=sys.stderr, stages=args.stages)
    print(cold_start_table(rows))
    args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
