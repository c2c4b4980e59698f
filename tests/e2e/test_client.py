"""The pii-vault client package (clients/python), installed into a fresh virtual environment,
drives the local stack; ``python -m tools.client`` works there with no credentials exported.

The package is built offline into a wheel by the dev environment's pip (``pip wheel
--no-build-isolation --no-deps --no-index``: setuptools, which Python 3.11's venv bundles,
and wheel, which chalice requires), and installed offline into a fresh ``python -m venv``
(``--no-deps --no-index``). Of the dev environment the fresh one sees only botocore and
what botocore itself requires, through a ``.pth`` file: the client must run with its
declared dependency alone (``pip check`` agrees).
Subprocesses run with every ``AWS_*`` variable removed and an empty home directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from tests.e2e.conftest import LocalStack
from tests.plaintext_guard import register
from tools import client
from tools.sample import person

ROOT = Path(__file__).resolve().parents[2]
PERSON = person()
SECRET_VALUES = ("whsec_e2e_client_v1_Qm9vaw", "whsec_e2e_client_v2_UGFnZQ", "whsec_e2e_cli_TGluZQ")
register(PERSON, SECRET_VALUES)  # the no-plaintext guard looks for these everywhere


def _closure(name: str) -> list[metadata.Distribution]:
    """``name`` and, recursively, what it requires in this environment (markers evaluated, no extras)."""
    seen: dict[str, metadata.Distribution] = {}
    pending = [name]
    while pending:
        dist = metadata.distribution(pending.pop())
        key = dist.metadata["Name"].lower()
        if key in seen:
            continue
        seen[key] = dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return list(seen.values())


def _expose_only(dists: list[metadata.Distribution], target: Path) -> None:
    """Symlink each distribution's top-level files (package, modules, dist-info) into ``target``."""
    target.mkdir()
    for dist in dists:
        for top in {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}:
            source = Path(str(dist.locate_file(top)))
            if top != "__pycache__" and source.exists() and not (target / top).exists():
                (target / top).symlink_to(source)


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(
        HOME=str(home),
        AWS_CONFIG_FILE=str(home / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        PIP_NO_INPUT="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return env


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("client-venv")
    venv, home = base / "venv", base / "home"
    home.mkdir()
    env = _clean_env(home)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout.strip()
    )
    _expose_only(_closure("botocore"), base / "deps")
    (site / "botocore-from-dev.pth").write_text(str(base / "deps") + "\n")
    source = base / "src"  # a copy: setuptools writes build/ and *.egg-info next to the sources
    shutil.copytree(ROOT / "clients" / "python", source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-build-isolation",
            "--no-deps",
            "--no-index",
            "-w",
            str(base / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = (base / "dist").glob("pii_vault_client-*.whl")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True, env=env)
    assert check.returncode == 0, check.stdout + check.stderr  # botocore is the one requirement, and present
    return venv, env


DRIVE = r"""
import json, sys, time
import pii_vault_client
from pii_vault_client import Client, NotFoundError

writer, reader, masked, tenant, person, values = (*sys.argv[1:4], sys.argv[4], json.loads(sys.argv[5]), sys.argv[6:])
vault = Client(writer_url=writer, reader_url=reader, masked_url=masked)
# A secret first: its items sort after the tenant's people, as in issue 24's [2, 2, 0].
put = [vault.put_secret(tenant, "hook", v).version for v in values[:2]]
created = [vault.create_person(tenant, {**person, "name": f"{person['name']}{i}"}) for i in range(5)]
ids = [c.id for c in created]
pages = [[p.id for p in page.items] for page in vault.list_pages(tenant, limit=2, fields=["name"])]
whole = [len(page.items) for page in vault.list_pages(tenant, limit=5)]
one = vault.get_person(tenant, ids[0], fields=["email", "name"])
many = vault.get_people(tenant, [ids[1], "0" * 32, ids[2]], fields=["name"])
secret = vault.get_secret(tenant, "hook")
first = vault.get_secret(tenant, "hook", version=1)
try:
    vault.get_person(tenant, "f" * 32)
    missing = None
except NotFoundError as exc:
    missing = [type(exc).__name__, exc.status, exc.code]
found, deadline = [], time.monotonic() + 30  # search is indexed from the table's stream
while len(found) < len(ids) and time.monotonic() < deadline:
    found = vault.search_people(tenant, person["email"], fields=["name"]).items
    time.sleep(0.3)
masked_one = vault.get_masked_person(tenant, ids[0], fields=["email", "name"])
masked_pages = [len(page.items) for page in vault.list_masked_pages(tenant, limit=5)]
masked_many = vault.get_masked_people(tenant, ids[:2], fields=["dob"])
for n in range(258):  # 260 versions in all: the first DELETE removes 250 and answers 202
    vault.put_secret(tenant, "hook", values[0])
deletion = vault.delete_secret(tenant, "hook")
try:
    vault.get_secret(tenant, "hook")
    gone = False
except NotFoundError:
    gone = True
print(json.dumps({
    "module": pii_vault_client.__file__, "ids": ids, "etags": [c.etag for c in created],
    "locations": [c.location for c in created], "pages": pages, "whole": whole,
    "one": one.data, "one_etag": one.etag, "one_status": one.meta.status,
    "many": {"items": [p.id for p in many.items], "names": [p.data["name"] for p in many.items],
             "missing": many.missing},
    "put": put, "latest": [secret.version, secret.value, secret.etag], "first": first.value, "missing": missing,
    "found": sorted(p.id for p in found), "found_names": sorted(p.data["name"] for p in found),
    "masked_one": masked_one.data, "masked_pages": masked_pages, "masked_many": [p.data for p in masked_many.items],
    "deletion": [deletion.done, deletion.requests, deletion.remaining_versions], "gone": gone,
}))
"""


def test_given_the_installed_client_then_it_drives_the_local_stack_without_credentials(
    fresh_venv: tuple[Path, dict[str, str]], local_stack: LocalStack, customer_id: str
) -> None:
    venv, env = fresh_venv
    urls = [local_stack.writer_url, local_stack.reader_url, local_stack.masked_url]
    args = [*urls, customer_id, json.dumps(PERSON), *SECRET_VALUES[:2]]

    run = subprocess.run(
        [str(venv / "bin" / "python"), "-c", DRIVE, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=venv,
        timeout=300,
    )

    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert Path(out["module"]).is_relative_to(venv)  # the installed copy, not the source tree
    assert out["etags"] == ['"1"'] * 5
    assert out["locations"] == [f"/customers/{customer_id}/people/{i}" for i in out["ids"]]
    assert [len(page) for page in out["pages"]] == [2, 2, 1]
    assert out["whole"] == [5]  # a full last page carries no next: no trailing empty page
    assert sorted(id_ for page in out["pages"] for id_ in page) == sorted(out["ids"])
    assert out["one"] == {"email": PERSON["email"], "name": PERSON["name"] + "0"}
    assert (out["one_etag"], out["one_status"]) == ('"1"', 200)
    assert out["many"] == {
        "items": [out["ids"][1], out["ids"][2]],
        "names": [PERSON["name"] + "1", PERSON["name"] + "2"],
        "missing": ["0" * 32],
    }
    assert out["put"] == [1, 2]
    assert out["latest"] == [2, SECRET_VALUES[1], '"2"'] and out["first"] == SECRET_VALUES[0]
    assert out["missing"] == ["NotFoundError", 404, "not_found"]
    # Search, masked reads and a completed delete (issue 24).
    assert out["found"] == sorted(out["ids"])
    assert out["found_names"] == sorted(PERSON["name"] + str(i) for i in range(5))
    local, domain = PERSON["email"].split("@")
    assert out["masked_one"] == {"email": f"{local[0]}***@{domain}", "name": PERSON["name"][0] + "."}
    assert out["masked_pages"] == [5]
    assert out["masked_many"] == [{"dob": PERSON["dob"][:4]}] * 2
    done, requests_sent, remaining = out["deletion"]
    assert (done, remaining) == (True, 0) and requests_sent >= 2  # 202 first, then repeated to the end
    assert out["gone"] is True
    assert not any(value in run.stderr for value in (PERSON["email"], *SECRET_VALUES))


def test_given_the_installed_cli_then_it_writes_reads_and_reports_errors(
    fresh_venv: tuple[Path, dict[str, str]], local_stack: LocalStack, customer_id: str
) -> None:
    venv, env = fresh_venv
    cli = str(venv / "bin" / "pii-vault")
    secret_url = f"/customers/{customer_id}/secrets/cli"

    put = subprocess.run(
        [cli, "PUT", local_stack.writer_url + secret_url, "--data", json.dumps({"value": SECRET_VALUES[2]})],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    got = subprocess.run(
        [cli, "GET", local_stack.reader_url + secret_url], capture_output=True, text=True, env=env, timeout=60
    )
    missing = subprocess.run(
        [cli, "GET", f"{local_stack.reader_url}/customers/{customer_id}/people/{'0' * 32}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )

    assert (put.returncode, got.returncode) == (0, 0), put.stderr + got.stderr
    assert "HTTP 201" in put.stderr and json.loads(got.stdout)["value"] == SECRET_VALUES[2]
    assert (
        missing.returncode == 1 and "HTTP 404" in missing.stderr and json.loads(missing.stdout)["code"] == "not_found"
    )


def test_given_the_installed_cli_subcommands_then_json_out_and_the_documented_exit_codes(
    fresh_venv: tuple[Path, dict[str, str]], local_stack: LocalStack, customer_id: str, tmp_path: Path
) -> None:
    venv, env = fresh_venv
    env = {
        **env,
        "PII_VAULT_WRITER_URL": local_stack.writer_url,
        "PII_VAULT_READER_URL": local_stack.reader_url,
        "PII_VAULT_MASKED_URL": local_stack.masked_url,
    }
    (tmp_path / "person.json").write_text(json.dumps(PERSON))
    (tmp_path / "secret.json").write_text(json.dumps({"value": SECRET_VALUES[2]}))

    def cli(*argv: str, stdin: str | None = None) -> tuple[int, Any]:  # the exit code, then JSON or stderr
        run = subprocess.run(
            [str(venv / "bin" / "pii-vault"), *argv], input=stdin, capture_output=True, text=True, env=env, timeout=60
        )
        return run.returncode, json.loads(run.stdout) if run.stdout.strip() else run.stderr

    code, created = cli("people", "create", customer_id, "--data", f"@{tmp_path / 'person.json'}")
    assert code == 0 and created["version"] == 1 and created["etag"] == '"1"', created
    person_id = created["id"]
    patched = cli("people", "patch", customer_id, person_id, "--data", '{"dob": "1999-09-09"}', "--if-match", "1")
    got = cli("people", "get", customer_id, person_id, "--fields", "dob")
    masked = cli("people", "get", customer_id, person_id, "--fields", "dob", "--masked")
    stale = cli("people", "patch", customer_id, person_id, "--data", '{"dob": "2000-01-01"}', "--if-match", "1")
    put = cli("secrets", "put", customer_id, "cli", "--data", "-", stdin=json.dumps({"value": SECRET_VALUES[2]}))
    secret = cli("secrets", "get", customer_id, "cli")
    versions = cli("secrets", "versions", customer_id, "cli")
    deleted = cli("secrets", "delete", customer_id, "cli")
    again = cli("secrets", "delete", customer_id, "cli")
    unreachable = cli("secrets", "get", customer_id, "cli", "--reader-url", "http://127.0.0.1:9", "--max-attempts", "1")

    assert patched[0] == 0 and patched[1]["version"] == 2
    assert got == (0, {**got[1], "data": {"dob": "1999-09-09"}, "version": 2, "etag": '"2"'})
    assert masked[0] == 0 and masked[1]["data"] == {"dob": "1999"}
    assert stale == (1, {"status": 412, "code": "precondition_failed", "message": stale[1]["message"]})
    assert put[0] == 0 and secret[1]["value"] == SECRET_VALUES[2]
    assert versions[0] == 0 and [v["version"] for v in versions[1]["versions"]] == [1]
    assert deleted == (0, {"id": "cli", "done": True, "remaining_versions": 0, "requests": 1})
    assert again[0] == 1 and again[1]["code"] == "not_found"
    assert unreachable[0] == 2


def test_given_the_readme_multi_tenant_example_then_tools_client_call_takes_a_boto3_session(
    local_stack: LocalStack, customer_id: str
) -> None:
    """docs/callers.md: ``from tools import client … client.call(…, session=acme)``."""
    import boto3

    acme = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="example-secret", region_name="us-east-1"
    )
    answer = client.call("GET", f"{local_stack.reader_url}/customers/{customer_id}/people", session=acme)

    assert (answer.status, answer.json()) == (200, {"items": [], "next": None})


def test_given_tools_client_and_no_exported_credentials_then_the_local_stack_serves_it(
    local_stack: LocalStack,
    customer_id: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Issue 10: `python -m tools.client` against `make dev` needs nothing exported."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    created = client.main(
        ["POST", f"{local_stack.writer_url}/customers/{customer_id}/people", "--data", json.dumps(PERSON)]
    )
    created_out = capsys.readouterr()
    person_id = json.loads(created_out.out)["id"]
    read = client.main(
        ["GET", f"{local_stack.reader_url}/customers/{customer_id}/people/{person_id}?fields=email,name"]
    )
    read_out = capsys.readouterr()
    missing = client.main(["GET", f"{local_stack.reader_url}/customers/{customer_id}/people/{'0' * 32}"])
    missing_out = capsys.readouterr()

    assert created == 0 and "HTTP 201" in created_out.err and "Location:" in created_out.err
    assert read == 0 and json.loads(read_out.out)["data"] == {"email": PERSON["email"], "name": PERSON["name"]}
    assert missing == 1 and "HTTP 404" in missing_out.err and '"code":"not_found"' in missing_out.out
