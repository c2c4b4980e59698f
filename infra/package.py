"""Writing the templates, and packaging each stage: ``chalice package`` with the stage's merge
template, then bytecode compiled for the function's runtime added to the zip (Lambda's
/var/task is read-only, so without it every cold start compiles the code from source)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chalicelib.stages import STAGES
from infra.base import base_template
from infra.cfn import TemplateError, render
from infra.merge import merge_template

ROOT = Path(__file__).resolve().parent.parent
STAGE_NAMES = tuple(stage.name for stage in STAGES)


def write_templates(out: Path) -> list[Path]:
    """``out/base.json`` and ``out/merge-<stage>.json`` for every stage."""
    out.mkdir(parents=True, exist_ok=True)
    documents = {"base.json": base_template().render()}
    documents.update({f"merge-{stage.name}.json": merge_template(stage.name).render() for stage in STAGES})
    written = []
    for name, document in documents.items():
        (out / name).write_text(render(document), encoding="utf-8")
        written.append(out / name)
    return written


def chalice_package(stage_name: str, out: Path, *, chalice: Path | None = None) -> Path:
    """``chalice package --stage <stage> --merge-template out/merge-<stage>.json out/<stage>``."""
    chalice = chalice or Path(sys.executable).with_name("chalice")
    target = out / stage_name
    shutil.rmtree(target, ignore_errors=True)
    for cache in (ROOT / "chalicelib").rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)  # chalice zips every file under chalicelib/
    env = {k: v for k, v in os.environ.items() if k not in ("PII_VAULT_ROLE", "AWS_ENDPOINT_URL")}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # chalice wants a region even offline
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    merge = (out / f"merge-{stage_name}.json").resolve()
    command = [str(chalice), "package", "--stage", stage_name, "--pkg-format", "cloudformation"]
    subprocess.run([*command, "--merge-template", str(merge), str(target.resolve())], cwd=ROOT, env=env, check=True)
    return target


def runtime_of(template: Mapping[str, Any]) -> str:
    """The runtime of the stage's functions (one runtime per package: they share the zip)."""
    runtimes = {
        str(r["Properties"]["Runtime"])
        for r in template["Resources"].values()
        if r.get("Type") == "AWS::Serverless::Function"
    }
    if len(runtimes) != 1:
        raise TemplateError(f"expected one function runtime in the package, found {sorted(runtimes)}")
    return runtimes.pop()


def add_bytecode(zip_path: Path, runtime: str, *, python: str = sys.executable) -> int:
    """Add ``__pycache__/*.pyc`` for every ``.py`` of the zip, compiled by the runtime's
    Python version. ``unchecked-hash`` pycs are used whatever the files' timestamps are after
    unzipping. Returns the number of .pyc files added."""
    version = subprocess.run(
        [python, "-c", "import sys; print(f'python{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if version != runtime:
        raise TemplateError(f"the function runs {runtime} but {python} is {version}: bytecode would not be used")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(root)
            modes = {info.filename: info.external_attr for info in archive.infolist()}
        compile_all = [python, "-m", "compileall", "-q", "-j", "1", "--invalidation-mode", "unchecked-hash"]
        subprocess.run([*compile_all, "-d", "/var/task", str(root)], check=True, capture_output=True)
        files = sorted(p for p in root.rglob("*") if p.is_file())
        tmp_zip = zip_path.with_suffix(".tmp")
        with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                name = path.relative_to(root).as_posix()
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = modes.get(name, 0o644 << 16)
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
        tmp_zip.replace(zip_path)
    return sum(1 for p in files if p.suffix == ".pyc")


def package(
    out: Path,
    *,
    stages: Sequence[str] = STAGE_NAMES,
    bytecode: bool = True,
    log: Callable[[str], None] = print,
) -> None:
    write_templates(out)
    for stage_name in stages:
        log(f"chalice package --stage {stage_name} --merge-template {out}/merge-{stage_name}.json {out}/{stage_name}")
        target = chalice_package(stage_name, out)
        if bytecode:
            template = json.loads((target / "sam.json").read_text(encoding="utf-8"))
            count = add_bytecode(target / "deployment.zip", runtime_of(template))
            log(f"  added {count} .pyc files compiled for {runtime_of(template)}")


def import_ms(zip_path: Path, stage_name: str, *, bytecode: bool, runs: int = 9, python: str = sys.executable) -> float:
    """Median import time of ``app`` (``-X importtime``, cumulative, ms) from the unzipped
    package, with its .pyc files or without them, as on a cold start: nothing is written
    (PYTHONDONTWRITEBYTECODE, like Lambda's read-only /var/task), the package first on sys.path,
    boto3 from the interpreter's site-packages (as Lambda's runtime provides it)."""
    timings = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with zipfile.ZipFile(zip_path) as archive:
            for name in archive.namelist():
                if bytecode or not name.endswith(".pyc"):
                    archive.extract(name, root)
        env = {
            "PII_VAULT_ROLE": stage_name,
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PATH": os.environ.get("PATH", ""),
        }
        code = f"import sys; sys.path.insert(0, {str(root)!r}); import app"
        for _ in range(runs):
            result = subprocess.run(
                [python, "-X", "importtime", "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True
            )
            line = next(x for x in result.stderr.splitlines() if x.rstrip().endswith("| app"))
            timings.append(int(line.split("|")[1]) / 1000)
    timings.sort()
    return round(timings[len(timings) // 2], 1)
