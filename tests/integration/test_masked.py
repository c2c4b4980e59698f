"""The masked stage over moto: masked projections only, people only, kept current by every write.

docs/masked.md documents each field's projection. The masked stage's app is built
with ``create_app("masked")`` on clients of its own (tests/integration/conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from chalice.test import Client

from chalicelib.api.gateway_responses import not_found
from chalicelib.stages.app import create_app
from chalicelib.store import layout
from chalicelib.support.config import Settings
from tests.integration.conftest import CALLERS, NO_KEY_CACHE, REGION, Stack, body_of, send
from tests.integration.test_api import PERSON, PLAINTEXTS, SECRET, create

MASKED = {
    "name": PERSON["name"][0] + ".",
    "surname": PERSON["surname"][0] + ".",
    "email": PERSON["email"][0] + "***@" + PERSON["email"].split("@")[1],
    "dob": PERSON["dob"][:4],
    "address": {"city": PERSON["address"]["city"], "country": PERSON["address"]["country"]},
}


def masked(stack: Stack) -> Client:
    return stack.masked


def read(stack: Stack, path: str) -> Any:
    response = send(masked(stack), "GET", path)
    assert response.status_code == 200, response.body
    return body_of(response)


# Everything the masked view does not keep (it keeps the city and the country by design).
HIDDEN = [value for value in PLAINTEXTS if value not in (PERSON["address"]["city"], PERSON["address"]["country"])]


def assert_no_full_value(body: Any) -> None:
    text = str(body)
    assert len(HIDDEN) >= 8
    for value in HIDDEN:
        assert value not in text


def test_given_a_person_then_the_masked_stage_answers_each_field_s_projection_and_nothing_else(stack: Stack) -> None:
    person_id = create(stack)
    stack.masked_kms.take()

    response = send(masked(stack), "GET", f"/customers/acme/people/{person_id}")

    body = body_of(response)
    assert response.status_code == 200 and response.headers["ETag"] == '"1"'
    assert body["data"] == MASKED and body["id"] == person_id and body["version"] == 1
    assert_no_full_value(body)
    assert stack.masked_kms.take() == ["Decrypt"]  # the masked view's data key only


def test_given_fields_then_only_those_projections(stack: Stack) -> None:
    person_id = create(stack)
    body = read(stack, f"/customers/acme/people/{person_id}?fields=email,dob")
    assert body["data"] == {"email": MASKED["email"], "dob": MASKED["dob"]}


def test_given_a_page_and_a_multi_get_then_masked_items_and_missing_ids(stack: Stack) -> None:
    ids = [create(stack) for _ in range(3)]
    absent = "f" * 32
    page = read(stack, "/customers/acme/people?limit=2&fields=name")
    assert len(page["items"]) == 2 and page["next"]
    assert all(item["data"] == {"name": MASKED["name"]} for item in page["items"])
    rest = read(stack, f"/customers/acme/people?next={page['next']}")
    assert len(rest["items"]) == 1 and rest["next"] is None
    batch = read(stack, f"/customers/acme/people?ids={ids[0]},{absent},{ids[2]}")
    assert [item["id"] for item in batch["items"]] == [ids[0], ids[2]] and batch["missing"] == [absent]
    assert all(item["data"] == MASKED for item in batch["items"])
    assert_no_full_value([page, rest, batch])


KEYS_TABLE = "pii-vault-keys"
MASKED_ATTRIBUTES = {*layout.V3_MASKED_ATTRIBUTES, *layout.V3_MASKED_KEY_ATTRIBUTES}


def test_given_the_masked_stage_then_every_read_is_a_projection_of_the_masked_attributes(stack: Stack) -> None:
    """What the IAM policy requires (tests/unit/test_masked_policies.py): no request without a projection."""
    seen: list[tuple[str, dict[str, Any]]] = []
    person_id = create(stack)

    def capture(params: dict[str, Any], model: Any, **_: Any) -> None:
        seen.append((model.name, params))

    stack.masked_clients["dynamodb"].meta.events.register("provide-client-params.dynamodb.*", capture)
    read(stack, f"/customers/acme/people/{person_id}")
    read(stack, "/customers/acme/people")
    read(stack, f"/customers/acme/people?ids={person_id}")

    person_reads = [(name, params) for name, params in seen if params.get("TableName") != KEYS_TABLE]
    assert [name for name, _ in person_reads] == ["GetItem", "Query", "BatchGetItem"]
    full_view = {*layout.V3_FIELD_ATTRIBUTES, *layout.V3_KEY_ATTRIBUTES, *layout.LEGACY_FIELD_ATTRIBUTES, "slots"}
    for name, params in person_reads:
        request = params if name != "BatchGetItem" else next(iter(params["RequestItems"].values()))
        asked = set(request["ExpressionAttributeNames"].values())
        assert not asked & full_view, name
        assert request["ProjectionExpression"]
    assert person_reads[1][1]["Select"] == "SPECIFIC_ATTRIBUTES"
    # The key table: its masked-view partitions only (with caches off, each read fetches its key).
    key_reads = [params for _name, params in seen if params.get("TableName") == KEYS_TABLE]
    assert key_reads and all(p["Key"]["p"]["S"].startswith("masked/") for p in key_reads)


def test_given_a_patch_then_that_field_s_projection_changes_and_the_others_stay(stack: Stack) -> None:
    person_id = create(stack)
    patched = send(stack.writer, "PATCH", f"/customers/acme/people/{person_id}", {"email": "zoe@example.net"})
    assert patched.status_code == 200

    body = read(stack, f"/customers/acme/people/{person_id}")

    assert body["version"] == 2
    assert body["data"] == {**MASKED, "email": "z***@example.net"}


def test_given_a_replace_then_every_projection_changes(stack: Stack) -> None:
    person_id = create(stack)
    send(stack.writer, "PATCH", f"/customers/acme/people/{person_id}", {"name": "Zoe"})  # leaves a PATCH slot
    other = {
        **PERSON,
        "name": "Ottilie",
        "surname": "Brandt",
        "email": "o.brandt@example.com",
        "dob": "1990-01-02",
        "address": {"line1": "1 Elm St", "city": "Springfield", "postal_code": "12345", "country": "US"},
    }
    assert send(stack.writer, "PUT", f"/customers/acme/people/{person_id}", other).status_code == 200

    body = read(stack, f"/customers/acme/people/{person_id}")

    assert body["version"] == 3
    assert body["data"] == {
        "name": "O.",
        "surname": "B.",
        "email": "o***@example.com",
        "dob": "1990",
        "address": {"city": "Springfield", "country": "US"},
    }
    item = next(i for i in stack.scan() if i["sk"]["S"] == f"P#{person_id}")
    assert {name for name in item if name in layout.V3_MASKED_KEY_ATTRIBUTES} == {"j0"}  # the PATCH's slots are gone


def test_given_a_delete_then_the_masked_stage_answers_404(stack: Stack) -> None:
    person_id = create(stack)
    assert send(stack.writer, "DELETE", f"/customers/acme/people/{person_id}").status_code == 204
    response = send(masked(stack), "GET", f"/customers/acme/people/{person_id}")
    assert (response.status_code, body_of(response)["code"]) == (404, "not_found")


def test_given_a_record_written_before_the_masked_view_then_its_fields_answer_null(stack: Stack) -> None:
    """Never a fallback to the full values; the reader's answer is unchanged."""
    person_id = create(stack)
    item = next(i for i in stack.scan() if i["sk"]["S"] == f"P#{person_id}")
    legacy = {name: value for name, value in item.items() if name not in MASKED_ATTRIBUTES}
    stack.dynamodb.put_item(TableName=stack.resources["table_name"], Item=legacy)

    body = read(stack, f"/customers/acme/people/{person_id}")
    page = read(stack, "/customers/acme/people?fields=email")

    assert body["data"] == dict.fromkeys(PERSON) and body["version"] == 1
    assert page["items"][0]["data"] == {"email": None}
    assert body_of(send(stack.reader, "GET", f"/customers/acme/people/{person_id}"))["data"] == PERSON


