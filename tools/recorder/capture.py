"""The hook: every request moto is about to authorize, recorded with its principal and accesses.

``install(sink)`` wraps moto's authorization step (``_authenticate_and_authorize_normal_action``,
which every moto service runs before its action, in process and in the server alike). Each
request becomes a ``Request``: the access key id that signed it (the principal), the accesses
derived from its parameters (tools/recorder/derive.py, resolving tables and keys in moto's own
state), and, in process, whether code of the deployed package (``chalicelib``) is on the call
stack and which test and declared operator context it ran in.

``python -m tools.motoserver`` installs it when ``PII_VAULT_REQUEST_LOG`` names a file: one JSON
line per request (the local stack's processes all talk to that one server).
"""

from __future__ import annotations

import base64
import contextlib
import json
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from tools.recorder.derive import accesses
from tools.recorder.dynamodb import TableSchema
from tools.recorder.kms import KeyFacts
from tools.recorder.model import Access, Underivable

DEPLOYED_PACKAGE = "chalicelib"  # what `chalice package` ships besides app.py (the code under proof)
_JSON_SERVICES = {"dynamodb", "dynamodbstreams", "kms"}
_declared: list[str] = []  # process-wide, so threads a declared block starts are covered too
current_test: list[str | None] = [None]  # set by the test session (tests/request_proof.py)


@dataclass
class Request:
    access_key: str
    service: str
    operation: str
    accesses: list[Access] = field(default_factory=list)
    error: str | None = None
    stage_code: bool | None = None  # None: not observable (another process)
    declared: str | None = None
    test: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "access_key": self.access_key,
            "service": self.service,
            "operation": self.operation,
            "accesses": [a.to_json() for a in self.accesses],
            "error": self.error,
            "stage_code": self.stage_code,
            "declared": self.declared,
            "test": self.test,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Request:
        return cls(
            data["access_key"],
            data["service"],
            data["operation"],
            [Access.from_json(a) for a in data.get("accesses", [])],
            data.get("error"),
            data.get("stage_code"),
            data.get("declared"),
            data.get("test"),
        )


@contextlib.contextmanager
def operator_code(reason: str) -> Iterator[None]:
    """Declares that deployed code called inside runs with the operator's credentials on purpose
    (an operator's job such as restore-replay, an adapter test): its requests are the operator's,
    not a stage's, and the reason is recorded with them."""
    _declared.append(reason)
    try:
        yield
    finally:
        _declared.remove(reason)


def _stage_code_on_stack() -> bool:
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name == DEPLOYED_PACKAGE or name.startswith(DEPLOYED_PACKAGE + "."):
            return True
        frame = frame.f_back
    return False


def _moto_tables(account: str, region: str) -> Callable[[str], TableSchema | None]:
    from moto.dynamodb.models import dynamodb_backends

    def schema(name: str) -> TableSchema | None:
        table = dynamodb_backends[account][region].tables.get(name)
        if table is None:
            return None
        indexes = {}
        for index in [*table.indexes, *table.global_indexes]:
            keys = {k["KeyType"]: k["AttributeName"] for k in index.schema}
            indexes[index.name] = (keys["HASH"], keys.get("RANGE"))
        return TableSchema(table.hash_key_attr, table.range_key_attr, indexes)

    return schema


def _moto_keys(account: str, region: str) -> Callable[[str], KeyFacts | None]:
    from moto.kms.models import kms_backends

    def facts(identifier: str) -> KeyFacts | None:
        where = (account, region)
        if identifier.startswith("arn:"):
            parts = identifier.split(":")
            where = (parts[4], parts[3])  # a key of another account or Region, by its ARN
        backend = kms_backends[where[0]][where[1]]
        try:
            key = backend.keys.get(backend.any_id_to_key_id(identifier))
        except (KeyError, AttributeError, TypeError):
            return None
        if key is None:
            return None
        return KeyFacts(
            key.arn,
            tuple(sorted(key.aliases)),
            dict(backend.tagger.get_tag_dict_for_resource(key.id)),
            key.key_spec,
            key.key_usage,
            key.origin,
            bool(key.multi_region),
        )

    return facts


def _ciphertext_key(blob: str) -> str | None:
    """moto's ciphertext begins with the 36-character id of its key (moto/kms/utils.py)."""
    try:
        return base64.b64decode(blob)[:36].decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None


def record(response: Any, *, in_process: bool) -> Request:
    """The Request a moto response object is about to serve."""
    service, operation = str(response.service_name), str(response._get_action())
    request = Request(str(response.access_key), service, operation)
    if in_process:
        request.stage_code = _stage_code_on_stack()
        request.declared = _declared[-1] if _declared else None
        request.test = current_test[0]
    try:
        params: Any = {}
        if service in _JSON_SERVICES:
            raw = response.raw_body or b"{}"
            params = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        account, region = str(response.current_account), str(response.region)
        request.accesses = accesses(
            service,
            operation,
            params,
            region=region,
            account=account,
            tables=_moto_tables(account, region),
            keys=_moto_keys(account, region),
            ciphertext_key=_ciphertext_key,
        )
    except (Underivable, KeyError, TypeError, ValueError) as exc:
        request.error = f"{type(exc).__name__}: {exc}"
    return request


_installed: list[Callable[..., Any]] = []


def install(sink: Callable[[Request], None], *, in_process: bool) -> None:
    """Record every request moto authorizes from now on into ``sink`` (idempotent)."""
    from moto.core.responses import BaseResponse

    if _installed:
        return
    original = BaseResponse._authenticate_and_authorize_normal_action
    _installed.append(original)

    def authorize(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            found = record(self, in_process=in_process)
        except Exception as exc:  # noqa: BLE001 - never break the request under test; the proof fails on it
            found = Request(str(getattr(self, "access_key", "?")), "?", "?", error=f"recorder failed: {exc!r}")
        sink(found)
        return original(self, *args, **kwargs)

    BaseResponse._authenticate_and_authorize_normal_action = authorize  # type: ignore[method-assign]


def uninstall() -> None:
    from moto.core.responses import BaseResponse

    if _installed:
        BaseResponse._authenticate_and_authorize_normal_action = _installed.pop()  # type: ignore[method-assign]


def file_sink(path: str) -> Callable[[Request], None]:
    """One JSON line per request, appended under a lock (the moto server's threads share it)."""
    lock = threading.Lock()

    def write(request: Request) -> None:
        line = json.dumps(request.to_json(), sort_keys=True) + "\n"
        with lock, open(path, "a", encoding="utf-8") as out:
            out.write(line)

    return write
