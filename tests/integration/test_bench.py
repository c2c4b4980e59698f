"""Smoke test of the benchmark (bench/): tiny run, no simulated latency, real outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
            ["--records", "5", "--kms-latency-ms", "0", "--out", str(tmp_path), "--skip-cold-start", "--skip-workload"]
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
    assert by["pii-vault-cache-on"]["kms_operations"] == {"Encrypt": 2, "Decrypt": 1}
    assert by["pii-vault-cache-on-multiget"]["kms_operations"] == {"Encrypt": 2, "Decrypt": 1}
    assert by["pii-vault-cache-off-no-masked-view"]["kms_operations"] == {"Encrypt": 5, "Decrypt": 5}
    assert by["pii-vault-cache-off-no-masked-view"]["usd_per_million_records_write"] == pytest.approx(
        3.0 + 0.625 * by["pii-vault-cache-off-no-masked-view"]["dynamodb_write_units_per_record_write"]
    )
    assert by["pii-vault-cache-on-no-masked-view"]["kms_operations"] == {"Encrypt": 1, "Decrypt": 1}
    # The masked view adds its ciphertexts and wrapped key to every item.
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
        6.0 + 0.625 * by["pii-vault-cache-off"]["dynamodb_write_units_per_record_write"]
    )
    assert (tmp_path / "benchmark.png").read_bytes().startswith(b"\x89PNG")
    out = capsys.readouterr().out
    assert "| pii-vault-cache-on " in out and "2.5x fewer on writes, 5.0x fewer on reads" in out
    assert "| cache-on | with | 0.4 |" in out and "| cache-on | without | 0.2 |" in out
    assert "$ per 1M records written" in out and "10,000 customer secrets a month" in out


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
def test_given_a_small_rewrap_run_then_every_record_moves_with_one_reencrypt_per_distinct_key(cached, calls) -> None:
    """Each record holds a full-view and a masked-view key: shared per view when cached (one
    call per view per segment), one per record and view when not."""
    from bench import rewrap

    # The benchmark's sandbox moves data keys to a key of its own making, outside the base stack.
    with operator_code("the rewrap benchmark, in its own sandbox, to a key outside the base stack"):
        row = rewrap.run_case(40, 2, cached=cached)

    assert row["rewrapped"] == 40 and row["reencrypt_calls"] == calls
