"""The masked stage of the local stack over real HTTP (`make dev` serves it on 8003)."""

import requests

from tests.e2e.conftest import TIMEOUT, LocalStack, create_person
from tests.plaintext_guard import register
from tools import sample

PERSON = sample.person()
register(PERSON)
# What the masked view never answers (it keeps the city and the country by design).
HIDDEN = [v for v in sample.plaintexts(PERSON) if v not in (PERSON["address"]["city"], PERSON["address"]["country"])]


def _get(stack: LocalStack, path: str) -> requests.Response:
    return requests.get(f"{stack.masked_url}{path}", timeout=TIMEOUT)


def test_given_a_person_written_then_the_masked_stage_answers_masked_projections_only(
    local_stack: LocalStack, customer_id: str
) -> None:
    person_id = create_person(local_stack, customer_id, PERSON).json()["id"]

    one = _get(local_stack, f"/customers/{customer_id}/people/{person_id}")
    page = _get(local_stack, f"/customers/{customer_id}/people?fields=email,dob")
    batch = _get(local_stack, f"/customers/{customer_id}/people?ids={person_id}")

    assert one.status_code == page.status_code == batch.status_code == 200, (one.text, page.text, batch.text)
    assert one.headers["ETag"] == '"1"'
    local, domain = PERSON["email"].split("@")
    assert one.json()["data"] == {
        "name": PERSON["name"][0] + ".",
        "surname": PERSON["surname"][0] + ".",
        "email": f"{local[0]}***@{domain}",
        "dob": PERSON["dob"][:4],
        "address": {"city": PERSON["address"]["city"], "country": PERSON["address"]["country"]},
    }
    assert page.json()["items"][0]["data"] == {"email": f"{local[0]}***@{domain}", "dob": PERSON["dob"][:4]}
    for response in (one, page, batch):
        assert not any(value in response.text for value in HIDDEN)


def test_given_a_patch_and_a_delete_then_the_masked_stage_follows(local_stack: LocalStack, customer_id: str) -> None:
    person_id = create_person(local_stack, customer_id, PERSON).json()["id"]
    base = f"{local_stack.writer_url}/customers/{customer_id}/people/{person_id}"
    assert requests.patch(base, json={"dob": "1999-09-09"}, timeout=TIMEOUT).status_code == 200

    assert _get(local_stack, f"/customers/{customer_id}/people/{person_id}?fields=dob").json()["data"] == {
        "dob": "1999"
    }
    assert requests.delete(base, timeout=TIMEOUT).status_code == 204
    assert _get(local_stack, f"/customers/{customer_id}/people/{person_id}").status_code == 404


def test_given_the_masked_stage_then_it_has_no_secret_search_or_write_route(
    local_stack: LocalStack, customer_id: str
) -> None:
    requests.put(
        f"{local_stack.writer_url}/customers/{customer_id}/secrets/token",
        json={"value": "whsec_e2e_masked"},
        timeout=10,
    )
    base = f"{local_stack.masked_url}/customers/{customer_id}"
    attempts = [
        requests.get(f"{base}/secrets/token", timeout=TIMEOUT),
        requests.get(f"{base}/secrets/token/versions", timeout=TIMEOUT),
        requests.post(f"{base}/people/search", json={"email": PERSON["email"]}, timeout=TIMEOUT),
        requests.post(f"{base}/people", json=PERSON, timeout=TIMEOUT),
        requests.patch(f"{base}/people/{'0' * 32}", json={"name": "Mallory"}, timeout=TIMEOUT),
        requests.delete(f"{base}/people/{'0' * 32}", timeout=TIMEOUT),
    ]
    for response in attempts:
        answer = (response.status_code, response.json()["code"])
        assert answer in ((404, "not_found"), (405, "method_not_allowed")), response.text
        assert "whsec_e2e_masked" not in response.text
