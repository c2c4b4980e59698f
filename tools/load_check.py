"""The load run's verification: what clients were told against what the system keeps.

Three doors, each a small seam (a function of a record), so the checks outlive a change
of layout (e.g. beacons moving to a table of their own):

- the table, scanned raw per tenant partition: which person ids have items at all;
- the reader (GET a person; POST .../people/search by email): the full view, and whether
  search by email finds each live person;
- the masked stage (GET a person): the masked view.

Problems are one line each, ids and versions only (never a value).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

VERIFY_ATTEMPTS = 3
VERIFY_THREADS = 16
# Searches in flight at once. moto answers a GSI query by going through the whole table
# (~150 ms at 1,000 people on an idle core); more at once queue past the reader's 3 s
# read timeout and starve the indexer the search waits for.
SEARCH_THREADS = 4
MARKER_POLL_S = 2.0
# How long search may take to find a live person after the run (the indexer's lag): a
# bound, not a measurement; the measured lag is reported. The local indexer handles its
# stream one record at a time (a GetItem each, queued at moto behind every client's calls),
# so the backlog of a 64 x 60 run takes minutes to drain on 2 busy cores (~1 s on AWS).
INDEX_LAG_S = 900.0
SEARCH_BACKOFF_S = (0.5, 8.0)  # first and longest pause between rounds over the people not found yet
MARKER_RETRIES = 4  # full rounds once the marker is found (a person written just before it)
# (connect, read) seconds. Connecting is immediate on loopback unless a listen backlog
# overflows (tools/localserver.py); an answer can wait for moto, which serialises every
# AWS call of every client, and for the first request of each server thread pool.
TIMEOUT_S = (10.0, 120.0)

Key = tuple[str, str]  # (customer_id, person_id)
# One answer of a read door: (HTTP status, body if 200); status 0 if it never answered.
ReadPerson = Callable[[Key], "tuple[int, dict[str, Any] | None]"]
# Search door: the person ids a tenant's search by email answers, None if it did not answer.
SearchPeople = Callable[[str, str], "list[str] | None"]


@dataclass
class Record:
    """A record the workload wrote: what the vault must hold for it after the run."""

    customer_id: str
    person_id: str
    version: int
    data: dict[str, Any]
    live: bool = True
    # After a write without an answer: every state the record may be in, (live, version, data).
    uncertain: list[tuple[bool, int, dict[str, Any]]] | None = None


@dataclass(frozen=True)
class LivePerson:
    """A person the reader shows after the run: id, version and the full view's data."""

    customer_id: str
    person_id: str
    version: int
    data: dict[str, Any]


@dataclass
class Verification:
    scanned_items: int = 0
    present: int = 0
    gone: int = 0
    uncertain: int = 0  # records whose last write got no answer (either outcome accepted)
    lost: list[str] = field(default_factory=list)  # one line per problem, ids only (no PII)
    orphans: int = 0  # stored people nobody got an acknowledgement for (unanswered creates)
    live: list[LivePerson] = field(default_factory=list)  # every person the reader shows
    masked_checked: int | None = None  # masked views compared (None: no masked stage given)
    found_by_search: int | None = None  # live people search by email found (None: not checked)
    index_lag_s: float = 0.0  # after the run, until search had found the last of them


def person_of(item: dict[str, Any]) -> Key | None:
    """(customer_id, person_id) of a person item, None for any other item (the store's layout)."""
    from chalicelib.store import layout

    customer_id = layout.customer_of(item[layout.PK]["S"])
    person_id = layout.person_id_of(item[layout.SK]["S"])
    return (customer_id, person_id) if customer_id is not None and person_id is not None else None


def scan_tenants(dynamodb: Any, table_name: str, tenants: Sequence[str]) -> tuple[dict[Key, dict[str, Any]], list[str]]:
    """Every item in the run's tenants, straight from the table: person items by key, and
    the sort keys of any other item (a load run writes people only)."""
    from chalicelib.store import layout

    wanted = set(tenants)
    people, others = {}, []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table_name, ConsistentRead=True):
        for item in page["Items"]:
            if layout.customer_of(item[layout.PK]["S"]) not in wanted:
                continue
            key = person_of(item)
            if key is None:
                others.append(item[layout.SK]["S"])
            else:
                people[key] = item
    return people, others


