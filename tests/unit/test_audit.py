"""Audit events: one JSON line per operation, with who, tenant, record ids and field names."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from chalicelib.envelope.format import Opener, Sealer
from chalicelib.service import ReaderService, WriterService
from chalicelib.support.audit import ANONYMOUS, Actor, AuditLog
from chalicelib.support.errors import IntegrityError, NotFoundError
from tests.fakes import FakeKms, FixedClock, InMemoryStore
from tests.plaintext_guard import register
from tools.sample import person, plaintexts

PERSON = person()
VALUES = (*plaintexts(PERSON), "sk_test_audit_value")
register(PERSON, VALUES)  # the no-plaintext guard looks for these everywhere
ALICE = Actor(
    principal="arn:aws:iam::111122223333:role/support",
    account_id="111122223333",
    source_ip="203.0.113.9",
    request_id="req-1",
)


class Events:
    """The audit logger's records, parsed."""

    def __init__(self) -> None:
        self.logger = logging.getLogger("tests.audit")
        self.logger.propagate = False
        self.records: list[logging.LogRecord] = []
        self.logger.handlers = [self._Handler(self.records)]
        self.logger.setLevel(logging.INFO)

    class _Handler(logging.Handler):
        def __init__(self, records: list[logging.LogRecord]) -> None:
            super().__init__()
            self.records = records

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    def take(self) -> list[dict[str, Any]]:
        events = [json.loads(r.getMessage()) for r in self.records]
        self.records.clear()
        return events

    def text(self) -> str:
        return "\n".join(r.getMessage() for r in self.records)


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def services(events: Events) -> tuple[WriterService, ReaderService, InMemoryStore]:
    kms, repo, audit = FakeKms(), InMemoryStore(), AuditLog(events.logger)
    writer = WriterService(repo, Sealer(kms.data_keys(), "pii-vault"), clock=FixedClock(), audit=audit)
    reader = ReaderService(repo, Opener(kms.decryptor(), "pii-vault", resolver=kms.resolver()), audit=audit)
    return writer, reader, repo


def test_given_a_read_then_exactly_one_event_with_actor_tenant_record_and_field_names(
    services: tuple[WriterService, ReaderService, InMemoryStore], events: Events
) -> None:
    writer, reader, _ = services
    created = writer.create_person("acme", PERSON)
    events.take()

    reader.get_person("acme", created.id, ("email", "name"), actor=ALICE)

    (event,) = events.take()
    assert event == {
        "audit": "person.read",
        "actor": {
            "principal": ALICE.principal,
            "account_id": "111122223333",
            "source_ip": "203.0.113.9",
            "request_id": "req-1",
        },
        "customer_id": "acme",
        "record_type": "person",
        "record_ids": [created.id],
        "fields": ["email", "name"],
        "version": 1,
    }


def test_given_every_operation_then_one_event_each_and_never_a_value(
    services: tuple[WriterService, ReaderService, InMemoryStore], events: Events
) -> None:
    writer, reader, _ = services
    created = writer.create_person("acme", PERSON, actor=ALICE)
    writer.patch_person("acme", created.id, {"email": "o.v@vanderhoek.example"}, None, actor=ALICE)
    writer.replace_person("acme", created.id, PERSON, None, actor=ALICE)
    reader.get_person("acme", created.id, actor=ALICE)
    reader.list_people("acme", 25, actor=ALICE)
    writer.put_secret("acme", "hook", {"value": "sk_test_audit_value"}, actor=ALICE)
    reader.get_secret("acme", "hook", actor=ALICE)
    reader.secret_versions("acme", "hook", actor=ALICE)
    writer.delete_secret("acme", "hook", actor=ALICE)
    writer.delete_person("acme", created.id, None, actor=ALICE)
    text = events.text()

    got = [(e["audit"], e["record_ids"], e["fields"]) for e in events.take()]

    everything = ["address", "dob", "email", "name", "surname"]
    assert got == [
        ("person.create", [created.id], everything),
        ("person.patch", [created.id], ["email"]),
        ("person.replace", [created.id], everything),
        ("person.read", [created.id], everything),
        ("person.list", [created.id], everything),
        ("secret.put", ["hook"], ["value"]),
        ("secret.read", ["hook"], ["value"]),
        ("secret.versions", ["hook"], []),
        ("secret.delete", ["hook"], []),
        ("person.delete", [created.id], []),
    ]
    for value in (*VALUES, "o.v@"):
        assert value not in text


def test_given_a_failed_read_then_no_success_event_is_recorded(
    services: tuple[WriterService, ReaderService, InMemoryStore], events: Events
) -> None:
    writer, reader, repo = services
    created = writer.create_person("acme", PERSON)
    events.take()
    record = repo.people[("acme", created.id)]
    record.fields["email"] = record.fields["email"][:-1] + bytes([record.fields["email"][-1] ^ 1])

    with pytest.raises(NotFoundError):
        reader.get_person("acme", "0" * 32, actor=ALICE)
    with pytest.raises(IntegrityError):
        reader.get_person("acme", created.id, actor=ALICE)

    assert events.take() == []


def test_given_no_actor_then_the_event_says_anonymous(
    services: tuple[WriterService, ReaderService, InMemoryStore], events: Events
) -> None:
    writer, _, _ = services

    writer.put_secret("acme", "hook", {"value": "sk_test_audit_value"})

    assert events.take()[0]["actor"] == {"principal": "anonymous"}


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        (
            {
                "identity": {
                    "userArn": "arn:aws:sts::1:assumed-role/r/s",
                    "caller": "AROA:s",
                    "accountId": "1",
                    "sourceIp": "198.51.100.1",
                    "accessKey": "AKIA...",
                },
                "requestId": "r-9",
            },
            Actor("arn:aws:sts::1:assumed-role/r/s", "1", "198.51.100.1", "r-9"),
        ),
        ({"identity": {"caller": "AIDAEXAMPLE", "sourceIp": "127.0.0.1"}}, Actor("AIDAEXAMPLE", None, "127.0.0.1")),
        ({"identity": {"sourceIp": "127.0.0.1", "userArn": None}}, Actor(source_ip="127.0.0.1")),
        ({}, ANONYMOUS),
        (None, ANONYMOUS),
        ({"identity": "garbage"}, ANONYMOUS),
    ],
)
def test_given_a_request_context_then_the_actor_is_the_signer_or_anonymous(
    context: dict[str, Any] | None, expected: Actor
) -> None:
    assert Actor.from_request_context(context) == expected
