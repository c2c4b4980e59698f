"""The embedded local system: a moto server (KMS + DynamoDB), bootstrapped, plus
``chalice local`` for the writer, the reader and the masked stage, each pointed at moto.

Every part is a child process in its own process group (moto too: an in-process
ThreadedMotoServer shares moto's global state, which any ``mock_aws`` in the same
pytest session resets). The children get their settings through an explicit
environment; ``os.environ`` of the caller is never modified, so an e2e fixture does
not leak ``AWS_ENDPOINT_URL`` into the integration tests running in the same process.

``python -m tools.devstack`` (``make dev``) runs it in the foreground until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from chalicelib.stages import API_STAGE_NAMES, registry
from chalicelib.support.config import default_text
from chalicelib.support.environment import (
    ROLE_VARIABLE,
    TABLE_SUFFIXES,
    Callers,
    Key,
    KeyArn,
    LocalOnly,
    StreamArn,
    TableName,
)
from infra.local import bootstrap
from tools.ports import FIRST_STAGE_PORT, MOTO_PORT, free_port, port_variable
from tools.recorder import principals

STAGES = API_STAGE_NAMES  # the API stages, each a `chalice local`

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
# Each stage's processes sign as that stage, tools and bootstrap as the operator (tools/recorder/principals.py).
FAKE_CREDENTIALS = principals.environment(principals.OPERATOR)
# chalice local has no IAM authorizer: every request is served as this session of this
# role, which is the only one on the local stages' allow-list (chalicelib/api/callers.py).
LOCAL_CALLER_ROLE = "arn:aws:iam::000000000000:role/pii-vault-local-caller"
LOCAL_CALLER = "arn:aws:sts::000000000000:assumed-role/pii-vault-local-caller/devstack"
LOCAL_CALLER_ENV = {"PII_VAULT_ALLOWED_CALLERS": LOCAL_CALLER_ROLE, "PII_VAULT_LOCAL_CALLER": LOCAL_CALLER}


VARIABLE_PREFIX = "PII_VAULT_"  # a stage's variables come from the registry, never from the caller's shell
# What the local stack sets that no deployed function has (docs/getting-started.md): the stand-in
# for the IAM authorizer, moto's endpoint and fake credentials, and interpreter flags.
LOCAL_ONLY_VARIABLES = frozenset(
    {"PII_VAULT_LOCAL_CALLER", "AWS_ENDPOINT_URL", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", *FAKE_CREDENTIALS}
)


def local_environment(stage: registry.Stage, resources: Mapping[str, str]) -> dict[str, str]:
    """A stage's variables on the local stack: exactly the ones it declares, filled from what
    ``bootstrap`` made (as the templates fill them from the base stack); tunables at their defaults."""
    table = resources["table_name"]
    keys = {
        Key.DATA: resources["key_arn"],
        Key.FLEET_MAC: resources["fleet_mac_key_arn"],
        Key.BEACON_MAC: resources["beacon_key_arn"],
    }
    env = {ROLE_VARIABLE: stage.name}
    for variable in stage.variables:
        source = variable.source
        if isinstance(source, TableName):
            value = table + TABLE_SUFFIXES[source.table]
        elif isinstance(source, KeyArn):
            value = keys[source.key]
        elif isinstance(source, StreamArn):
            value = resources["stream_arn"]
        elif isinstance(source, Callers):
            value = LOCAL_CALLER_ROLE
        elif isinstance(source, LocalOnly):
            value = LOCAL_CALLER
        else:
            value = default_text(variable.field)
        env[variable.env] = value
    return env


class DevStackError(RuntimeError):
    """The local stack could not start; the message carries the child's output."""


def _check_port_free(host: str, port: int, env_var: str) -> None:
    # Without this, a stranger already answering on the port would look like our child.
    with socket.socket() as s:
        # SO_REUSEADDR as the servers use it: TIME_WAIT from a previous run is no conflict.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise DevStackError(f"port {port} on {host} is in use ({exc.strerror}); set {env_var}") from None


