"""A tiny run of the load script against the local stack: the numbers are printed, not judged."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import LocalStack
from tools.devstack import PROJECT_ROOT, DevStack
from tools.load import MAX_CLIENTS, OPS, run
from tools.ports import free_port


def test_given_concurrent_clients_when_the_load_run_is_verified_then_nothing_is_lost_and_no_5xx(
    local_stack: LocalStack,
) -> None:
    report = run(
        local_stack.writer_url,
        local_stack.reader_url,
        local_stack.dynamodb,
        local_stack.table_name,
        clients=4,
        operations=30,
        max_seconds=120,
        seed=7,
        masked_url=local_stack.masked_url,
    )

    print(report.render())
    assert report.operations == 4 * 30
    assert report.lost == 0, report.verification.lost
    assert report.server_errors == 0, report.statuses
    assert report.errors() == {}, report.errors()
    assert report.read_mismatches == 0
    assert all(report.by_op[op] > 0 for op in OPS), report.by_op
    assert report.verification.present > 0 and report.verification.gone > 0
    # Every write was answered, so nothing is uncertain and nothing stored is unaccounted for.
    assert sum(report.unanswered.values()) == 0, report.unanswered
    assert (report.verification.uncertain, report.verification.orphans) == (0, 0)
    v = report.verification
    assert len(v.live) == v.present == v.masked_checked == v.found_by_search


@pytest.mark.parametrize("server", ["tools.localserver", "tools.motoserver"])
def test_given_a_stopped_server_when_64_clients_connect_then_the_kernel_queues_every_connection(
    server: str, tmp_path: Path
) -> None:
    """The listen backlog, observed: while the server process is stopped, nothing is accepted,
    so only as many connections as the backlog allows complete their handshake (the kernel
    drops the rest); socketserver's default of 5 lets 5 of 64 through."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        server,
        "--host" if server == "tools.localserver" else "-H",
        "127.0.0.1",
        "--port" if server == "tools.localserver" else "-p",
        str(port),
    ]
    if server == "tools.localserver":
        argv += ["--stage", "reader", "--no-autoreload"]
    env = DevStack(moto_port=free_port()).child_env()  # region, fake credentials; never touched here
    with open(tmp_path / "server.log", "wb") as log:
        proc = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    sockets: list[socket.socket] = []
    try:
        _wait_until_listening(port, proc)
        os.kill(proc.pid, signal.SIGSTOP)
        for _ in range(MAX_CLIENTS):
            try:
                sockets.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                break
        assert len(sockets) == MAX_CLIENTS
    finally:
        for conn in sockets:
            conn.close()
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        proc.wait(30)


def _wait_until_listening(port: int, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listening on {port} after {seconds}s")
