"""The documentation against the code: block kinds, generated tables, and every name it mentions.

- every fenced block is run by the e2e tier, marked ``# Illustrative``, or a ``text`` figure
  (``tests/docs_examples.py``);
- the generated tables (cog blocks calling ``tools/docs.py``) are fresh;
- every file path, module, dotted name, ``make`` target, ``PII_VAULT_*`` variable and test
  name a page mentions in inline code exists;
- the README stays a five-minute read.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from tests.docs_examples import FIGURE, ILLUSTRATIVE, RUN, Block, blocks, doc_files, expected_pattern, match_output
from tests.docs_examples import transcript as split_transcript
from tools.docs import ROOT, run_cog

README_MAX_LINES = 250
_CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_FENCE = re.compile(r"^\s*(```|~~~)[^\n]*\n.*?^\s*\1\s*$", re.MULTILINE | re.DOTALL)
_TOP_DIRS = (
    "chalicelib",
    "infra",
    "tools",
    "tests",
    "docs",
    "bench",
    "clients",
    "deploy",
    "policies",
    ".chalice",
    ".ci",
)
_ROOT_FILES = re.compile(
    r"^(app\.py|Makefile|mkdocs\.yml|pyproject\.toml|pytest\.ini|requirements[-\w]*\.txt|[A-Z]+\.md)$"
)
_GENERATED_DIRS = ("out/", ".dev/", ".deploy/", ".chalice/deployed", "site/", ".venv")  # made by commands, untracked
_PATH = re.compile(r"^(?:\.\./)*([.\w][\w./{},*-]*)")
_DOTTED = re.compile(r"^(chalicelib|infra|tools|bench|tests)(\.\w+)+$")
_PYTHON_M = re.compile(r"python -m ([\w.]+)")
_MAKE = re.compile(r"(?:^|\s)make ([a-z][\w.-]*)")
_VARIABLE = re.compile(r"\bPII_VAULT_[A-Z][A-Z0-9_]*[A-Z0-9]\b")
_TEST_NAME = re.compile(r"(?<![/\w])(test_[a-z0-9_]+)(?![\w/.])")
# Dotted words in the docs that are not Python names, and what they are.
_NOT_PYTHON = {"chalicelib.audit": "the audit logger's name (chalicelib/support/audit.py _LOGGER_NAME)"}
_LOOKS_LIKE_A_COMMAND = re.compile(r"^\s*(\$ |make |python|\.venv/|curl |aws |chalice |pip )", re.MULTILINE)


def _all_blocks() -> Iterator[Block]:
    for path in doc_files():
        yield from blocks(path)


def _prose(path: Path) -> str:
    return _FENCE.sub("", path.read_text(encoding="utf-8"))


def _mentions() -> Iterator[tuple[Path, str]]:
    """(file, text) of every inline code span of every page, and every runnable block's source."""
    for path in doc_files():
        for span in _CODE_SPAN.findall(_prose(path)):
            yield path, span
        for block in blocks(path):
            if block.info in RUN:
                yield path, block.source


def test_every_block_runs_is_marked_illustrative_or_is_a_figure() -> None:
    wrong = []
    for block in _all_blocks():
        if block.info == FIGURE:
            if _LOOKS_LIKE_A_COMMAND.search(block.source):
                wrong.append(f"{block.where}: a `text` block holds a command: make it console/sh, or illustrative")
        elif block.info not in RUN:
            wrong.append(f"{block.where}: info string {block.info!r}; use one of {(*RUN, FIGURE)}")
    assert not wrong, "\n".join(wrong)


def test_no_page_has_an_indented_code_block() -> None:
    """Indented blocks have no info string, so they could be neither run nor marked: fence them."""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark")
    indented = [
        f"{path.relative_to(ROOT)}:{token.map[0] + 1 if token.map else '?'}"
        for path in doc_files()
        for token in parser.parse(path.read_text(encoding="utf-8"))
        if token.type == "code_block"
    ]
    assert not indented, indented


def test_the_rule_is_visible_in_the_block_itself() -> None:
    marked = [b for b in _all_blocks() if b.illustrative]
    assert all(b.source.split("\n", 1)[0].startswith(ILLUSTRATIVE + " ") for b in marked)
    assert all(len(b.source.split("\n", 1)[0]) > len(ILLUSTRATIVE) + 10 for b in marked), "say why it is not run"


def test_the_generated_tables_are_fresh() -> None:
    assert run_cog(doc_files(), check=True) == 0, "run `python -m tools.docs` and commit the result"


def test_the_readme_is_a_five_minute_read() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines < README_MAX_LINES


def _exists(candidate: str) -> bool:
    expanded = [candidate]
    while any("{" in c for c in expanded):
        c = next(c for c in expanded if "{" in c)
        head, rest = c.split("{", 1)
        options, tail = rest.split("}", 1)
        expanded.remove(c)
        expanded += [head + option + tail for option in options.split(",")]
    return all(any(ROOT.glob(c)) if "*" in c else (ROOT / c).exists() for c in expanded)


def _path_of(span: str) -> str | None:
    match = _PATH.match(span.strip())
    if match is None or "<" in span or any(span.startswith(g) for g in _GENERATED_DIRS):
        return None
    path = match.group(1).rstrip(".,:")
    first = path.split("/", 1)[0]
    if (first in _TOP_DIRS and "/" in path) or _ROOT_FILES.match(path):
        return path
    return None