class DevStack:
    """Start with ``with DevStack(...) as stack:``; stops (and kills) every child on exit."""

    def __init__(
        self,
        *,
        project_dir: str | Path = PROJECT_ROOT,
        moto_port: int = MOTO_PORT,
        stage_ports: Mapping[str, int] | None = None,  # API stage -> port; default FIRST_STAGE_PORT on
        host: str = "127.0.0.1",
        log_dir: str | Path | None = None,
        startup_timeout: float = 60.0,
        request_log: str | Path | None = None,  # moto records every request there (tools/motoserver.py)
        moto_args: tuple[str, ...] = (),  # extra tools.motoserver options (tests: --lose-answer-every)
    ) -> None:
        self.project_dir = Path(project_dir)
        self.host = host
        chosen = dict(stage_ports or {})
        if unknown := set(chosen) - set(API_STAGE_NAMES):
            raise DevStackError(f"no API stage named {', '.join(sorted(unknown))}")
        stages = {name: chosen.get(name, FIRST_STAGE_PORT + i) for i, name in enumerate(API_STAGE_NAMES)}
        self.ports = {"moto": moto_port, **stages}
        self.log_dir = Path(log_dir) if log_dir else None
        self._temp_log_dir: Path | None = None  # made by start() when no log_dir was given; removed by stop()
        self.startup_timeout, self.request_log = startup_timeout, request_log
        self.moto_args = moto_args
        self.resources: dict[str, str] = {}  # bootstrap() result once started
        self._procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}  # name -> (Popen, log path)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> DevStack:
        """Ports from PII_VAULT_MOTO_PORT and each API stage's PII_VAULT_<STAGE>_PORT (defaults:
        5000, then 8001 on in the registry's order: writer 8001, reader 8002, masked 8003)."""
        env = os.environ if environ is None else environ
        stage_ports = {name: int(env[port_variable(name)]) for name in API_STAGE_NAMES if port_variable(name) in env}
        return cls(moto_port=int(env.get(port_variable("moto"), MOTO_PORT)), stage_ports=stage_ports, **kwargs)

    @classmethod
    def on_free_ports(cls, **kwargs: Any) -> DevStack:
        """Every port free right now, so never `make dev`'s (the tests, the load run, the benchmark)."""
        return cls(moto_port=free_port(), stage_ports={name: free_port() for name in API_STAGE_NAMES}, **kwargs)

    def url(self, name: str) -> str:
        return f"http://{self.host}:{self.ports[name]}"

    @property
    def moto_url(self) -> str:
        return self.url("moto")

    @property
    def writer_url(self) -> str:
        return self.url("writer")

    @property
    def reader_url(self) -> str:
        return self.url("reader")

    @property
    def masked_url(self) -> str:
        return self.url("masked")

    def child_env(self, stage: str | None = None) -> dict[str, str]:
        """The environment of a child: fake credentials (the stage's own, else the operator's), fixed region,
        moto as endpoint, and for a stage its own variables only (``local_environment``: the registry's)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE") and not k.startswith(VARIABLE_PREFIX)
        }
        env.update(principals.environment(stage or principals.OPERATOR))
        env.update(
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,
            AWS_ENDPOINT_URL=self.moto_url,
            # moto imports lazily; bytecode written into a .venv inside the project would
            # restart an auto-reloading `chalice local` mid-request.
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONUNBUFFERED="1",
        )
        if stage is not None:
            env.update(local_environment(registry.stage(stage), self.resources))
        return env

    def tools_env(self) -> dict[str, str]:
        """The environment for the command-line tools (``tools.tenants``, ``tools.jobs``) against
        this stack: every stage's variables (each tool reads the stage settings it acts as)."""
        env = self.child_env()
        for stage in registry.STAGES:
            env.update(local_environment(stage, self.resources))
        env.pop(ROLE_VARIABLE, None)
        return env

    def client(self, service: str) -> Any:
        """A boto3 client for the moto server (explicit settings, nothing from os.environ)."""
        import boto3

        creds = FAKE_CREDENTIALS
        return boto3.session.Session(
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=creds["AWS_SESSION_TOKEN"],
            region_name=REGION,
        ).client(service, endpoint_url=self.moto_url)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> DevStack:
        if not (self.project_dir / "app.py").is_file():
            raise DevStackError(f"no app.py in {self.project_dir}")
        chalice = Path(sys.executable).with_name("chalice")
        if not chalice.exists():
            raise DevStackError(f"{chalice} not found; run `make .venv`")
        for name, port in self.ports.items():
            _check_port_free(self.host, port, port_variable(name))
        if self.log_dir is None:
            self.log_dir = self._temp_log_dir = Path(tempfile.mkdtemp(prefix="pii-vault-devstack-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            log = ["--request-log", str(self.request_log)] if self.request_log else []
            moto = [sys.executable, "-m", "tools.motoserver", "-H", self.host, "-p", str(self.ports["moto"])]
            self._spawn("moto", [*moto, *log, *self.moto_args])
            self._wait_until_answering(["moto"])
            self.resources = bootstrap(self.client("kms"), self.client("dynamodb"))
            self._write_tools_env()
            for stage in STAGES:
                self._spawn(
                    stage,
                    [
                        sys.executable,
                        "-m",
                        "tools.localserver",
                        "--stage",
                        stage,
                        "--host",
                        self.host,
                        "--port",
                        str(self.ports[stage]),
                        "--no-autoreload",
                    ],
                    stage=stage,
                )
            # `chalice local` runs no stream handlers: the indexer polls the table's stream.
            parked = self.log_dir / "indexer-parked.jsonl"  # the local on-failure destination
            self._spawn("indexer", [sys.executable, "-m", "tools.streampoll", "--park", str(parked)], stage="indexer")
            self._wait_until_answering(list(STAGES))
        except BaseException:  # includes Ctrl-C while starting: never leave children behind
            self.stop()
            raise
        return self

    def _write_tools_env(self) -> None:
        """``<log dir>/tools.env``: the CLI tools' environment for this stack, as shell exports."""
        env = sorted((k, v) for k, v in self.tools_env().items() if os.environ.get(k) != v)  # what it sets
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env if k.startswith(("AWS_", VARIABLE_PREFIX)))
        Path(self.log_dir or ".", "tools.env").write_text(exports, encoding="utf-8")

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM each child's process group, SIGKILL what is left after ``timeout``."""
        for name in reversed(list(self._procs)):
            proc, _ = self._procs[name]
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    _signal_group(proc, signal.SIGKILL)
                    proc.wait()
            _signal_group(proc, signal.SIGKILL)  # stragglers the leader may have forked
        self._procs.clear()
        if self._temp_log_dir is not None:
            shutil.rmtree(self._temp_log_dir, ignore_errors=True)
            self.log_dir = self._temp_log_dir = None

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def check_alive(self) -> None:
        """Raise DevStackError (with its output) if any child has exited."""
        for name, (proc, log) in self._procs.items():
            if proc.poll() is not None:
                raise DevStackError(f"{name} exited with code {proc.returncode}\n{_tail(log)}")

    def _spawn(self, name: str, argv: list[str], *, stage: str | None = None) -> None:
        if self.log_dir is None:
            raise DevStackError("start() sets the log directory before spawning")
        log = self.log_dir / f"{name}.log"
        with open(log, "wb") as out:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                argv,
                cwd=self.project_dir,
                env=self.child_env(stage),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: killable as a whole, no terminal SIGINT
            )
        self._procs[name] = (proc, log)

    def _wait_until_answering(self, names: list[str]) -> None:
        deadline = time.monotonic() + self.startup_timeout
        pending = list(names)
        while pending:
            self.check_alive()
            pending = [n for n in pending if not _answers_http(self.url(n))]
            if pending and time.monotonic() > deadline:
                raise DevStackError(
                    f"{', '.join(pending)} did not answer HTTP within {self.startup_timeout:.0f}s\n"
                    + "\n".join(_tail(self._procs[n][1]) for n in pending)
                )
            if pending:
                time.sleep(0.1)