def test_given_a_legacy_record_patched_then_the_patched_field_has_a_projection_and_the_rest_null(stack: Stack) -> None:
    person_id = create(stack)
    item = next(i for i in stack.scan() if i["sk"]["S"] == f"P#{person_id}")
    stack.dynamodb.put_item(
        TableName=stack.resources["table_name"],
        Item={name: value for name, value in item.items() if name not in MASKED_ATTRIBUTES},
    )
    send(stack.writer, "PATCH", f"/customers/acme/people/{person_id}", {"dob": "1970-05-06"})

    body = read(stack, f"/customers/acme/people/{person_id}")

    assert body["data"] == {**dict.fromkeys(PERSON), "dob": "1970"} and body["version"] == 2


def test_given_a_writer_without_the_view_then_its_writes_remove_the_stale_projections(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A projection never outlives its value: a write without the view leaves none behind."""
    person_id = create(stack)
    settings = Settings("writer", region=REGION, **CALLERS, **NO_KEY_CACHE)
    without = create_app(
        settings=settings,
        kms_client=stack.writer_clients["kms"],
        dynamodb_client=stack.writer_clients["dynamodb"],
        masked_view=False,
    )
    with Client(without) as writer:
        assert send(writer, "PATCH", f"/customers/acme/people/{person_id}", {"name": "Zoe"}).status_code == 200

    body = read(stack, f"/customers/acme/people/{person_id}")

    assert body["data"] == dict.fromkeys(PERSON) and body["version"] == 2


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/customers/acme/secrets/hook"),
        ("GET", "/customers/acme/secrets/hook/versions"),
        ("POST", "/customers/acme/people/search"),
        ("POST", "/customers/acme/people"),
        ("PUT", "/customers/acme/people/" + "a" * 32),
        ("PATCH", "/customers/acme/people/" + "a" * 32),
        ("DELETE", "/customers/acme/people/" + "a" * 32),
    ],
)
def test_given_the_masked_stage_then_it_has_no_secret_search_or_write_route(
    stack: Stack, method: str, path: str
) -> None:
    send(stack.writer, "PUT", "/customers/acme/secrets/hook", {"value": SECRET})
    stack.masked_kms.take()
    response = send(masked(stack), method, path, {"email": PERSON["email"]} if method != "GET" else None)
    # No route (404, as API Gateway's gateway response), or a known path with another method (405).
    assert (response.status_code, body_of(response)["code"]) in ((404, "not_found"), (405, "method_not_allowed"))
    assert SECRET not in response.body.decode()
    assert stack.masked_kms.take() == []


def test_given_an_unlisted_caller_then_the_masked_stage_refuses_before_any_aws_call(stack: Stack) -> None:
    person_id = create(stack)
    closed = create_app(
        settings=Settings("masked", region=REGION, allowed_callers=(), local_caller=CALLERS["local_caller"]),
        kms_client=stack.masked_clients["kms"],
        dynamodb_client=stack.masked_clients["dynamodb"],
    )
    stack.masked_kms.take(), stack.masked_ddb.take()
    with Client(closed) as client:
        response = send(client, "GET", f"/customers/acme/people/{person_id}")
    assert (response.status_code, body_of(response)) == (404, not_found().body)
    assert stack.masked_kms.take() == [] and stack.masked_ddb.take() == []


def test_given_bad_input_then_400_naming_the_parameter(stack: Stack) -> None:
    response = send(masked(stack), "GET", "/customers/acme/people?fields=password")
    assert (response.status_code, body_of(response)["code"]) == (400, "validation_error")
    assert "fields" in body_of(response)["message"]
    response = send(masked(stack), "GET", "/customers/acme/people/not-an-id")
    assert response.status_code == 400
