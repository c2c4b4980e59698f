"""Concurrent clients over real HTTP: nothing lost, no gaps, no duplicates, no 5xx."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from tests.e2e.conftest import TIMEOUT, LocalStack, create_person, read_person
from tools.sample import PERSON


def test_given_parallel_patches_of_different_fields_then_every_change_survives(
    local_stack: LocalStack, customer_id: str
) -> None:
    person_id = create_person(local_stack, customer_id).json()["id"]
    changes: dict[str, Any] = {
        "name": "Concurrent-Name",
        "surname": "Concurrent-Surname",
        "email": "concurrent.email@example.org",
        "dob": "1990-01-02",
        "address": {"line1": "1 Parallel Way", "city": "Threadton", "postal_code": "TH1 1AA", "country": "IE"},
    }

    def patch(field: str) -> int:
        url = f"{local_stack.writer_url}/customers/{customer_id}/people/{person_id}"
        return requests.patch(url, json={field: changes[field]}, timeout=TIMEOUT).status_code

    with ThreadPoolExecutor(max_workers=len(changes)) as pool:
        statuses = list(pool.map(patch, changes))

    assert statuses == [200] * len(changes)
    body = read_person(local_stack, customer_id, person_id)
    assert body["data"] == changes and body["version"] == 1 + len(changes)


def test_given_parallel_secret_puts_then_versions_are_exactly_one_to_n(
    local_stack: LocalStack, customer_id: str
) -> None:
    url = f"{local_stack.writer_url}/customers/{customer_id}/secrets/rotating"

    def put(n: int) -> tuple[int, int]:
        # A well-behaved client: 409 (contention) comes with Retry-After; retry, bounded.
        for _attempt in range(20):
            response = requests.put(url, json={"value": f"secret-value-{n}"}, timeout=TIMEOUT)
            if response.status_code != 409:
                break
            assert response.headers["Retry-After"]
            time.sleep(0.05)
        return response.status_code, response.json().get("version", 0)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(put, range(24)))

    assert {status for status, _ in results} == {201}
    assert sorted(version for _, version in results) == list(range(1, 25))
    listed = requests.get(
        f"{local_stack.reader_url}/customers/{customer_id}/secrets/rotating/versions", timeout=TIMEOUT
    )
    assert [v["version"] for v in listed.json()["versions"]] == list(range(1, 25))
    values = {
        requests.get(
            f"{url.replace(local_stack.writer_url, local_stack.reader_url)}?version={n}", timeout=TIMEOUT
        ).json()["value"]
        for n in range(1, 25)
    }
    assert values == {f"secret-value-{n}" for n in range(24)}


def test_given_parallel_retries_with_one_idempotency_key_then_one_person(
    local_stack: LocalStack, customer_id: str
) -> None:
    url = f"{local_stack.writer_url}/customers/{customer_id}/people"

    def post(_: int) -> requests.Response:
        return requests.post(
            url, json=PERSON, headers={"Idempotency-Key": "same-request-9Fq2Lk7Zx0Wc"}, timeout=TIMEOUT
        )

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(post, range(12)))

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409} and 201 in statuses
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    listed = requests.get(f"{local_stack.reader_url}/customers/{customer_id}/people", timeout=TIMEOUT).json()
    assert len(listed["items"]) == 1