def http_person(base_url: str) -> ReadPerson:
    """GET a person from a stage (reader or masked)."""
    sessions = threading.local()

    def read(key: Key) -> tuple[int, dict[str, Any] | None]:
        if not hasattr(sessions, "session"):
            sessions.session = requests.Session()
        url = f"{base_url}/customers/{key[0]}/people/{key[1]}"
        for _ in range(VERIFY_ATTEMPTS):  # a read changes nothing: trying again is safe
            try:
                response = sessions.session.get(url, timeout=TIMEOUT_S)
            except requests.RequestException:
                continue
            return response.status_code, response.json() if response.status_code == 200 else None
        return 0, None

    return read


def http_search(reader_url: str) -> SearchPeople:
    """The reader's search by email: the ids it answers."""
    sessions = threading.local()

    def search(customer_id: str, email: str) -> list[str] | None:
        if not hasattr(sessions, "session"):
            sessions.session = requests.Session()
        url = f"{reader_url}/customers/{customer_id}/people/search"
        for _ in range(VERIFY_ATTEMPTS):
            try:
                response = sessions.session.post(url, json={"email": email, "fields": ["email"]}, timeout=TIMEOUT_S)
            except requests.RequestException:
                continue
            return [item["id"] for item in response.json()["items"]] if response.status_code == 200 else None
        return None

    return search


def http_marker(writer_url: str, customer_id: str, person: dict[str, Any]) -> Callable[[], Marker]:
    """Writes ``person`` through the writer (in a tenant of its own) as the search marker."""

    def write() -> Marker:
        url = f"{writer_url}/customers/{customer_id}/people"
        created = requests.post(url, json=person, timeout=TIMEOUT_S)
        if created.status_code != 201:
            raise RuntimeError(f"the search marker was not written (status {created.status_code})")
        person_id = created.json()["id"]
        return Marker(customer_id, person_id, person["email"], lambda: _delete(f"{url}/{person_id}"))

    return write


def _delete(url: str) -> None:
    requests.delete(url, timeout=TIMEOUT_S)


def _read_all(read: ReadPerson, keys: list[Key]) -> dict[Key, tuple[int, dict[str, Any] | None]]:
    with ThreadPoolExecutor(max_workers=VERIFY_THREADS) as pool:
        return dict(zip(keys, pool.map(read, keys), strict=True))


def verify(
    records: list[Record],
    items: dict[Key, dict[str, Any]],
    read: ReadPerson,
    unanswered_creates: int = 0,
) -> Verification:
    """Compare what clients were told with what the table holds and the reader decrypts.

    Every stored person item is read through the reader, the ones nobody was told about
    too: an item that does not read as a person (a stub left by a late beacon or masked
    write, say) is a problem even when an unanswered create could explain its id."""
    from chalicelib.store import layout

    result = Verification(scanned_items=len(items))
    reads = _read_all(read, list(items))
    known = set()
    for record in records:
        key = (record.customer_id, record.person_id)
        known.add(key)
        item = items.get(key)
        label = f"{record.customer_id}/{record.person_id}"
        if item is None:
            state: tuple[bool, int, dict[str, Any]] = (False, 0, {})
        else:
            status, body = reads[key]
            if body is None:
                answer = f"answered {status}" if status else "did not answer"
                result.lost.append(f"{label}: stored but the reader {answer}")
                continue
            stored = item.get(layout.V3_VERSION) or item.get(layout.VERSION)  # format v3, or an older item
            if stored is None or int(stored["N"]) != body["version"]:
                result.lost.append(f"{label}: reader version differs from the table")
                continue
            state = (True, body["version"], body["data"])
            result.live.append(LivePerson(record.customer_id, record.person_id, body["version"], body["data"]))
        if record.uncertain is not None:
            result.uncertain += 1
            if state not in record.uncertain:
                result.lost.append(f"{label}: after an unanswered write, in neither the old nor the new state")
        elif record.live:
            if item is None:
                result.lost.append(f"{label}: acknowledged write missing from the table")
            elif state != (True, record.version, record.data):
                result.lost.append(f"{label}: stored version/data differ from the last acknowledged write")
            else:
                result.present += 1
        elif item is not None:
            result.lost.append(f"{label}: acknowledged delete, still in the table")
        else:
            result.gone += 1
    orphans = sorted(set(items) - known)
    result.orphans = len(orphans)
    for key in orphans:
        status, body = reads[key]
        if body is None:
            result.lost.append(f"{key[0]}/{key[1]}: an item without its person (the reader answered {status})")
        else:
            result.live.append(LivePerson(key[0], key[1], body["version"], body["data"]))
    if result.orphans > unanswered_creates:
        result.lost.append(
            f"{result.orphans} stored people but only {unanswered_creates} creates without an answer: "
            "a refused or acknowledged-elsewhere create was stored"
        )
    return result


