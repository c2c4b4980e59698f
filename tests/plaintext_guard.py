"""Session-wide guard: no test plaintext in any log record, error body or stored attribute.

Registry: every string leaf (6+ characters) of every JSON body the tests send (chalice
test client and ``requests``), plus values tests ``register()`` explicitly, minus values
the tests also put in a request URL (ids there; access logs record URLs). Observed
places, for the whole session:

- every log record that reaches the root logger (a handler installed at configure time);
- every HTTP response body with status >= 400 (chalice.test.Client and ``requests``);
- every attribute of every item in the moto tables, scanned when a stack fixture ends
  (``observe_items``), and the e2e servers' log files (``observe_text``).

At session end every registered value is searched in every observed place; any hit
fails the session (exit status 1) and is reported by place and by where the value was
registered, never by the value itself. Why the length floor: a 6-byte string appears in
a few hundred bytes of random ciphertext with probability ~2^-40, while short strings
("acme", "GB") are also ids or codes that legitimately appear in logs; and strings of one
or two distinct characters (a fuzzer's "000000") occur in account ids, timestamps and hex.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

MIN_LENGTH = 6
MIN_DISTINCT = 3  # "000000", "aaaaaaa", "ababab": fuzzer filler that also occurs in ARNs, ids and hex


@dataclass
class Guard:
    values: dict[str, str] = field(default_factory=dict)  # value -> where it was first registered
    places: list[tuple[str, str | bytes]] = field(default_factory=list)
    urls: set[str] = field(default_factory=set)
    current: str = "session"
    counts: dict[str, int] = field(default_factory=lambda: {"log": 0, "error body": 0, "stored item": 0, "file": 0})

    def register(self, *values: Any, origin: str | None = None) -> None:
        for value in _string_leaves(values):
            if len(value) >= MIN_LENGTH and len(set(value)) >= MIN_DISTINCT:
                self.values.setdefault(value, origin or self.current)

    def register_body(self, body: Any, origin: str) -> None:
        if isinstance(body, (bytes, bytearray)):
            try:
                body = body.decode("utf-8")
            except UnicodeDecodeError:
                return
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except (ValueError, RecursionError):  # hostile bodies (fuzzing) nest deeply
                return
        if isinstance(body, (dict, list)):
            self.register(body, origin=origin)

    def observe_error_body(self, place: str, body: str | bytes) -> None:
        """What an error body says: its JSON values (a fuzzer may send the key "message" as a
        value; the envelope's own keys are not data), or its raw text when it is not JSON."""
        try:
            leaves = "\n".join(_string_leaves(json.loads(body)))
        except (ValueError, RecursionError, UnicodeDecodeError):
            self.observe("error body", place, body)
            return
        self.observe("error body", place, leaves)

    def observe(self, kind: str, place: str, content: str | bytes) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.places.append((f"{kind} {place} (during {self.current})", content))

    def observe_items(self, place: str, items: Iterable[dict[str, Any]]) -> None:
        """Every S and B value (nested maps and lists included) of DynamoDB items."""
        for item in items:
            parts: list[bytes] = []
            _attribute_bytes(item, parts)
            self.observe("stored item", f"{place} key={item.get('sk', {}).get('S', '?')}", b"\x00".join(parts))

    def request(self, method: str, url: str, body: Any, origin: str) -> None:
        """A request the tests sent: its body's strings are registered, its URL remembered."""
        self.urls.add(url)
        self.register_body(body, origin=f"{origin} ({method} {url.split('?')[0]})")

    def hits(self) -> list[str]:
        numbered = {value: index for index, value in enumerate(self.values, 1)}
        # A value the tests also put in a URL is an identifier there (fuzzers reuse strings
        # for ids and fields), and access logs record URLs by design: not a secret.
        # A value that is a string constant of the project's own code is its vocabulary ("surname",
        # a logger name), which Hypothesis feeds the fuzzer on purpose (it draws from the constants
        # of local modules): it occurs in logs by design, not as somebody's data.
        vocabulary = _code_constants()
        searched = {
            v: o for v, o in self.values.items() if v not in vocabulary and not any(v in url for url in self.urls)
        }
        found = []
        for place, content in self.places:
            for value, origin in searched.items():
                hit = value.encode("utf-8") in content if isinstance(content, bytes) else value in content
                if hit:
                    found.append(f"registered value #{numbered[value]} (from {origin}) found in {place}")
        return found


def _code_constants() -> frozenset[str]:
    """Every string literal in the project's own code (chalicelib, tools, bench, app.py; not the tests,
    whose literals include the very values they register)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = [root / "app.py", *(p for d in ("chalicelib", "tools", "bench") for p in (root / d).rglob("*.py"))]
    constants: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                constants.add(node.value)
    return frozenset(constants)


def _string_leaves(values: Any) -> Iterable[str]:
    if isinstance(values, str):
        yield values
    elif isinstance(values, dict):
        for value in values.values():
            yield from _string_leaves(value)
    elif isinstance(values, (list, tuple, set, frozenset)):
        for value in values:
            yield from _string_leaves(value)


def _stored_text(text: str) -> str:
    """A string attribute; one holding a JSON document (Powertools' stored responses) counts
    by its values: its keys are the API's own vocabulary ("created_at"), which a fuzzer may
    also send as a value, as for error bodies."""
    if text.startswith(("{", "[")):
        try:
            return "\n".join(_string_leaves(json.loads(text)))
        except (ValueError, RecursionError):
            pass
    return text


def _attribute_bytes(value: Any, out: list[bytes]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "S" and isinstance(inner, str):
                out.append(_stored_text(inner).encode("utf-8"))
            elif key == "B":
                out.append(bytes(inner))
            else:
                _attribute_bytes(inner, out)
    elif isinstance(value, list):
        for inner in value:
            _attribute_bytes(inner, out)


GUARD = Guard()
register = GUARD.register


class _RecordingHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = logging.Formatter("%(name)s %(levelname)s %(message)s").format(record)
        except Exception:  # noqa: BLE001 - a broken record must not break the test run
            text = repr(record.msg)
        GUARD.observe("log", f"record from logger {record.name}", text)


def _patch_chalice_client() -> None:
    from chalice.test import TestHTTPClient

    original = TestHTTPClient.request

    def request(self: Any, method: str, path: str, headers: Any = None, body: bytes = b"") -> Any:
        GUARD.request(method, path, body, GUARD.current)
        response = original(self, method, path, headers=headers, body=body)
        if response.status_code >= 400:
            GUARD.observe_error_body(f"{response.status_code} of {method} {path.split('?')[0]}", response.body or b"")
        return response

    TestHTTPClient.request = request  # type: ignore[method-assign]  # the guard wraps chalice's method


def _patch_requests() -> None:
    import requests

    original = requests.Session.send

    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        GUARD.request(request.method, request.path_url, request.body, GUARD.current)
        response = original(self, request, **kwargs)
        if response.status_code >= 400:
            GUARD.observe_error_body(
                f"{response.status_code} of {request.method} {request.path_url.split('?')[0]}", response.content
            )
        return response

    requests.Session.send = send  # type: ignore[method-assign]  # the guard wraps requests' method


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(_RecordingHandler())
    _patch_chalice_client()
    _patch_requests()


def pytest_runtest_setup(item: pytest.Item) -> None:
    GUARD.current = item.nodeid


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        # A pytest-xdist worker hands everything it saw to the controller, which searches
        # every registered value in every observed place of every worker (a value registered
        # by a test on one worker is looked for in the logs of the other too).
        workeroutput[_WORKER_KEY] = {
            "values": GUARD.values,
            "places": [list(place) for place in GUARD.places],
            "urls": sorted(GUARD.urls),
            "counts": GUARD.counts,
        }
        return
    hits = GUARD.hits()
    session.config.stash[_HITS] = hits
    if hits:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist's controller: a worker's guard joins the controller's (``pytest -n``)."""
    seen = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
    if not seen:
        return
    for value, origin in seen["values"].items():
        GUARD.values.setdefault(value, origin)
    GUARD.places.extend((place, content) for place, content in seen["places"])
    GUARD.urls.update(seen["urls"])
    for kind, n in seen["counts"].items():
        GUARD.counts[kind] = GUARD.counts.get(kind, 0) + n


def pytest_terminal_summary(terminalreporter: Any) -> None:
    hits = terminalreporter.config.stash.get(_HITS, [])
    counts = ", ".join(f"{n} x {kind}" for kind, n in GUARD.counts.items())
    if hits:
        terminalreporter.section("plaintext guard: PLAINTEXT FOUND", red=True, bold=True)
        for line in hits:
            terminalreporter.write_line(line, red=True)
    terminalreporter.write_line(
        f"plaintext guard: {len(GUARD.values)} registered values searched in {counts}: "
        + (f"{len(hits)} hit(s), session failed" if hits else "no plaintext found")
    )


_HITS = pytest.StashKey[list[str]]()
_WORKER_KEY = "plaintext_guard"
