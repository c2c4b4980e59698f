"""Committed, generated files (IAM policies, OpenAPI documents): write them, or check them.

``--check`` is how CI catches a generator changed without its output being regenerated.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path


def write_or_check(tool: str, out_dir: Path, files: Mapping[str, str], *, check: bool) -> int:
    """Write ``files`` (name -> text) into ``out_dir``; with ``check``, only compare (exit 1 if stale)."""
    if check:
        stale = [name for name, text in files.items() if _read(out_dir / name) != text]
        for name in stale:
            print(
                f"{tool}: {out_dir / name} is missing or out of date; run `python -m {tool}` and commit the result",
                file=sys.stderr,
            )
        return 1 if stale else 0
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out_dir / name).write_text(text, encoding="utf-8")
        print(f"wrote {out_dir / name}")
    return 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None
