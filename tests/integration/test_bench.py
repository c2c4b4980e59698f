"""Smoke test of the benchmark (bench/): tiny run, no simulated latency, real outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import run as bench
from bench.aws import binary_bytes, item_size
from bench.coldstart import app_import_us
from bench.piivault import APPROACHES
from bench.prices import secrets_costs
from bench.stages import ROOT
from tests.request_proof import operator_code

REQUIRED_KEYS = {
    "approach",
    "kms_calls_per_record_write",
    "kms_calls_per_record_read",
    "records_per_s_write",
    "records_per_s_read",
    "p50_ms_write",
    "p99_ms_write",
    "p50_ms_read",
    "p99_ms_read",
    "stored_bytes_per_record",
    "usd_per_million_records_write",
    "usd_per_million_records_read",
}


def test_given_a_tiny_run_then_every_approach_round_trips_and_the_outputs_are_written(
    aws_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        bench.main(
            [
                "--records",
                "5",
                "--kms-latency-ms",
                "0",
                "--out",
                str(tmp_path),
                "--skip-cold-start",
                "--skip-operations",
                "--skip-workload",
            ]
        )
        == 0
    )
    assert not (tmp_path / "workload.json").exists()

    results = json.loads((tmp_path / "benchmark.json").read_text())
    by = {row["approach"]: row for row in results}
    assert [row["approach"] for row in results] == [cls.name for cls in APPROACHES]
    assert all(set(row) >= REQUIRED_KEYS for row in results)
    assert (
        by["naive-per-field-kms"]["kms_calls_per_record_write"],
        by["naive-per-field-kms"]["kms_calls_per_record_read"],
    ) == (5, 5)
    assert by["naive-per-field-kms"]["kms_operations"] == {"Encrypt": 25, "Decrypt": 25}
    assert by["aws-encryption-sdk-per-field"]["kms_operations"] == {"GenerateDataKey": 25, "Decrypt": 25}
    assert by["aws-encryption-sdk-per-record"]["kms_operations"] == {"GenerateDataKey": 5, "Decrypt": 5}
    # A person write wraps the full view's data key and the masked view's: twice the Encrypts.
    assert by["pii-vault-cache-off"]["kms_operations"] == {"Encrypt": 10, "Decrypt": 5}
    # Caches at the shipped bounds, as the local stack configures the stages: the reader fleet's key
    # table derives the day's sealing key once (GenerateMac) and stores the one data key it unwraps.
    assert by["pii-vault-cache-on"]["kms_operations"] == {"Encrypt": 2, "Decrypt": 1, "GenerateMac": 1}
    assert by["pii-vault-cache-on-multiget"]["kms_operations"] == {"Encrypt": 2, "Decrypt": 1, "GenerateMac": 1}
    assert by["pii-vault-cache-off-no-masked-view"]["kms_operations"] == {"Encrypt": 5, "Decrypt": 5}
    assert by["pii-vault-cache-off-no-masked-view"]["usd_per_million_records_write"] == pytest.approx(
        3.0 + 0.625 * write_units(by["pii-vault-cache-off-no-masked-view"])
    )
    assert by["pii-vault-cache-on-no-masked-view"]["kms_operations"] == {"Encrypt": 1, "Decrypt": 1, "GenerateMac": 1}
    # Issue 23.1: a person write, both views, is one write unit (the item under 1 KB); with caches
    # off each record also files its two data keys in the key table (one small item each).
    assert all(by[name]["dynamodb_write_units_per_record_write"] == 1.0 for name in by if name.startswith("pii-vault"))
    assert by["pii-vault-cache-off"]["key_table_write_units_per_record_write"] == 2.0
    # The masked view adds its ciphertexts and key references to every item.
    assert (
        by["pii-vault-cache-on"]["stored_bytes_per_record"]
        > by["pii-vault-cache-on-no-masked-view"]["stored_bytes_per_record"]
    )
    # Dollars per million records: 5 KMS requests at $0.03/10,000 plus one item (< 1 KB) written
    # at $0.625 or read strongly consistent at $0.125 per million request units.
    naive = by["naive-per-field-kms"]
    assert (naive["dynamodb_write_units_per_record_write"], naive["dynamodb_read_units_per_record_read"]) == (1, 1)
    assert naive["usd_per_million_records_write"] == pytest.approx(15.625)
    assert naive["usd_per_million_records_read"] == pytest.approx(15.125)
    assert by["pii-vault-cache-off"]["usd_per_million_records_write"] == pytest.approx(
        6.0 + 0.625 * write_units(by["pii-vault-cache-off"])
    )
    assert (tmp_path / "benchmark.png").read_bytes().startswith(b"\x89PNG")
    out = capsys.readouterr().out
    assert "| pii-vault-cache-on " in out and "2.5x fewer on writes, 5.0x fewer on reads" in out
    assert "| cache-on | with | 0.4 |" in out and "| cache-on | without | 0.2 |" in out
    assert "$ per 1M records written" in out and "10,000 customer secrets a month" in out


def write_units(row: dict[str, Any]) -> float:
    """A record write's units: its item, and (format v3) the key table's entries for the data keys it made."""
    return float(row["dynamodb_write_units_per_record_write"] + row["key_table_write_units_per_record_write"])


def test_given_ten_thousand_secrets_then_secrets_manager_costs_their_monthly_fee_and_calls() -> None:
    cost = secrets_costs()
    # 10,000 x $0.40, plus 1,010,000 calls (100 reads and 1 write each) at $0.05 per 10,000.
    assert cost["secrets-manager"] == pytest.approx(4000 + 5.05)
    assert cost["ssm-advanced-securestring"] == pytest.approx(500 + 5.05)
    # One key ($1), 1,010,000 KMS requests, 40,000 write units, 2,000,000 read units, 10,000 KB stored.
    assert cost["pii-vault"] == pytest.approx(1 + 3.03 + 0.025 + 0.25 + 10_000 / 1024**2 * 0.25)


def test_given_importtime_output_then_the_top_level_app_cumulative_time_is_parsed() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import app"],
        cwd=ROOT,
        env={"PII_VAULT_ROLE": "reader", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-500:]
    assert app_import_us(result.stderr) > 1000
    assert (
        app_import_us("import time:       120 |      4567 | app\nimport time:        80 |       900 |   app.sub\n")
        == 4567
    )


def test_given_a_dynamodb_item_then_its_size_follows_the_billing_rules() -> None:
    item = {"pk": {"S": "C#é"}, "n": {"N": "123"}, "b": {"B": b"\x00" * 10}, "m": {"M": {"k": {"B": b"xy"}}}}
    assert item_size(item) == (2 + 4) + (1 + 3) + (1 + 10) + (1 + 3 + 1 + 2 + 1)
    assert binary_bytes(item) == 12


@pytest.mark.parametrize(("cached", "calls"), [(True, 2 * 2), (False, 2 * 40)])
def test_given_a_small_rewrap_run_then_every_record_moves_with_one_reencrypt_per_distinct_key(
    cached: bool, calls: int
) -> None:
    """Each record holds a full-view and a masked-view key: shared per view when cached (one
    call per view per segment), one per record and view when not."""
    from bench import rewrap

    # The benchmark's sandbox moves data keys to a key of its own making, outside the base stack.
    with operator_code("the rewrap benchmark, in its own sandbox, to a key outside the base stack"):
        row = rewrap.run_case(40, 2, cached=cached)

    assert row["rewrapped"] == 40 and row["reencrypt_calls"] == calls


def test_given_writes_and_reads_then_the_meter_bills_the_larger_item_and_missing_reads() -> None:
    from bench.aws import DynamoMeter, StoredItems, aws_sandbox, ddb_client, person_key

    with aws_sandbox() as resources:
        table = resources["table_name"]
        meter = DynamoMeter(StoredItems())
        ddb = ddb_client(meter)
        key = person_key("meter", "0" * 32)
        ddb.put_item(TableName=table, Item={**key, "payload": {"B": b"x" * 1500}})  # 1.5 KB: 2 units
        ddb.update_item(  # billed on the larger of before (1.5 KB) and after: 2 units
            TableName=table, Key=key, UpdateExpression="SET n = :n", ExpressionAttributeValues={":n": {"N": "1"}}
        )
        ddb.update_item(TableName=table, Key=key, UpdateExpression="REMOVE payload")  # before 1.5 KB: 2
        ddb.delete_item(TableName=table, Key=key)  # a small item: 1
        small = [{"Put": {"TableName": table, "Item": person_key("meter", f"{i:032x}")}} for i in (1, 2)]
        ddb.transact_write_items(TransactItems=small)  # 2 x 2 units
        ddb.get_item(TableName=table, Key=key, ConsistentRead=True)  # missing: still 1 unit
        ddb.get_item(TableName=table, Key=key)  # eventually consistent: half

        assert meter.write_units == 2 + 2 + 2 + 1 + 4
        assert meter.read_units == 1.5
        unprobed = DynamoMeter()
        ddb_client(unprobed).update_item(
            TableName=table,
            Key=person_key("meter", f"{1:032x}"),
            UpdateExpression="SET n = :n",
            ExpressionAttributeValues={":n": {"N": "1"}},
        )
        assert unprobed.write_units == 1  # without the probe: a lower bound


def test_given_the_shipped_stages_then_each_operation_is_metered_with_its_log_line() -> None:
    from bench.operations import OPERATIONS, measure_operations

    document = measure_operations(3, 0.0, warm_up=1)

    ops = document["operations"]
    assert list(ops) == list(OPERATIONS)
    assert ops["create"]["dynamodb_calls"] == {"PutItem": 1.0}
    assert ops["index"]["dynamodb_calls"] == {"GetItem": 1.0, "UpdateItem": 1.0}
    assert ops["secret_put"]["dynamodb_calls"] == {"TransactWriteItems": 1.0}
    for name in ("create", "read", "search", "secret_put", "secret_get"):
        assert ops[name]["log_lines"] == 1.0  # the audit line, nothing else at INFO
        assert ops[name]["log_bytes"] > 200 and ops[name]["response_bytes"] > 0
    for name in ("read", "search", "secret_get"):
        assert ops[name]["kms_calls"] == 0  # warm: every data key in the container's cache
        assert ops[name]["dynamodb_write_units"] == 0
    assert ops["create"]["dynamodb_write_units"] >= 1 and ops["create"]["dynamodb_write_units"].is_integer()
    assert ops["secret_get"]["dynamodb_read_units"] == 2  # the head, then the version it names


def test_given_a_stage_process_then_its_cold_start_imports_the_aws_sdk_only_for_the_first_request() -> None:
    from bench.aws import local_resources
    from bench.coldstart import clients, measure_once, moto_server, process_env
    from bench.lambda_events import invocations, persons_needed, seed
    from chalicelib.stages import Trigger, stage

    with moto_server() as url:
        aws = clients(url)
        resources = local_resources(aws["kms"], aws["dynamodb"])
        seeded = seed(resources, aws, persons_needed(1))
        package = {"root": str(ROOT)}  # the source tree: no zip, same code
        # An API stage, the stream handler, a job: each trigger once.
        for spec, trigger in (
            (stage("writer"), Trigger.HTTP),
            (stage("indexer"), Trigger.STREAM),
            (stage("offboard"), Trigger.INVOKE),
        ):
            function = spec.function_for(trigger).name
            events = invocations(spec.name, function, seeded, 0)
            measured = measure_once(package, spec.name, function, events, process_env(spec.name, resources, url))

            assert measured["import_ms"] > 0 and len(measured["requests"]) == 2
            assert measured["sdk_at_import"] is False  # create_app makes its clients on the first request
            assert measured["boto3_loaded"] is False  # botocore clients of one session: no boto3
            assert measured["sdk_import_ms_in_first_request"] > 0
            if trigger is Trigger.HTTP:
                assert [r["status"] for r in measured["requests"]] == [201, 201]