def verify_masked(result: Verification, read_masked: ReadPerson) -> None:
    """The masked view of each live person is the masking of its full view, at its version."""
    from chalicelib.domain.masking import masked

    answers = _read_all(read_masked, [(p.customer_id, p.person_id) for p in result.live])
    result.masked_checked = 0
    for person in result.live:
        status, body = answers[(person.customer_id, person.person_id)]
        label = f"{person.customer_id}/{person.person_id}"
        if body is None:
            result.lost.append(f"{label}: the masked stage answered {status or 'nothing'} for a live person")
        elif body["version"] != person.version:
            result.lost.append(f"{label}: masked view at version {body['version']}, the person at {person.version}")
        elif body["data"] != masked(person.data):
            result.lost.append(f"{label}: masked view differs from the masking of version {person.version}")
        else:
            result.masked_checked += 1


@dataclass(frozen=True)
class Marker:
    """A person the verification writes after the run and then waits for: the local indexer
    follows one stream shard in order, so once search finds the marker, every write before
    it has been indexed. ``remove`` deletes it again (it is no record of the run)."""

    customer_id: str
    person_id: str
    email: str
    remove: Callable[[], None]


def verify_search(
    result: Verification,
    search: SearchPeople,
    *,
    marker: Callable[[], Marker] | None = None,
    lag_s: float = INDEX_LAG_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Search by email finds every live person, within ``lag_s`` (the indexer's lag).

    With a ``marker``: wait (one search every ``MARKER_POLL_S``) until search finds a person written after
    the run, then search for everyone, with a few short retries. Without: rounds over the
    people not found yet, pausing longer each time. Either way searching is kept light: it
    takes moto time from the indexer it waits for."""
    started = clock()
    pending = list(result.live)
    if marker is not None:
        try:
            written = marker()
        except RuntimeError as exc:  # the writer refused it: search cannot be checked, which is a failure
            result.lost.append(f"search not checked: {exc}")
            return
        try:
            while not _finds(search, written.customer_id, written.person_id, written.email):
                if clock() - started > lag_s:
                    break
                sleep(MARKER_POLL_S)
        finally:
            written.remove()
        result.index_lag_s = clock() - started
        rounds, deadline = MARKER_RETRIES, float("inf")  # caught up (or gave up): a few more tries
    else:
        rounds, deadline = None, started + lag_s
    pause = SEARCH_BACKOFF_S[0]
    while True:
        with ThreadPoolExecutor(max_workers=SEARCH_THREADS) as pool:
            found = pool.map(lambda p: _finds(search, p.customer_id, p.person_id, p.data["email"]), pending)
            pending = [p for p, hit in zip(pending, found, strict=True) if not hit]
        if marker is None:
            result.index_lag_s = clock() - started
        if rounds is not None:
            rounds -= 1
        if not pending or rounds == 0 or clock() > deadline:
            break
        sleep(pause)
        pause = min(pause * 2, SEARCH_BACKOFF_S[1])
    result.found_by_search = len(result.live) - len(pending)
    for person in pending:
        result.lost.append(
            f"{person.customer_id}/{person.person_id}: search by email does not find it "
            f"{result.index_lag_s:.0f}s after the run"
        )


def _finds(search: SearchPeople, customer_id: str, person_id: str, email: str) -> bool:
    found = search(customer_id, email)
    return found is not None and person_id in found
