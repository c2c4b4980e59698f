"""Smoke test of the benchmark (bench/run.py): tiny run, no simulated latency, real outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import run as bench

REQUIRED_KEYS = {
    "approach", "kms_calls_per_record_write", "kms_calls_per_record_read", "records_per_s_write",
    "records_per_s_read", "p50_ms_write", "p99_ms_write", "p50_ms_read", "p99_ms_read", "stored_bytes_per_record",
}


def test_given_a_tiny_run_then_every_approach_round_trips_and_the_outputs_are_written(
    aws_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(["--records", "5", "--kms-latency-ms", "0", "--out", str(tmp_path), "--skip-cold-start"]) == 0

    results = json.loads((tmp_path / "benchmark.json").read_text())
    by = {row["approach"]: row for row in results}
    assert [row["approach"] for row in results] == [cls.name for cls in bench.APPROACHES]
    assert all(REQUIRED_KEYS <= set(row) for row in results)
    assert (by["naive-per-field-kms"]["kms_calls_per_record_write"], by["naive-per-field-kms"]["kms_calls_per_record_read"]) == (5, 5)
    assert by["naive-per-field-kms"]["kms_operations"] == {"Encrypt": 25, "Decrypt": 25}
    assert by["aws-encryption-sdk-per-field"]["kms_operations"] == {"GenerateDataKey": 25, "Decrypt": 25}
    assert by["aws-encryption-sdk-per-record"]["kms_operations"] == {"GenerateDataKey": 5, "Decrypt": 5}
    assert by["pii-vault-cache-off"]["kms_operations"] == {"Encrypt": 5, "Decrypt": 5}
    assert by["pii-vault-cache-on"]["kms_operations"] == {"Encrypt": 1, "Decrypt": 1}
    assert by["pii-vault-cache-on-multiget"]["kms_operations"] == {"Encrypt": 1, "Decrypt": 1}
    assert (tmp_path / "benchmark.png").read_bytes().startswith(b"\x89PNG")
    out = capsys.readouterr().out
    assert "| pii-vault-cache-on " in out and "5.0x fewer on writes, 5.0x fewer on reads" in out


def test_given_importtime_output_then_the_top_level_app_cumulative_time_is_parsed() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import app"],
        cwd=bench.ROOT, env={"PII_VAULT_ROLE": "reader", "PATH": ""}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-500:]
    assert bench.app_import_us(result.stderr) > 1000
    assert bench.app_import_us("import time:       120 |      4567 | app\n"
                               "import time:        80 |       900 |   app.sub\n") == 4567


def test_given_a_dynamodb_item_then_its_size_follows_the_billing_rules() -> None:
    item = {"pk": {"S": "C#é"}, "n": {"N": "123"}, "b": {"B": b"\x00" * 10}, "m": {"M": {"k": {"B": b"xy"}}}}
    assert bench.item_size(item) == (2 + 4) + (1 + 3) + (1 + 10) + (1 + 3 + 1 + 2 + 1)
    assert bench.binary_bytes(item) == 12
