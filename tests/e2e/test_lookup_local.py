"""Lookup and erasure through the local stack: the writer's table stream feeds the indexer
(tools.streampoll, as `make dev` runs it), the reader searches, jobs run from the CLI."""

import json
import subprocess
import sys
import time
import uuid
from typing import Any

import requests

from tests.e2e.conftest import LocalStack
from tests.plaintext_guard import register

TIMEOUT = 10
INDEX_WAIT_S = 15  # a bound, not a measurement: the measured lag is about a second (docs/find-and-forget.md)
PERSON: dict[str, Any] = {
    "name": "Leopoldine",
    "surname": "Okonkwo-Hale",
    "email": "leopoldine.oh@example.net",
    "dob": "1991-06-30",
    "address": {"line1": "3 Ropewalk Yard", "city": "Whitstable", "postal_code": "CT5 1AB", "country": "GB"},
}
register(PERSON)


def _search(stack: LocalStack, customer_id: str, email: str) -> list[dict[str, Any]]:
    response = requests.post(
        f"{stack.reader_url}/customers/{customer_id}/people/search", json={"email": email}, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _until_found(stack: LocalStack, customer_id: str, email: str, expected: list[str]) -> list[str]:
    deadline = time.monotonic() + INDEX_WAIT_S
    while True:
        found = [item["id"] for item in _search(stack, customer_id, email)]
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_given_a_created_person_then_search_finds_it_and_after_delete_not(
    local_stack: LocalStack, customer_id: str
) -> None:
    created = requests.post(f"{local_stack.writer_url}/customers/{customer_id}/people", json=PERSON, timeout=TIMEOUT)
    assert created.status_code == 201
    person_id = created.json()["id"]

    assert _until_found(local_stack, customer_id, "leopoldine.oh@EXAMPLE.net", [person_id]) == [person_id]
    [view] = _search(local_stack, customer_id, PERSON["email"])
    assert view["data"] == PERSON

    deleted = requests.delete(f"{local_stack.writer_url}/customers/{customer_id}/people/{person_id}", timeout=TIMEOUT)
    assert deleted.status_code == 204
    assert _search(local_stack, customer_id, PERSON["email"]) == []


def test_given_a_malformed_email_then_400_and_the_value_is_not_echoed(
    local_stack: LocalStack, customer_id: str
) -> None:
    response = requests.post(
        f"{local_stack.reader_url}/customers/{customer_id}/people/search",
        json={"email": "leopoldine@@nowhere"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400
    assert "leopoldine" not in response.text


def test_given_a_tenant_when_offboarded_from_the_cli_then_nothing_of_it_is_left(
    local_stack: LocalStack, customer_id: str
) -> None:
    for n in range(3):
        person = {**PERSON, "email": f"leopoldine.{n}@example.net"}
        response = requests.post(
            f"{local_stack.writer_url}/customers/{customer_id}/people",
            json=person,
            headers={"Idempotency-Key": str(uuid.uuid4())},
            timeout=TIMEOUT,
        )
        assert response.status_code == 201
    assert (
        requests.put(
            f"{local_stack.writer_url}/customers/{customer_id}/secrets/tok", json={"value": "v"}, timeout=TIMEOUT
        ).status_code
        == 201
    )

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.jobs",
            "offboard",
            "--customer",
            customer_id,
            "--segments",
            "2",
            "--endpoint-url",
            local_stack.moto_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=local_stack.env_for("offboard"),  # the job signs as the offboard stage, as deployed
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["done"] and report["totals"]["deleted"] == 3 + 2  # people, secret head + version
    assert report["totals"]["idempotency_items"] == 6

    page = requests.get(f"{local_stack.reader_url}/customers/{customer_id}/people", timeout=TIMEOUT).json()
    assert page["items"] == []
    left = local_stack.dynamodb.query(
        TableName=local_stack.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"C#{customer_id}"}},
    )["Items"]
    assert left == []
