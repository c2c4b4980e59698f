"""The client as a boto3 user expects it (issue 24, item 4), against a scripted transport.

A method for every route of every API stage (held equal to the routes ``create_app``
registers, and each method checked to call its route), typed answers, ``delete_secret``
that completes, ``session=``, botocore-style retry configuration, hooks that never see a
value, and the CLI's subcommands with their exit codes.
"""

from __future__ import annotations

import json
import logging
import random
import re
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.credentials import Credentials

from chalicelib.stages import API_STAGE_NAMES as ROLES
from chalicelib.stages.app import create_app
from chalicelib.support.config import Settings
from pii_vault_client import ROUTES, Client, Config, WaiterError, errors, log_requests
from pii_vault_client.cli import main as cli_main
from tests.unit.test_client import ACCESS_KEY, SECRET_KEY, FakeTransport, verify

URLS = {stage: f"https://{stage[0]}1.execute-api.eu-west-1.amazonaws.com/api" for stage in ROLES}
PERSON: dict[str, Any] = {
    "id": "a" * 32,
    "version": 3,
    "created_at": "c",
    "updated_at": "u",
    "data": {"name": "Ada Lovelace"},
}
SECRET: dict[str, Any] = {"id": "hook", "version": 2, "created_at": "c", "value": "whsec_unit_value"}
WRITTEN = {"id": "a" * 32, "version": 1, "created_at": "c"}
PAGE = {"items": [PERSON], "next": None}
# One call of each client method, and an answer for it.
CALLS: dict[str, tuple[tuple[Any, ...], dict[str, Any], tuple[int, dict[str, str], Any]]] = {
    "create_person": (("acme", {"name": "Ada"}), {}, (201, {"Location": "/x"}, WRITTEN)),
    "replace_person": (("acme", "a" * 32, {"name": "Ada"}), {"if_match": 1}, (200, {}, WRITTEN)),
    "patch_person": (("acme", "a" * 32, {"name": "Ada"}), {}, (200, {}, WRITTEN)),
    "delete_person": (("acme", "a" * 32), {}, (204, {}, b"")),
    "get_person": (("acme", "a" * 32), {"fields": ["name"]}, (200, {"ETag": '"3"'}, PERSON)),
    "list_pages": (("acme",), {"limit": 1}, (200, {}, PAGE)),
    "get_people": (("acme", ["a" * 32]), {}, (200, {}, {**PAGE, "missing": []})),
    "search_people": (("acme", "ada@example.com"), {"fields": ["name"]}, (200, {}, {"items": [PERSON]})),
    "get_masked_person": (("acme", "a" * 32), {}, (200, {"ETag": '"3"'}, PERSON)),
    "list_masked_pages": (("acme",), {}, (200, {}, PAGE)),
    "get_masked_people": (("acme", ["a" * 32]), {}, (200, {}, {**PAGE, "missing": []})),
    "put_secret": (("acme", "hook", "v"), {}, (201, {}, WRITTEN)),
    "get_secret": (("acme", "hook"), {"version": 2}, (200, {"ETag": '"2"'}, SECRET)),
    "secret_versions": (
        ("acme", "hook"),
        {},
        (200, {}, {"id": "hook", "versions": [{"version": 1, "created_at": "c"}]}),
    ),
    "delete_secret": (("acme", "hook"), {}, (204, {}, b"")),
}


def _client(transport: FakeTransport, sleeps: list[float] | None = None, **kwargs: Any) -> Client:
    return Client(
        URLS["writer"],
        URLS["reader"],
        URLS["masked"],
        credentials=kwargs.pop("credentials", Credentials(ACCESS_KEY, SECRET_KEY)),
        transport=transport,
        sleep=(sleeps if sleeps is not None else []).append,
        rng=random.Random(7),
        **kwargs,
    )


