"""tools.client against the local stack: signed requests are served like any other
(chalice local ignores SigV4; tests/unit/test_client.py proves the signatures)."""

import boto3

from tests.plaintext_guard import register
from tools import client
from tools.sample import person

PERSON = person()
register(PERSON)  # the no-plaintext guard looks for these everywhere
FAKE = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")


def test_given_the_signing_client_when_writing_and_reading_then_the_local_stack_serves_it(local_stack, customer_id):
    created = client.call("POST", f"{local_stack.writer_url}/customers/{customer_id}/people",
                          json_body=PERSON, session=FAKE)
    assert created.status_code == 201, created.text
    person_id = created.json()["id"]

    patched = client.call("PATCH", f"{local_stack.writer_url}/customers/{customer_id}/people/{person_id}",
                          json_body={"name": "Eva"}, headers={"If-Match": '"1"'}, session=FAKE)
    read = client.call("GET", f"{local_stack.reader_url}/customers/{customer_id}/people/{person_id}?fields=email,name",
                       session=FAKE)

    assert patched.status_code == 200, patched.text
    assert read.status_code == 200, read.text
    assert read.json()["data"] == {"email": PERSON["email"], "name": "Eva"}
    assert "AWS4-HMAC-SHA256" in read.request.headers["Authorization"]


def test_given_the_cli_when_reading_a_missing_person_then_it_prints_the_error_and_exits_1(
    local_stack, customer_id, capsys, monkeypatch
):
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)

    code = client.main(["GET", f"{local_stack.reader_url}/customers/{customer_id}/people/{'0' * 32}",
                        "--region", "us-east-1"])

    captured = capsys.readouterr()
    assert code == 1
    assert "HTTP 404" in captured.err and '"code":"not_found"' in captured.out
