"""The local stack's ports: moto's, then one per API stage of the registry (tools/ports.py)."""

from __future__ import annotations

import pytest

from chalicelib.stages import API_STAGE_NAMES
from tools.devstack import DevStack, DevStackError
from tools.ports import port_variable

pytestmark = pytest.mark.unit


def test_given_no_variables_then_make_dev_ports_are_the_documented_ones() -> None:
    stack = DevStack.from_env({})

    assert stack.moto_url == "http://127.0.0.1:5000"
    assert (stack.writer_url, stack.reader_url, stack.masked_url) == (
        "http://127.0.0.1:8001",
        "http://127.0.0.1:8002",
        "http://127.0.0.1:8003",
    )
    assert set(stack.ports) == {"moto", *API_STAGE_NAMES}


def test_given_a_stage_port_variable_then_only_that_stage_moves() -> None:
    stack = DevStack.from_env({"PII_VAULT_MOTO_PORT": "9000", "PII_VAULT_READER_PORT": "9102"})

    assert (stack.moto_url, stack.reader_url) == ("http://127.0.0.1:9000", "http://127.0.0.1:9102")
    assert (stack.writer_url, stack.masked_url) == ("http://127.0.0.1:8001", "http://127.0.0.1:8003")


def test_given_moto_or_a_stage_then_its_port_variable_is_the_documented_one() -> None:
    assert port_variable("moto") == "PII_VAULT_MOTO_PORT"
    assert port_variable("masked") == "PII_VAULT_MASKED_PORT"


def test_given_free_ports_then_every_process_has_its_own_and_none_is_make_dev_s() -> None:
    ports = DevStack.on_free_ports().ports

    assert set(ports) == {"moto", *API_STAGE_NAMES}
    assert len(set(ports.values())) == len(ports)
    assert not set(ports.values()) & {5000, 8001, 8002, 8003}


def test_given_a_port_for_a_stage_that_serves_no_api_then_refused() -> None:
    with pytest.raises(DevStackError, match="indexer"):
        DevStack(stage_ports={"indexer": 9001})
