"""Every runnable code block of the documentation, run against a local stack (tests/docs_examples.py).

One test per file, its blocks in order, as a reader would run them after ``make dev``: the
e2e tier's local stack (``local_stack``: no stack of its own), the documentation's tenants
emptied before each file (the other tests' tenants are theirs); commands run from the
project's root in a clean environment (no AWS_* or PII_VAULT_* variables); the documented
default ports are mapped to the stack's. Sybil finds the blocks and runs the examples;
the evaluators below say what running a block means.
"""

from __future__ import annotations

import difflib
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser

from chalicelib.store.tables import REF_TARGET, REF_TARGETS
from tests.docs_examples import (
    ILLUSTRATIVE,
    bind,
    doc_files,
    match_output,
    normalise,
    tenants,
    transcript,
)
from tests.plaintext_guard import GUARD
from tests.tables import scan_all
from tools.devstack import DevStack
from tools.docs import ROOT

COMMAND_TIMEOUT = 180
_MAKE_DRY_RUN = 'make() { command make --no-print-directory -n "$@" >/dev/null; }\n'


class Context:
    """The stack the blocks run against, and what a file's blocks have bound so far."""

    def __init__(self, stack: DevStack) -> None:
        self.stack = stack
        documented = DevStack.from_env({})  # make dev's default ports, as the docs show them
        self.urls = {documented.url(name): stack.url(name) for name in stack.ports}
        self.urls[".dev/"] = f"{stack.log_dir}/"
        self.bindings: dict[str, str] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PII_VAULT_"))}
        self.env["COLUMNS"] = "100"  # argparse help, as wide as the docs

    def to_stack(self, text: str) -> str:
        for documented, actual in self.urls.items():
            text = text.replace(documented, actual)
        return bind(text, self.bindings)

    def to_docs(self, text: str) -> str:
        for documented, actual in self.urls.items():
            text = text.replace(actual, documented)
        return text

    def shell(self, script: str) -> subprocess.CompletedProcess[str]:
        try:  # the JSON bodies a command sends (curl -d '{...}'): the plaintext guard looks for them
            words = shlex.split(script, comments=True)
        except ValueError:
            words = []
        for word in words:
            if word.startswith("{"):
                GUARD.register_body(word, origin="docs example")
        return subprocess.run(
            ["bash", "-c", script],  # noqa: S607
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )


def _where(example: Example) -> str:
    return f"{Path(example.path).relative_to(ROOT)}:{example.line}"


def run_console(example: Example) -> str | None:
    context: Context = example.namespace["docs"]
    if str(example.parsed).startswith(ILLUSTRATIVE):
        return None
    for step in transcript(str(example.parsed)):
        result = context.shell("set -o pipefail\n" + context.to_stack(step.command))
        actual = normalise(context.to_docs(result.stdout))
        expected = normalise("\n".join(step.expected))
        if not match_output(expected, actual, context.bindings):
            documented = bind(expected, context.bindings).split("\n")
            diff = "\n".join(difflib.unified_diff(documented, actual.split("\n"), "documented", "actual", lineterm=""))
            return f"{_where(example)}: `$ {step.command}` printed something else:\n{diff}"
    return None


def run_sh(example: Example) -> str | None:
    context: Context = example.namespace["docs"]
    if str(example.parsed).startswith(ILLUSTRATIVE):
        return None
    script = "set -euo pipefail\n" + _MAKE_DRY_RUN + context.to_stack(str(example.parsed))
    result = context.shell(script)
    if result.returncode != 0:
        return f"{_where(example)}: the sh block exited {result.returncode}:\n{context.to_docs(result.stdout)}"
    return None


def run_python(example: Example) -> None:
    context: Context = example.namespace["docs"]
    source = str(example.parsed)
    if source.startswith(ILLUSTRATIVE):
        return
    code = compile("\n" * example.line + context.to_stack(source), example.path, "exec")
    exec(code, example.namespace)  # noqa: S102 - the documentation's own example, on the local stack


SYBIL = Sybil(
    parsers=[
        CodeBlockParser("console", run_console),
        CodeBlockParser("sh", run_sh),
        CodeBlockParser("python", run_python),
    ]
)


@pytest.fixture(scope="module")
def docs_tenants() -> set[str]:
    return tenants(doc_files())


def _belongs(value: object, tenant_ids: set[str]) -> bool:
    """Whether a key attribute names one of these tenants (as itself or a `#`-separated part)."""
    return isinstance(value, str) and not tenant_ids.isdisjoint(value.split("#"))


def _empty_tenants(stack: DevStack, tenant_ids: set[str]) -> None:
    """Every item of these tenants, in every table, gone (keys and tables stay): as `make dev` starts.

    An idempotency reference goes with the Powertools records it names (their ids name no
    tenant). The no-plaintext guard sees every item before it goes.
    """
    dynamodb = stack.client("dynamodb")
    for table in dynamodb.list_tables()["TableNames"]:
        keys = [k["AttributeName"] for k in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]]
        items = scan_all(dynamodb, table)
        GUARD.observe_items(f"docs examples' table {table}", items)
        for item in items:
            if not any(_belongs(next(iter(item[k].values())), tenant_ids) for k in keys):
                continue
            named = item.get(REF_TARGETS, {}).get("SS", []) + ([item[REF_TARGET]["S"]] if REF_TARGET in item else [])
            for record in named:
                dynamodb.delete_item(TableName=table, Key={keys[0]: {"S": record}})
            dynamodb.delete_item(TableName=table, Key={k: item[k] for k in keys})


def _documents() -> list[Any]:
    """The files with at least one block to run (a file of figures and illustrations has none)."""
    return [
        pytest.param(path, id=str(path.relative_to(ROOT)))
        for path in doc_files()
        if any(not str(example.parsed).startswith(ILLUSTRATIVE) for example in SYBIL.parse(path))
    ]


@pytest.mark.parametrize("path", _documents())
def test_every_runnable_block_of_the_file_runs_as_documented(
    path: Path, local_stack: Any, docs_tenants: set[str]
) -> None:
    stack: DevStack = local_stack.stack
    document = SYBIL.parse(path)
    _empty_tenants(stack, docs_tenants)
    document.namespace["docs"] = Context(stack)
    for example in document:
        example.evaluate()
