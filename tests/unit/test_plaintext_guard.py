"""The no-plaintext guard's search itself (a fresh Guard, not the session-wide one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.plaintext_guard import Guard

ROOT = Path(__file__).resolve().parents[2]


def test_given_a_registered_value_in_a_log_an_error_body_or_a_stored_attribute_then_each_is_a_hit() -> None:
    guard = Guard(current="t::x")
    guard.register({"name": "Wilhelmina", "address": {"city": "Zaandam-Noord"}}, origin="t::x")
    guard.observe("log", "record from logger chalicelib.service", "person.read name=Wilhelmina")
    guard.observe("error body", "400 of POST /p", b'{"code":"validation_error","message":"Zaandam-Noord"}')
    guard.observe_items("moto table t", [{"sk": {"S": "P#1"}, "slots": {"M": {"0": {"B": b"..Wilhelmina.."}}}}])
    guard.observe("log", "record from logger other", "nothing to see")

    hits = guard.hits()

    assert len(hits) == 3
    assert all("Wilhelmina" not in hit and "Zaandam" not in hit for hit in hits), "hits name places, not values"
    assert "record from logger chalicelib.service" in hits[0] and "#1 (from t::x)" in hits[0]
    assert "400 of POST /p" in hits[1] and "moto table t key=P#1" in hits[2]


def test_given_short_values_or_non_json_bodies_then_nothing_is_registered() -> None:
    guard = Guard()
    guard.register("acme", "GB", "000000000", "ababab", origin="t")
    guard.register_body(b"\xff\xfe not utf-8", origin="t")
    guard.register_body("not json", origin="t")
    guard.register_body('{"value": "sk_live_123456"}', origin="t")

    assert list(guard.values) == ["sk_live_123456"]


def test_given_a_value_also_used_in_a_url_then_it_is_an_identifier_and_not_searched() -> None:
    guard = Guard()
    guard.request("POST", "/customers/0/people", '{"name": "0a1b2c3d4e", "surname": "Kowalczyk"}', origin="t")
    guard.request("GET", "/customers/0/people/0a1b2c3d4e", None, origin="t")
    guard.observe("file", "access log", '"GET /customers/0/people/0a1b2c3d4e HTTP/1.1" 404 Kowalczyk')

    hits = guard.hits()

    assert len(hits) == 1 and "#2" in hits[0]


def test_given_a_stored_json_document_then_its_values_are_searched_and_its_keys_are_not() -> None:
    guard = Guard()
    guard.register({"value": "created_at", "other": "Kowalczyk"}, origin="t")  # a fuzzer sends key names too
    stored = '{"body": {"created_at": "2026-01-01T00:00:00Z", "id": "Kowalczyk"}, "status": 201}'
    guard.observe_items("moto table idempotency", [{"id": {"S": "pii-vault-writer#abc"}, "data": {"S": stored}}])

    hits = guard.hits()

    assert len(hits) == 1 and "#2" in hits[0]


def test_given_a_value_that_is_a_string_constant_of_the_code_then_it_is_vocabulary_and_not_searched() -> None:
    """Hypothesis feeds the fuzzer the string constants of local modules ("surname", a logger name):
    they occur in logs by design. A value the code does not spell is still searched."""
    guard = Guard()
    guard.register({"value": "chalicelib.audit", "other": "Szczebrzeszyn"}, origin="t")
    guard.observe("log", "record from logger chalicelib.audit", "chalicelib.audit: Szczebrzeszyn")

    hits = guard.hits()

    assert len(hits) == 1 and "#2 (from t)" in hits[0]


_PROBE = """
import logging
from tests.plaintext_guard import register

def test_registers():
    register("Zebulon-Quaxworth")

def test_logs():
    logging.getLogger("probe").warning("x Zebulon-Quaxworth y")
"""


def test_given_xdist_workers_then_a_value_registered_on_one_and_logged_on_the_other_fails_the_run(
    tmp_path: Path,
) -> None:
    """Under ``make test`` (pytest -n) each worker hands what it saw to the controller, which
    searches across workers: the run fails, and names the place, not the value."""
    (tmp_path / "conftest.py").write_text(
        "from tests.plaintext_guard import pytest_configure, pytest_runtest_setup, pytest_sessionfinish, "
        "pytest_terminal_summary, pytest_testnodedown  # noqa: F401\n"
    )
    (tmp_path / "test_probe.py").write_text(_PROBE)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "xdist",
            "-n",
            "2",
            "--dist",
            "load",
            "-p",
            "no:cacheprovider",
            "-q",
            "-c",
            os.devnull,
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        timeout=300,
    )

    assert result.returncode == 1, result.stdout[-2000:]
    assert "2 passed" in result.stdout
    assert "registered value #1 (from test_probe.py::test_registers) found in log record from logger probe" in (
        result.stdout
    )
    assert "Zebulon" not in result.stdout.split("PLAINTEXT FOUND")[1]
