"""One local stack (moto server + `chalice local` writer, reader and masked stage) for the whole e2e session.

Ports are fresh ephemeral ones, so the tests never clash with a running `make dev`.
"""

import uuid
from dataclasses import dataclass

import pytest
import requests

from tests.plaintext_guard import GUARD
from tests.tables import scan_all
from tools.devstack import DevStack, free_port
from tools.sample import PERSON

TIMEOUT = 10


@dataclass(frozen=True)
class LocalStack:
    writer_url: str
    reader_url: str
    table_name: str
    dynamodb: object  # raw boto3 client on the moto server, for looking under the API
    moto_url: str = ""
    masked_url: str = ""
    env: dict | None = None  # the children's environment (for running tools against the stack)
    stack: DevStack | None = None  # the stack itself (ports, log directory: tests/e2e/test_docs_examples.py)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    stack = DevStack(
        moto_port=free_port(),
        writer_port=free_port(),
        reader_port=free_port(),
        masked_port=free_port(),
        log_dir=tmp_path_factory.mktemp("devstack"),
    )
    with stack:
        local = LocalStack(
            writer_url=stack.writer_url,
            reader_url=stack.reader_url,
            masked_url=stack.masked_url,
            table_name=stack.resources["table_name"],
            dynamodb=stack.client("dynamodb"),
            moto_url=stack.moto_url,
            env=stack.tools_env(),
            stack=stack,
        )
        yield local
        # The no-plaintext guard sees every stored attribute and every server log line.
        for table in local.dynamodb.list_tables()["TableNames"]:
            GUARD.observe_items(f"moto server table {table}", scan_all(local.dynamodb, table))
    for log in sorted(stack.log_dir.glob("*")):
        GUARD.observe("file", f"e2e server log {log.name}", log.read_bytes())


@pytest.fixture
def customer_id():
    """A tenant of its own per test: tests share the table, never each other's data."""
    return "e2e-" + uuid.uuid4().hex[:12]


def create_person(stack, customer_id, person=PERSON):
    response = requests.post(f"{stack.writer_url}/customers/{customer_id}/people", json=person, timeout=TIMEOUT)
    assert response.status_code == 201, response.text
    return response


def read_person(stack, customer_id, person_id):
    response = requests.get(f"{stack.reader_url}/customers/{customer_id}/people/{person_id}", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()