def _answers_http(url: str) -> bool:
    if not url.startswith("http://"):
        raise DevStackError(f"not a local http URL: {url}")
    try:
        # Bandit B310 (urlopen schemes): the scheme is checked above; the URL is our own child.
        urllib.request.urlopen(url + "/", timeout=1).close()  # nosec B310  # noqa: S310
    except urllib.error.HTTPError:
        return True  # any status (an unknown path answers 404) means it is serving
    except OSError:
        return False
    return True


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _tail(path: str | Path, lines: int = 40) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"--- {path}: unreadable"
    return f"--- last {len(text)} lines of {path}:\n" + "\n".join(text)


def _raise_system_exit(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds through `with`, so children are stopped


def main() -> int:
    """Foreground local stack for ``make dev``: print endpoints, serve until Ctrl-C."""
    signal.signal(signal.SIGTERM, _raise_system_exit)
    # Python leaves SIGINT ignored if the parent ignored it (background jobs); Ctrl-C must work.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    stack = DevStack.from_env(log_dir=PROJECT_ROOT / ".dev")
    try:
        with stack:
            w, r, m = stack.writer_url, stack.reader_url, stack.masked_url
            print(
                f"pii-vault local stack up in {time.monotonic() - started:.1f}s\n"
                f"  writer  {w}   (POST/PUT/PATCH/DELETE)\n"
                f"  reader  {r}   (GET, POST .../people/search)\n"
                f"  masked  {m}   (GET people: masked projections only)\n"
                f"  moto    {stack.moto_url}   table {stack.resources['table_name']}, key {stack.resources['key_id']}\n"
                f"  indexer polls the table's stream: a new person is searchable within about a second\n"
                f"  logs    {stack.log_dir}/{{moto,writer,reader,masked,indexer}}.log\n"
                f"  tools   . {stack.log_dir}/tools.env   before python -m tools.jobs, tools.tenants\n\n"
                "Try:\n"
                f"  curl -si -X POST {w}/customers/acme/people -H 'Content-Type: application/json' \\\n"
                '    -d \'{"name":"Grace","surname":"Hopper","email":"grace@example.com","dob":"1906-12-09",\n'
                '         "address":{"line1":"1 Harbour St","city":"London",'
                '"postal_code":"E1 6AN","country":"GB"}}\'\n'
                f"  curl -s {r}/customers/acme/people/<id from Location>   (more: docs/getting-started.md)\n\n"
                "Ctrl-C stops everything.",
                flush=True,
            )
            while True:
                stack.check_alive()
                time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopped.")
        return 0
    except DevStackError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
