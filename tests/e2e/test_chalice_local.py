"""`chalice local --stage <api stage>` as a Chalice user runs it, besides `make dev`: from the
project root, with the environment docs/getting-started.md documents (``python -m tools.localenv``),
against the local stack's moto. The commands are the guide's, run by a shell as written there."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from chalicelib.stages import API_STAGE_NAMES
from tests.e2e.conftest import TIMEOUT, LocalStack, create_person
from tests.plaintext_guard import register
from tools import sample
from tools.ports import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")
PERSON = sample.person()
OTHER = sample.person(name="Adaline", email="adaline.l@example.org")
register(PERSON)
register(OTHER)


def documented_commands(stage: str) -> list[str]:
    """The guide's two lines for ``stage``: the environment, then chalice local."""
    block = re.search(r"```sh\n# Illustrative[^\n]*chalice local by hand.*?```", GUIDE, re.S)
    assert block, "docs/getting-started.md lacks the `chalice local` by hand block"
    lines = [line.split("#")[0].strip() for line in block.group(0).splitlines()[1:-1]]
    commands = [line.replace("--stage reader", f"--stage {stage}") for line in lines if line and "make dev" not in line]
    assert any(c.startswith('eval "$(.venv/bin/python -m tools.localenv') for c in commands), commands
    assert any(c.startswith(".venv/bin/chalice local --stage") for c in commands), commands
    return commands


def _serve(stage: str, moto_port: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    commands = [c.replace("--port 8012", f"--port {port}") for c in documented_commands(stage)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PII_VAULT_", "AWS_"))}
    env["PII_VAULT_MOTO_PORT"] = moto_port
    script = " && ".join([*commands[:-1], "exec " + commands[-1] + " --no-autoreload"])
    shell = shutil.which("bash")
    assert shell, "the guide's commands are for a POSIX shell"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [shell, "-c", script], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return proc, f"http://127.0.0.1:{port}"


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")
        try:
            requests.get(url + "/", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer:\n{log.read_text(errors='replace')}")


def test_given_the_readme_commands_then_chalice_local_serves_each_api_stage_on_the_local_stack(
    local_stack: LocalStack, customer_id: str, tmp_path: Path
) -> None:
    moto_port = local_stack.moto_url.rsplit(":", 1)[1]
    servers = {stage: _serve(stage, moto_port, tmp_path / f"{stage}.log") for stage in API_STAGE_NAMES}
    try:
        for stage, (proc, url) in servers.items():
            _wait(url, proc, tmp_path / f"{stage}.log")
        written_by_make_dev = create_person(local_stack, customer_id, PERSON).json()["id"]
        people = f"/customers/{customer_id}/people"
        created = requests.post(servers["writer"][1] + people, json=OTHER, timeout=TIMEOUT)
        read = requests.get(f"{servers['reader'][1]}{people}/{written_by_make_dev}", timeout=TIMEOUT)
        masked = requests.get(f"{servers['masked'][1]}{people}/{created.json().get('id')}", timeout=TIMEOUT)
        from_make_dev = requests.get(f"{local_stack.reader_url}{people}/{created.json().get('id')}", timeout=TIMEOUT)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)

    assert created.status_code == 201, created.text
    assert read.status_code == 200 and read.json()["data"]["email"] == PERSON["email"], read.text
    local, domain = OTHER["email"].split("@")
    assert masked.status_code == 200 and masked.json()["data"]["email"] == f"{local[0]}***@{domain}", masked.text
    # Both ways: make dev's reader reads what the hand-started writer wrote.
    assert from_make_dev.status_code == 200 and from_make_dev.json()["data"]["name"] == OTHER["name"], (
        from_make_dev.text
    )