def test_every_file_a_page_names_exists() -> None:
    missing = {
        f"{path.relative_to(ROOT)}: `{name}`"
        for path, span in _mentions()
        for word in span.split()
        if (name := _path_of(word)) is not None and not _exists(name)
    }
    assert not missing, "\n".join(sorted(missing))


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            found = importlib.util.find_spec(module_name)
        except ModuleNotFoundError:
            found = None
        if found is None:
            continue
        target: object = importlib.import_module(module_name)
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def test_every_relative_link_of_the_files_outside_the_site_resolves() -> None:
    """The README and SECURITY.md are read on their own (mkdocs checks the site's links)."""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark")
    broken = []
    for path in (ROOT / "README.md", ROOT / "SECURITY.md"):
        for token in parser.parse(path.read_text(encoding="utf-8")):
            for child in token.children or ():
                href = str(child.attrs.get("href", "")) if child.type == "link_open" else ""
                local = href and not href.startswith(("http://", "https://", "#", "mailto:"))
                if local and not (path.parent / href.split("#", 1)[0]).exists():
                    broken.append(f"{path.name}: {href}")
    assert not broken, broken


def test_every_loop_over_stages_names_the_registry_s_stages() -> None:
    from chalicelib.stages import STAGE_NAMES

    loops = [
        (block.where, names.split())
        for block in _all_blocks()
        for names in re.findall(r"for stage in ([a-z ]+); do", block.source)
    ]
    wrong = [f"{where}: {names}" for where, names in loops if names != list(STAGE_NAMES)]
    assert loops and not wrong, wrong


def test_every_module_and_dotted_name_a_page_names_resolves() -> None:
    names = set()
    for _, span in _mentions():
        names |= set(_PYTHON_M.findall(span))
        stripped = span.strip().rstrip("()")
        if _DOTTED.match(stripped) and stripped not in _NOT_PYTHON:
            names.add(stripped)
    unresolved = sorted(
        n for n in names if not n.startswith(("pii_vault_client", "mkdocs", "cogapp")) and not _resolves(n)
    )
    assert not unresolved, unresolved


@cache
def _make_targets() -> frozenset[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return frozenset(re.findall(r"^([a-z][\w.-]*):", text, re.MULTILINE))


def test_every_make_target_a_page_names_exists() -> None:
    unknown = {t for _, span in _mentions() for t in _MAKE.findall(span) if t not in _make_targets()}
    assert not unknown, sorted(unknown)


@cache
def _code_text() -> str:
    roots = ("chalicelib", "infra", "tools", "tests", "bench", "clients", "app.py", "Makefile", ".ci")
    parts = []
    for root in roots:
        path = ROOT / root
        for file in [path] if path.is_file() else path.rglob("*"):
            if file.is_file() and file.suffix in (".py", ".sh", "") and "__pycache__" not in file.parts:
                parts.append(file.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


def test_the_dotted_words_that_are_not_python_names_are_what_they_say() -> None:
    from chalicelib.support import audit

    assert audit._LOGGER_NAME == "chalicelib.audit"


def test_every_variable_and_test_a_page_names_is_in_the_code() -> None:
    from chalicelib.stages import API_STAGE_NAMES
    from tools.ports import port_variable

    text = _code_text()
    # The local stack's port variables are built from the registry (tools/ports.py), not spelled.
    ports = {port_variable(name) for name in ("moto", *API_STAGE_NAMES)}
    unknown = set()
    for path in doc_files():
        prose = path.read_text(encoding="utf-8")
        unknown |= {f"{path.name}: {v}" for v in _VARIABLE.findall(prose) if v not in text and v not in ports}
        unknown |= {f"{path.name}: {t}" for t in _TEST_NAME.findall(prose) if f"def {t}" not in text}
    assert not unknown, sorted(unknown)


# -- the console transcript rules the e2e tier runs by -------------------------------


def test_a_transcript_splits_commands_continuations_and_output() -> None:
    steps = split_transcript("$ curl -s x \\\n    -d '{\n  }'\n{\"a\":1}\n$ true\n    indented output\n")
    assert [(s.command, s.expected) for s in steps] == [
        ("curl -s x \\\n    -d '{\n  }'", ['{"a":1}']),
        ("true", ["    indented output"]),
    ]
    with pytest.raises(ValueError):
        split_transcript("output before any command\n")


def test_ids_and_times_bind_once_and_then_must_repeat() -> None:
    doc_id, doc_time = "736cf2c83c95c96f327d52f1d3930435", "2026-11-24T01:54:57.935Z"
    real_id, real_time = "0123456789abcdef0123456789abcdef", "2026-12-06T21:52:18.934Z"
    bindings: dict[str, str] = {}
    assert match_output(f'{{"id":"{doc_id}","t":"{doc_time}"}}', f'{{"id":"{real_id}","t":"{real_time}"}}', bindings)
    assert bindings == {doc_id: real_id, doc_time: real_time}
    assert not match_output(f'{{"id":"{doc_id}"}}', '{"id":"ffffffffffffffffffffffffffffffff"}', bindings)
    assert not match_output(f"{doc_time} {doc_time}", f"{real_time} 2026-12-06T21:52:19.000Z", {})
    assert not match_output('{"name":"G."}', '{"name":"X."}', {})


def test_an_ellipsis_line_stands_for_any_lines_and_only_lines() -> None:
    assert match_output("first\n...\nlast", "first\nx\ny\nlast", {})
    assert match_output("first\n...\nlast", "first\nlast", {})
    assert not match_output("first\n...\nlast", "first\nx\nlast but not quite", {})
    assert match_output('"date": "..."', '"date": "2027-01-05 22:05:20+00:00"', {})
    assert not match_output('"date": "..."', '"date": "x"\nmore', {})
    pattern, groups = expected_pattern("", {})
    assert pattern.pattern == "" and not groups
