"""The benchmark's own arithmetic and plumbing, without AWS: sizes, stages from the registry, the
cost model, Lambda's JSON log line, the import-time parser, and no import cycle in bench/."""

from __future__ import annotations

import ast
import json
import logging
import math
from pathlib import Path

import pytest

from bench import prices
from bench.coldstart import app_import_us, runtime_imports_after_app_us
from bench.cost import COMPONENTS, Usage, access_log_bytes, at_scale, cost_rows
from bench.operations import lambda_json_line
from bench.sizes import DEFAULT_SIZE, SIZES, size_from_argv
from bench.stages import STAGES, deployed_environment, stage_environment

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = {
    "table_name": "pii-vault",
    "key_arn": "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555",
    "fleet_mac_key_arn": "arn:aws:kms:us-east-1:123456789012:key/22222222-2222-3333-4444-555555555555",
    "beacon_key_arn": "arn:aws:kms:us-east-1:123456789012:key/33333333-2222-3333-4444-555555555555",
    "stream_arn": "arn:aws:dynamodb:us-east-1:123456789012:table/pii-vault/stream/2026-12-06T00:00:00.000",
}


def test_given_no_size_then_the_quick_one_and_full_only_when_asked() -> None:
    assert DEFAULT_SIZE == "quick"
    assert size_from_argv([]) is SIZES["quick"]
    assert size_from_argv(["--records", "5", "--size", "full"]) is SIZES["full"]
    quick, full = SIZES["quick"], SIZES["full"]
    assert quick.records < full.records and quick.rewrap_records < full.rewrap_records
    assert set(quick.lookup_people) < set(full.lookup_people)


def test_given_the_registry_then_the_bench_stages_and_environments_are_its_own() -> None:
    from chalicelib.stages import STAGES as REGISTRY
    from chalicelib.support.environment import ROLE_VARIABLE
    from tools.devstack import local_environment

    assert STAGES is REGISTRY
    for spec in STAGES:
        local = stage_environment(spec.name, RESOURCES)
        assert local == local_environment(spec, RESOURCES)
        deployed = deployed_environment(spec.name, RESOURCES)
        assert deployed[ROLE_VARIABLE] == spec.name
        assert set(deployed) == {ROLE_VARIABLE} | {v.env for v in spec.deployed_variables}
        assert "PII_VAULT_LOCAL_CALLER" not in deployed


def test_given_importtime_output_then_app_and_the_runtime_imports_after_it_are_told_apart() -> None:
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        300 | json",
            "import time:       120 |       4567 | app",
            "import time:        80 |        900 |   app.sub",
            "import time:        10 |       2000 |   botocore",  # nested in app: counted in app's import
            "import time:        50 |      70000 | boto3",  # top level after app: the first request's
            "import time:        40 |       1000 | urllib3.util",
            "import time:        40 |        500 | chalicelib.late",
        ]
    )
    assert app_import_us(stderr) == 4567
    assert runtime_imports_after_app_us(stderr) == 71000


def test_given_a_usage_then_each_service_is_priced_per_million() -> None:
    usage = Usage(
        api_requests=1,
        invocations=2,
        billed_ms=100,
        memory_mb=512,
        write_units=2,
        read_units=1,
        kms_requests=0.5,
        log_bytes=1000,
    )
    cost = usage.dollars_per_million()

    assert cost["api_gateway"] == pytest.approx(3.50)
    assert cost["lambda"] == pytest.approx(2 * 0.20 + 0.1 * 0.5 * 0.0000166667 * 1e6)
    assert cost["dynamodb"] == pytest.approx(2 * 0.625 + 0.125)
    assert cost["kms"] == pytest.approx(0.5 * 3.0)
    assert cost["logs"] == pytest.approx(1000 / 1024**3 * 0.50 * 1e6)
    assert cost["xray"] == pytest.approx(2 * 0.05 * 5.0)
    assert cost["total"] == pytest.approx(sum(cost[k] for k in COMPONENTS))


def test_given_a_measured_duration_then_moto_time_is_replaced_by_the_assumed_dynamodb_latency() -> None:
    from bench.cost import DYNAMODB_CALL_MS, billed_ms

    assert billed_ms(9.5, 2.0, 2) == math.ceil(7.5 + 2 * DYNAMODB_CALL_MS)
    assert billed_ms(1.0, 3.0, 0) == 0  # clock noise never makes a negative duration


def test_given_a_request_then_its_access_log_line_is_the_stage_format_rendered() -> None:
    from infra.observability import ACCESS_LOG_FORMAT

    size = access_log_bytes("GET", "/customers/{customer_id}/people/{person_id}", 200, 327, 12)
    longer = access_log_bytes("GET", "/customers/{customer_id}/people/{person_id}", 200, 32_700, 12)

    assert size > sum(len(k) for k in ACCESS_LOG_FORMAT) + prices.CLOUDWATCH_EVENT_OVERHEAD_BYTES
    assert longer == size + 2  # "32700" against "327"