def _route_pattern(path: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$")


def test_given_every_api_stage_then_each_route_has_a_client_method_and_no_method_names_a_missing_route() -> None:
    for stage in ROLES:
        app = create_app(settings=Settings(stage, region="us-east-1"))
        served = {(method, path) for path, methods in app.routes.items() for method in methods}
        covered = {(r.method, r.path) for r in ROUTES.values() if r.stage == stage}
        assert served == covered, stage
    assert set(CALLS) == set(ROUTES)  # a new method needs a call below, which checks its route


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_given_a_client_method_then_it_calls_its_route_on_its_stage(name: str) -> None:
    args, kwargs, answer = CALLS[name]
    transport = FakeTransport(answer)

    result = getattr(_client(transport), name)(*args, **kwargs)
    if name.startswith("list_"):  # a paginator: the first page is fetched when iterated
        result = next(result)
    meta = result if name == "delete_person" else result.meta  # a DELETE answers its metadata

    method, url, headers, body, _ = transport.requests[0]
    stage, route_method, path = ROUTES[name]
    assert method == route_method and url.split("?")[0].startswith(URLS[stage]), (name, url)
    assert _route_pattern(path).search(url.split("?")[0]), (name, url)
    assert verify(method, url, body or b"", headers, SECRET_KEY)
    assert meta.status == answer[0]


def test_given_typed_answers_then_version_etag_and_headers_are_carried_and_values_stay_out_of_repr() -> None:
    answers = [
        (200, {"ETag": '"3"', "x-amzn-RequestId": "req-1"}, PERSON),
        (200, {"ETag": '"2"'}, SECRET),
        (201, {"ETag": '"1"', "Location": "/customers/acme/people/x", "Idempotent-Replayed": "true"}, WRITTEN),
    ]
    vault = _client(FakeTransport(*answers))

    person = vault.get_person("acme", "a" * 32)
    secret = vault.get_secret("acme", "hook")
    created = vault.create_person("acme", {"name": "Ada"})

    assert (person.version, person.etag, person.data, person.meta.request_id) == (3, '"3"', PERSON["data"], "req-1")
    assert person.meta.headers["etag"] == '"3"' and person.meta.attempts == 1
    assert (secret.version, secret.etag, secret.value) == (2, '"2"', SECRET["value"])
    assert (created.location, created.replayed, created.etag) == ("/customers/acme/people/x", True, '"1"')
    assert "Ada Lovelace" not in repr(person) and SECRET["value"] not in repr(secret)


def test_given_a_secret_with_many_versions_then_delete_repeats_after_each_retry_after_until_204() -> None:
    deleting = {"id": "hook", "status": "deleting"}
    transport = FakeTransport(
        (202, {"Retry-After": "1"}, {**deleting, "remaining_versions": 260}),
        (202, {"Retry-After": "3"}, {**deleting, "remaining_versions": 10}),
        (204, {}, b""),
    )
    sleeps: list[float] = []

    deletion = _client(transport, sleeps).delete_secret("acme", "hook")

    assert (deletion.done, deletion.remaining_versions, deletion.requests) == (True, 0, 3)
    assert sleeps == [1.0, 3.0]  # exactly what Retry-After says
    assert [r[0] for r in transport.requests] == ["DELETE"] * 3


def test_given_wait_false_or_too_little_time_then_one_delete_or_a_waiter_error_with_the_progress() -> None:
    accepted = (202, {"Retry-After": "5"}, {"id": "hook", "status": "deleting", "remaining_versions": 7})

    once = _client(FakeTransport(accepted)).delete_secret("acme", "hook", wait=False)
    with pytest.raises(WaiterError) as raised:
        _client(FakeTransport(accepted, accepted)).delete_secret("acme", "hook", max_wait=8)

    assert (once.done, once.remaining_versions, once.requests) == (False, 7, 1)
    assert (raised.value.last.remaining_versions, raised.value.last.requests) == (7, 2)


def test_given_a_202_then_a_404_then_the_secret_is_gone_and_delete_completes() -> None:
    transport = FakeTransport(
        (202, {"Retry-After": "1"}, {"id": "hook", "status": "deleting", "remaining_versions": 3}),
        (404, {}, {"code": "not_found", "message": "secret not found"}),
    )
    assert _client(transport).delete_secret("acme", "hook").done
    with pytest.raises(errors.NotFoundError):
        _client(FakeTransport((404, {}, {"code": "not_found", "message": "m"}))).delete_secret("acme", "hook")


@pytest.mark.parametrize(
    ("retries", "attempts"),
    [
        ({}, 4),
        ({"max_attempts": 2}, 3),
        ({"total_max_attempts": 2}, 2),
        ({"max_attempts": 5, "total_max_attempts": 1}, 1),
    ],
)
def test_given_botocore_style_retries_then_attempts_follow_botocores_meaning(
    retries: dict[str, int], attempts: int
) -> None:
    transport = FakeTransport(*[(503, {"Retry-After": "0"}, {"code": "service_unavailable", "message": "m"})] * 6)

    with pytest.raises(errors.ServiceUnavailableError):
        _client(transport, config=Config(retries={**retries, "mode": "standard"})).get_secret("acme", "s")

    assert len(transport.requests) == attempts


@pytest.mark.parametrize("retries", [{"mode": "adaptive"}, {"max_attempts": -1}, {"attempts": 3}])
def test_given_a_retry_configuration_it_cannot_honour_then_it_says_so(retries: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="retries"):
        Config(retries=retries)


def test_given_a_boto3_or_botocore_session_then_its_credentials_and_region_sign() -> None:
    boto3_session = boto3.session.Session(
        aws_access_key_id="AKIDSESSION", aws_secret_access_key=SECRET_KEY, region_name="ap-south-1"
    )
    core = botocore.session.Session()
    core.set_credentials("AKIDCORE", SECRET_KEY)
    core.set_config_variable("region", "ca-central-1")
    for session, key, region in ((boto3_session, "AKIDSESSION", "ap-south-1"), (core, "AKIDCORE", "ca-central-1")):
        transport = FakeTransport((200, {}, SECRET))
        Client(reader_url="https://vault.example.com/api", session=session, transport=transport).get_secret("a", "s")
        method, url, headers, body, _ = transport.requests[0]
        assert (
            f"Credential={key}/" in headers["Authorization"] and f"/{region}/execute-api/" in headers["Authorization"]
        )
        assert verify(method, url, body or b"", headers, SECRET_KEY)
    transport = FakeTransport((200, {}, SECRET))
    Client(reader_url=URLS["reader"], session=Credentials("AKIDCREDS", SECRET_KEY), transport=transport).get_secret(
        "a", "s"
    )
    assert "Credential=AKIDCREDS/" in transport.requests[0][2]["Authorization"]
    with pytest.raises(ValueError, match="not both"):
        Client(session=boto3_session, credentials=Credentials("a", "b"))


def test_given_hooks_then_each_attempt_is_seen_without_values_bodies_headers_or_query(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = FakeTransport(
        (503, {"Retry-After": "0"}, {"code": "service_unavailable", "message": "m"}), (200, {}, PAGE)
    )
    vault = _client(transport)
    seen: list[Any] = []
    vault.events.register("before-send", seen.append)
    vault.events.register("after-receive", seen.append)
    log_requests(vault)
    caplog.set_level(logging.DEBUG, logger="pii_vault_client")

    vault.search_people("acme", "ada@example.com")

    assert [(e.name, e.attempt, e.status, e.error) for e in seen] == [
        ("before-send", 1, None, None),
        ("after-receive", 1, 503, "service_unavailable"),
        ("before-send", 2, None, None),
        ("after-receive", 2, 200, None),
    ]
    assert {e.path for e in seen} == {"/api/customers/acme/people/search"} and {e.operation for e in seen} == {
        "search_people"
    }
    shown = repr(seen) + caplog.text
    assert "ada@example.com" not in shown and "Ada Lovelace" not in shown and "Authorization" not in shown
    assert len(caplog.records) == 4
    with pytest.raises(ValueError, match="unknown event"):
        vault.events.register("before-parse", seen.append)


def test_given_the_cli_subcommands_then_json_on_stdout_and_the_documented_exit_codes(
    capsys: pytest.CaptureFixture[str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = tmp_path / "query.json"
    query.write_text(json.dumps({"email": "ada@example.com"}))
    accepted = (202, {"Retry-After": "1"}, {"id": "hook", "status": "deleting", "remaining_versions": 4})
    transport = FakeTransport(
        (201, {}, WRITTEN),
        (200, {"ETag": '"3"'}, PERSON),
        (200, {}, WRITTEN),
        (200, {}, {"items": [PERSON]}),
        (201, {}, WRITTEN),
        (200, {}, SECRET),
        (200, {}, {"id": "hook", "versions": [{"version": 1, "created_at": "c"}]}),
        accepted,
        (204, {}, b""),
        (404, {}, {"code": "not_found", "message": "person not found"}),
        accepted,
        accepted,
    )
    vault = _client(transport)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO('{"value": "whsec_from_stdin"}'))

    def run(*argv: str) -> tuple[int, Any]:
        code = cli_main(list(argv), client=vault)
        out = capsys.readouterr().out
        return code, json.loads(out) if out.strip() else None

    assert run("people", "create", "acme", "--data", '{"name": "Ada"}') == (
        0,
        {**WRITTEN, "etag": '"1"', "updated_at": None, "location": None, "replayed": False},
    )
    code, got = run("people", "get", "acme", "a" * 32, "--fields", "name")
    assert (code, got["etag"], got["data"]) == (0, '"3"', PERSON["data"])
    assert run("people", "patch", "acme", "a" * 32, "--data", '{"name": "Ada"}', "--if-match", "3")[0] == 0
    code, found = run("people", "search", "acme", "--data", f"@{query}")
    assert (code, [p["id"] for p in found["items"]]) == (0, ["a" * 32])
    assert run("secrets", "put", "acme", "hook", "--data", "-")[0] == 0
    assert run("secrets", "get", "acme", "hook")[1]["value"] == SECRET["value"]
    assert run("secrets", "versions", "acme", "hook")[1]["versions"] == [{"version": 1, "created_at": "c"}]
    assert run("secrets", "delete", "acme", "hook") == (
        0,
        {"id": "hook", "done": True, "remaining_versions": 0, "requests": 2},
    )
    assert run("people", "get", "acme", "b" * 32) == (
        1,
        {"status": 404, "code": "not_found", "message": "person not found"},
    )
    assert run("secrets", "delete", "acme", "hook", "--max-wait", "0.5")[0] == 3
    assert run("people", "search", "acme", "--data", '{"name": "x"}') == (2, None)
    stdin_put = transport.requests[4][3]
    assert stdin_put is not None and json.loads(stdin_put) == {"value": "whsec_from_stdin"}
    assert transport.requests[2][2]["If-Match"] == '"3"'
    assert cli_main(["people", "get", "acme", "x"], client=None) == 2  # no --reader-url: nothing sent


def test_given_the_client_then_its_stages_are_the_registry_api_stages() -> None:
    """The client is its own package and names the stages itself (its public API): the same ones."""
    from pii_vault_client.base import STAGES

    assert STAGES == ROLES
