"""``Client``: every route of the pii-vault API stages as a Python method.

    vault = Client(writer_url=..., reader_url=..., masked_url=..., session=boto3.Session())

Writes go to the writer stage, reads to the reader, ``*_masked_*`` reads to the masked
stage; a stage whose URL was not given raises ``PiiVaultError(code="not_configured")``
when used. ``ROUTES`` names each method's stage, method and path (a test holds it equal
to the routes the apps register). Answers are typed (models.py); error answers raise the
``PiiVaultError`` subclass of their code (errors.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Callable, NamedTuple, TypeVar

from pii_vault_client import models
from pii_vault_client.base import IDEMPOTENCY_HEADER, BaseClient, retry_after_seconds
from pii_vault_client.errors import NotFoundError, WaiterError
from pii_vault_client.models import Page, People, Person, Secret, SecretDeletion, SecretVersions, Written

PEOPLE = "/customers/{customer_id}/people"
PEOPLE_SEARCH = "/customers/{customer_id}/people/search"
PERSON = "/customers/{customer_id}/people/{person_id}"
SECRET = "/customers/{customer_id}/secrets/{secret_id}"  # noqa: S105 - a route, not a credential
SECRET_VERSIONS = "/customers/{customer_id}/secrets/{secret_id}/versions"  # noqa: S105 - a route


class Route(NamedTuple):
    stage: str
    method: str
    path: str


ROUTES: dict[str, Route] = {}
F = TypeVar("F", bound=Callable[..., Any])


def route(stage: str, method: str, path: str) -> Callable[[F], F]:
    """Record that the decorated method calls ``method path`` on ``stage``."""

    def register(function: F) -> F:
        ROUTES[function.__name__] = Route(stage, method, path)
        return function

    return register


def _fields(fields: Iterable[str] | None) -> str | None:
    return None if fields is None else ",".join(fields)


def _if_match(version: int | None) -> dict[str, str]:
    return {} if version is None else {"If-Match": models.etag_of(int(version))}


def _key(idempotency_key: str | None) -> dict[str, str]:
    return {IDEMPOTENCY_HEADER: idempotency_key or str(uuid.uuid4())}


class Client(BaseClient):
    """The pii-vault API (``BaseClient`` for the constructor's arguments)."""

    # -- people: writer ----------------------------------------------------------------

    @route("writer", "POST", PEOPLE)
    def create_person(
        self, customer_id: str, person: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Written:
        """Retries reuse one Idempotency-Key (random unless given): the person is created once."""
        url = self._url("writer", "customers", customer_id, "people")
        return models.written(
            self.request("POST", url, json_body=dict(person), headers=_key(idempotency_key), operation="create_person")
        )

    @route("writer", "PUT", PERSON)
    def replace_person(
        self, customer_id: str, person_id: str, person: Mapping[str, Any], *, if_match: int | None = None
    ) -> Written:
        url = self._url("writer", "customers", customer_id, "people", person_id)
        answer = self.request(
            "PUT", url, json_body=dict(person), headers=_if_match(if_match), operation="replace_person"
        )
        return models.written(answer)

    @route("writer", "PATCH", PERSON)
    def patch_person(
        self, customer_id: str, person_id: str, changes: Mapping[str, Any], *, if_match: int | None = None
    ) -> Written:
        url = self._url("writer", "customers", customer_id, "people", person_id)
        answer = self.request(
            "PATCH", url, json_body=dict(changes), headers=_if_match(if_match), operation="patch_person"
        )
        return models.written(answer)

    @route("writer", "DELETE", PERSON)
    def delete_person(
        self, customer_id: str, person_id: str, *, if_match: int | None = None
    ) -> models.ResponseMetadata:
        url = self._url("writer", "customers", customer_id, "people", person_id)
        return self.request("DELETE", url, headers=_if_match(if_match), operation="delete_person").meta

    # -- people: reader (full values) and masked stage (masked projections) --------------

    def _get_person(self, stage: str, customer_id: str, person_id: str, fields: Iterable[str] | None) -> Person:
        url = self._url(stage, "customers", customer_id, "people", person_id, query={"fields": _fields(fields)})
        answer = self.request("GET", url, operation=f"get_{'masked_' if stage == 'masked' else ''}person")
        return models.person(answer.json(), answer.meta)

    def _pages(
        self, stage: str, customer_id: str, limit: int | None, fields: Iterable[str] | None, start: str | None
    ) -> Iterator[Page]:
        token, fields_param = start, _fields(fields)
        operation = f"list_{'masked_' if stage == 'masked' else ''}pages"
        while True:
            query = {"limit": None if limit is None else str(limit), "fields": fields_param, "next": token}
            page = models.page(
                self.request(
                    "GET", self._url(stage, "customers", customer_id, "people", query=query), operation=operation
                )
            )
            yield page
            if not page.next:
                return
            token = page.next

    def _get_people(
        self, stage: str, customer_id: str, person_ids: Sequence[str], fields: Iterable[str] | None
    ) -> People:
        query = {"ids": ",".join(person_ids), "fields": _fields(fields)}
        url = self._url(stage, "customers", customer_id, "people", query=query)
        return models.people(self.request("GET", url, operation=f"get_{'masked_' if stage == 'masked' else ''}people"))

    @route("reader", "GET", PERSON)
    def get_person(self, customer_id: str, person_id: str, *, fields: Iterable[str] | None = None) -> Person:
        """The person, decrypted: only ``fields`` when given. ``.etag`` is the ``If-Match`` for a write."""
        return self._get_person("reader", customer_id, person_id, fields)

    @route("reader", "GET", PEOPLE)
    def list_pages(
        self,
        customer_id: str,
        *,
        limit: int | None = None,
        fields: Iterable[str] | None = None,
        starting_token: str | None = None,
    ) -> Iterator[Page]:
        """Every page of the tenant's people, fetched one at a time as you iterate (like a boto3 paginator)."""
        return self._pages("reader", customer_id, limit, fields, starting_token)

    def iter_people(self, customer_id: str, **kwargs: Any) -> Iterator[Person]:
        """Every person of the tenant, across pages (``list_pages``' arguments)."""
        for page in self.list_pages(customer_id, **kwargs):
            yield from page.items

    @route("reader", "GET", PEOPLE)
    def get_people(self, customer_id: str, person_ids: Sequence[str], *, fields: Iterable[str] | None = None) -> People:
        """Many people in one request (multi-get: ``?ids=``); ``missing`` lists the ids not found."""
        return self._get_people("reader", customer_id, person_ids, fields)

    @route("reader", "POST", PEOPLE_SEARCH)
    def search_people(self, customer_id: str, email: str, *, fields: Sequence[str] | None = None) -> People:
        """The tenant's people with this email (the address travels in the body, never the URL).

        Eventually consistent: people are indexed from the table's stream (about a second)."""
        body: dict[str, Any] = {"email": email}
        if fields is not None:
            body["fields"] = list(fields)
        url = self._url("reader", "customers", customer_id, "people", "search")
        return models.people(self.request("POST", url, json_body=body, operation="search_people"))

    @route("masked", "GET", PERSON)
    def get_masked_person(self, customer_id: str, person_id: str, *, fields: Iterable[str] | None = None) -> Person:
        """The person's masked projections (masked stage); a field without one is None."""
        return self._get_person("masked", customer_id, person_id, fields)

    @route("masked", "GET", PEOPLE)
    def list_masked_pages(
        self,
        customer_id: str,
        *,
        limit: int | None = None,
        fields: Iterable[str] | None = None,
        starting_token: str | None = None,
    ) -> Iterator[Page]:
        return self._pages("masked", customer_id, limit, fields, starting_token)

    @route("masked", "GET", PEOPLE)
    def get_masked_people(
        self, customer_id: str, person_ids: Sequence[str], *, fields: Iterable[str] | None = None
    ) -> People:
        return self._get_people("masked", customer_id, person_ids, fields)

    # -- secrets -----------------------------------------------------------------------

    @route("writer", "PUT", SECRET)
    def put_secret(
        self, customer_id: str, secret_id: str, value: str, *, idempotency_key: str | None = None
    ) -> Written:
        """A new version (older ones stay readable). Retries reuse one Idempotency-Key."""
        url = self._url("writer", "customers", customer_id, "secrets", secret_id)
        answer = self.request(
            "PUT", url, json_body={"value": value}, headers=_key(idempotency_key), operation="put_secret"
        )
        return models.written(answer)

    @route("reader", "GET", SECRET)
    def get_secret(self, customer_id: str, secret_id: str, *, version: int | None = None) -> Secret:
        """The latest version, or ``version``."""
        query = {"version": None if version is None else str(version)}
        url = self._url("reader", "customers", customer_id, "secrets", secret_id, query=query)
        return models.secret(self.request("GET", url, operation="get_secret"))

    @route("reader", "GET", SECRET_VERSIONS)
    def secret_versions(self, customer_id: str, secret_id: str) -> SecretVersions:
        url = self._url("reader", "customers", customer_id, "secrets", secret_id, "versions")
        return models.secret_versions(self.request("GET", url, operation="secret_versions"))

    @route("writer", "DELETE", SECRET)
    def delete_secret(
        self, customer_id: str, secret_id: str, *, wait: bool = True, max_wait: float | None = 600.0
    ) -> SecretDeletion:
        """Delete a secret and every version of it.

        The secret reads as gone at once; one with many versions is removed over several
        DELETEs, the service answering ``202`` (``remaining_versions``, ``Retry-After``)
        until the last. ``wait=True`` (the default) repeats the DELETE after each
        ``Retry-After`` until it is done, and raises ``WaiterError`` (``.last``: the
        latest ``SecretDeletion``) once more than ``max_wait`` seconds would be spent
        waiting (None: no bound). ``wait=False`` sends one DELETE: check ``.done``.
        """
        url = self._url("writer", "customers", customer_id, "secrets", secret_id)
        requests, waited = 0, 0.0
        while True:
            requests += 1
            try:
                answer = self.request("DELETE", url, operation="delete_secret")
            except NotFoundError as gone:
                if requests == 1:
                    raise
                # Someone else's DELETE removed the last versions after our 202.
                return SecretDeletion(secret_id, True, 0, requests, models.ResponseMetadata(gone.status))
            if answer.status != 202:
                return SecretDeletion(secret_id, True, 0, requests, answer.meta)
            remaining = int((answer.json() or {}).get("remaining_versions", 0))
            progress = SecretDeletion(secret_id, False, remaining, requests, answer.meta)
            delay = retry_after_seconds(answer.headers.get("retry-after"))
            delay = self.config.backoff if delay is None else delay
            if not wait:
                return progress
            if max_wait is not None and waited + delay > max_wait:
                raise WaiterError(f"secret still deleting after {waited:.0f} s: {remaining} versions left", progress)
            self._sleep(delay)
            waited += delay