def test_given_a_log_record_then_the_line_is_lambdas_json_log_format() -> None:
    record = logging.LogRecord("chalicelib.audit", logging.INFO, __file__, 1, "%s", ('{"audit":"é"}',), None)
    line = lambda_json_line(record, "0f0e0d0c-0000-4000-8000-000000000000")

    assert line.endswith("\n")
    parsed = json.loads(line)
    assert list(parsed) == ["timestamp", "level", "message", "logger", "requestId"]
    assert parsed["level"] == "INFO" and parsed["logger"] == "chalicelib.audit"
    assert parsed["message"] == '{"audit":"é"}' and "é" in line  # not escaped: ensure_ascii=False
    assert len(parsed["timestamp"]) == len("2026-12-06T20:16:12.123Z")


WORKLOAD = {
    "rows": [
        {
            "row": "goal: 10,000 tenants, 30 days",
            "design": "pool+fleet",
            "write": 0.002,
            "read_uniform": 0.02,
            "runs": [
                {"locality": "uniform", "reads": 1000, "fleet_gets": 500, "fleet_puts": 10},
                {"locality": "recent", "reads": 1000, "fleet_gets": 1, "fleet_puts": 1},
            ],
        }
    ]
}


def _measured(**changes: float) -> dict[str, object]:
    base: dict[str, object] = {
        "billed_ms": 10.0,
        "mean_ms": 9.5,
        "dynamodb_ms": 2.0,
        "dynamodb_calls": {"GetItem": 1.0},
        "dynamodb_write_units": 0.0,
        "dynamodb_read_units": 1.0,
        "kms_calls": 0.0,
        "log_lines": 1.0,
        "log_bytes": 600.0,
        "response_bytes": 300.0,
    }
    return {**base, **changes}


def test_given_the_workload_goal_row_then_reads_carry_its_kms_calls_and_fleet_reads(tmp_path: Path) -> None:
    scale = at_scale(WORKLOAD)
    assert (scale.kms_per_write, scale.kms_per_read, scale.fleet_gets_per_read) == (0.002, 0.02, 0.5)
    writes = {"dynamodb_write_units": 1.0, "dynamodb_read_units": 0.0}
    operations = {
        "count": 10,
        "operations": {
            "create": _measured(**writes),
            "index": _measured(dynamodb_write_units=1.0),
            "read": _measured(),
            "search": _measured(),
            "secret_put": _measured(**writes),
            "secret_get": _measured(),
        },
    }
    (tmp_path / "workload.json").write_text(json.dumps(WORKLOAD))
    (tmp_path / "benchmark-operations.json").write_text(json.dumps(operations))

    rows = {(r["design"], r["operation"]): r for r in cost_rows(tmp_path)["rows"]}

    create, read = rows["pii-vault (shipped)", "create"], rows["pii-vault (shipped)", "read"]
    assert create["usage"]["invocations"] == 2  # the writer, then the indexer's follow-up
    assert create["usage"]["api_requests"] == 1
    assert create["usage"]["kms_requests"] == pytest.approx(0.002)
    assert rows["pii-vault (shipped)", "secret put"]["usage"]["kms_requests"] == pytest.approx(0.001)
    assert read["usage"]["read_units"] == pytest.approx(1.0 + 0.5 * 0.5)  # plus half a unit per fleet GetItem
    assert read["usage"]["write_units"] == pytest.approx(0.01)  # the fleet PutItems per read
    assert create["usage"]["read_units"] == pytest.approx(1.0)  # the indexer's read of the person
    assert create["usage"]["write_units"] == pytest.approx(2.0)  # the person, then its beacon
    assert rows["Secrets Manager", "secret get"]["per_million"]["total"] == pytest.approx(5.0)
    assert rows["SSM standard SecureString", "secret put"]["per_million"]["total"] == 0


def test_given_no_goal_row_for_the_shipped_design_then_the_cost_model_says_so() -> None:
    with pytest.raises(ValueError, match="no 'goal: 10,000 tenants, 30 days' row"):
        at_scale({"rows": [{**WORKLOAD["rows"][0], "design": "today"}]})


def _imports(path: Path, package: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(package):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(package))
    return found


def test_given_the_bench_package_then_its_modules_import_one_another_without_a_cycle() -> None:
    modules = {}
    for path in (ROOT / "bench").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = _imports(path, "bench")
    graph = {m: {i for i in deps if i in modules and i != m} for m, deps in modules.items()}
    # A package's __init__ re-exporting its modules is no cycle of theirs.
    graph = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            assert state.get(dep) != 1, f"import cycle: {' -> '.join([*path, node, dep])}"
            if dep not in state:
                visit(dep, [*path, node])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
