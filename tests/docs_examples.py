"""The documentation's code blocks, read with Sybil: which kinds there are, and how each is run.

Every fenced block of the README, SECURITY.md and the pages under docs/ has one of four
info strings (``tests/unit/test_docs.py`` holds every file to it):

- ``console``: a session. ``$ `` starts a command (a trailing backslash or an open quote
  continues it on the next line); the lines
  after it are its output, compared with what the command prints (stdout and stderr). In
  the expected output a line ``...`` stands for any lines (within a line, any text), and ids (32 hex digits, UUIDs)
  and timestamps stand for any value of their kind: the first time one is seen it is bound
  to the value the command printed, and later commands and outputs use that value. HTTP
  ``Server`` and ``Date`` headers are not compared.
- ``sh``: a script, run by bash with ``set -euo pipefail``; it must exit 0. ``make`` runs as
  ``make -n`` (the target exists and its recipe expands: the benchmark, the whole test suite
  or the local stack are not started from inside the tests).
- ``python``: run in one namespace per file.
- ``text``: a figure (a byte layout, a file tree, a diagram): nothing to copy or run.

A ``console``, ``sh`` or ``python`` block whose first line starts with ``# Illustrative`` is
shown, never run: what follows says why (an AWS account, a placeholder to fill in). That
comment is how a reader tells; every other block runs in the e2e tier
(``tests/e2e/test_docs_examples.py``) from a clean environment (no AWS or PII_VAULT_
variables) against the e2e tier's local stack, with the documented default ports (``make
dev``'s) mapped to the stack's, and the documentation's tenants (``tenants()``) emptied
before each file, as `make dev` starts.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sybil import Document
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer

from tools.docs import ROOT, files

RUN = ("console", "sh", "python")
FIGURE = "text"
ILLUSTRATIVE = "# Illustrative"
_INFO = re.compile(r"(?P<info>[^\n]*)$\n", re.MULTILINE)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    info: str
    source: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def illustrative(self) -> bool:
        return self.info in RUN and self.source.startswith(ILLUSTRATIVE)


def doc_files() -> list[Path]:
    return files()


def blocks(path: Path) -> Iterator[Block]:
    """Every fenced code block of one Markdown file, as Sybil's fenced-block lexer finds it."""
    text = path.read_text(encoding="utf-8")
    document = Document(text, str(path))
    for region in RawFencedCodeBlockLexer(info_pattern=_INFO)(document):
        line = text.count("\n", 0, region.start) + 1
        yield Block(path, line, region.lexemes["info"].strip(), str(region.lexemes["source"]))


# The tenants the runnable blocks name: in a path (``customers/acme``), an option
# (``--customer acme``) or as a call's first argument (``vault.get_person("acme", ...)``).
# An over-approximation is harmless (the other e2e tests' tenants are their own, per test).
_TENANT_MENTIONS = re.compile(
    r"customers/(?P<path>[A-Za-z0-9_-]{1,64})|--customer(?:-id)?[ =](?P<option>[A-Za-z0-9_-]{1,64})"
    r"|\w\(\s*[\"'](?P<argument>[A-Za-z0-9_-]{1,64})[\"']"
)


def tenants(paths: list[Path]) -> set[str]:
    """Every tenant id a runnable block of these files names."""
    found: set[str] = set()
    for path in paths:
        for block in blocks(path):
            if block.info in RUN and not block.illustrative:
                found.update(t for m in _TENANT_MENTIONS.finditer(block.source) for t in m.groups() if t)
    return found


# -- console transcripts ---------------------------------------------------------------

PROMPT = "$ "
ANY_LINES = "..."
_TOKEN_KINDS = (
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",  # UUID (key ids, job ids)
    r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])",  # person ids
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z",  # timestamps
)
TOKEN = re.compile("|".join(f"(?:{kind})" for kind in _TOKEN_KINDS))
_IGNORED_HEADERS = re.compile(r"^(Server|Date): ")


@dataclass
class Step:
    command: str
    expected: list[str]


def transcript(source: str) -> list[Step]:
    """The commands of a console block and the output each is expected to print."""
    steps: list[Step] = []
    for line in source.rstrip("\n").split("\n"):
        if line.startswith(PROMPT):
            steps.append(Step(line[len(PROMPT) :], []))
        elif steps and not steps[-1].expected and _continues(steps[-1].command):
            steps[-1].command += "\n" + line
        elif steps:
            steps[-1].expected.append(line)
        else:
            raise ValueError("a console block starts with a `$ ` command")
    return steps


def _continues(command: str) -> bool:
    """Whether a command goes on on the next line: a trailing backslash, or an open quote."""
    if command.endswith("\\"):
        return True
    try:
        shlex.split(command, comments=True)
    except ValueError:
        return True
    return False


def normalise(output: str) -> str:
    lines = [line.rstrip() for line in output.replace("\r\n", "\n").split("\n")]
    return "\n".join(line for line in lines if not _IGNORED_HEADERS.match(line)).strip("\n")


def expected_pattern(expected: str, bindings: dict[str, str]) -> tuple[re.Pattern[str], dict[str, str]]:
    """A regex for the expected output: bound tokens as their values, new ones as groups."""
    out: list[str] = []
    groups: dict[str, str] = {}
    for line in expected.split("\n") if expected else []:
        if line.strip() == ANY_LINES:
            out.append(r"(?:[^\n]*\n)*?")
            continue
        position, piece = 0, ""
        for match in TOKEN.finditer(line):
            token = match.group()
            piece += re.escape(line[position : match.start()])
            if token in bindings:
                piece += re.escape(bindings[token])
            elif token in groups:
                piece += f"(?P={groups[token]})"
            else:
                groups[token] = f"t{len(groups)}"
                kind = next(k for k in _TOKEN_KINDS if re.fullmatch(k, token))
                piece += f"(?P<{groups[token]}>{kind})"
            position = match.end()
        out.append(piece + re.escape(line[position:]) + r"\n")
    return re.compile("".join(out).replace(re.escape(ANY_LINES), "[^\\n]*?")), groups


def match_output(expected: str, actual: str, bindings: dict[str, str]) -> bool:
    """Whether ``actual`` is ``expected`` (both normalised); binds the tokens it sees on success."""
    pattern, groups = expected_pattern(expected, bindings)
    found = pattern.fullmatch(actual + "\n" if actual else "")
    if found is None:
        return False
    bindings.update({token: found.group(name) for token, name in groups.items()})
    return True


def bind(text: str, bindings: dict[str, str]) -> str:
    """``text`` with every bound token replaced by the value it was bound to."""
    return TOKEN.sub(lambda m: bindings.get(m.group(), m.group()), text)
