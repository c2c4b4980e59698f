"""One local stack (moto server + `chalice local` writer, reader and masked stage) for the whole e2e session.

Ports are fresh ephemeral ones, so the tests never clash with a running `make dev`.
"""

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.store import layout
from tests.plaintext_guard import GUARD
from tests.request_proof import PROOF
from tests.tables import scan_all
from tools.devstack import DevStack
from tools.recorder import principals
from tools.sample import PERSON

TIMEOUT = 10
# Writes to tenants named so lose their answer now and then (tools/motoserver.py): the load
# guard's tenants (tests/e2e/test_load_smoke.py), never another test's.
LOSSY_TENANTS = "lossy"
LOSE_EVERY = 20


@dataclass(frozen=True)
class LocalStack:
    writer_url: str
    reader_url: str
    table_name: str
    dynamodb: Any  # raw boto3 client on the moto server, for looking under the API (boto3 is untyped)
    moto_url: str
    masked_url: str
    env: dict[str, str]  # the tools' environment, signing as the operator (tools.tenants, tools.jobs)
    log_dir: Path  # the children's logs (moto.log, writer.log, ...)
    stack: DevStack  # the stack itself (ports, log directory: tests/e2e/test_docs_examples.py)

    def env_for(self, principal: str) -> dict[str, str]:
        """The tools' environment signing as ``principal`` (a job run as its stage, as deployed)."""
        return {**self.env, **principals.environment(principal)}


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    log_dir = tmp_path_factory.mktemp("devstack")
    stack = DevStack.on_free_ports(
        log_dir=log_dir,
        request_log=log_dir / "requests.jsonl",
        moto_args=(
            "--lose-answer-every",
            str(LOSE_EVERY),
            "--lose-answer-marker",
            layout.partition_key(f"{LOSSY_TENANTS}-"),
        ),
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
            log_dir=log_dir,
            stack=stack,
        )
        yield local
        # The no-plaintext guard sees every stored attribute and every server log line.
        for table in local.dynamodb.list_tables()["TableNames"]:
            GUARD.observe_items(f"moto server table {table}", scan_all(local.dynamodb, table))
    for log in sorted(log_dir.glob("*")):
        GUARD.observe("file", f"e2e server log {log.name}", log.read_bytes())
    # Every request the local stack's processes sent, judged by the generated policies.
    problems = PROOF.check(PROOF.load_server_log(log_dir / "requests.jsonl"))
    if problems:
        pytest.fail("the local stack sent requests its policies would not allow on AWS:\n" + "\n".join(problems))


@pytest.fixture
def customer_id() -> str:
    """A tenant of its own per test: tests share the table, never each other's data."""
    return "e2e-" + uuid.uuid4().hex[:12]


def create_person(stack: LocalStack, customer_id: str, person: Mapping[str, Any] = PERSON) -> requests.Response:
    response = requests.post(f"{stack.writer_url}/customers/{customer_id}/people", json=person, timeout=TIMEOUT)
    assert response.status_code == 201, response.text
    return response


def read_person(stack: LocalStack, customer_id: str, person_id: str) -> dict[str, Any]:
    response = requests.get(f"{stack.reader_url}/customers/{customer_id}/people/{person_id}", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
