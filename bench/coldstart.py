"""Cold start per stage: import time of app.py (with and without bytecode) and the deployment zip."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from bench.stages import REGION, ROOT, STAGES, stage_environment

_IMPORTTIME = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s?(\s*)(\S+)")


def app_import_us(stderr: str) -> int:
    """Cumulative microseconds of the top-level ``app`` import in ``-X importtime`` output."""
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match and match.group(4) == "app" and not match.group(3):
            return int(match.group(2))
    raise ValueError("no top-level 'app' line in -X importtime output")


# What the Lambda Python runtime brings with bytecode: the standard library and boto3/botocore.
# Everything else (app.py, chalicelib, chalice, cryptography, ...) comes from the zip.
_RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")

_RUNTIME_MODULES = """
import json, sys, sysconfig
import app
stdlib = sysconfig.get_paths()["stdlib"]
names = [n for n, m in list(sys.modules.items())
         if (getattr(m, "__file__", None) or "").startswith(stdlib) and "site-packages" not in m.__file__
         or n.split(".")[0] in RUNTIME]
print(json.dumps(names))
"""


def _stage_env(stage: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PII_VAULT_", "AWS_ENDPOINT_URL"))}
    env.update(stage_environment(stage))
    return env


def import_time_ms(stage: str, *, bytecode: bool, runs: int = 7) -> float:
    """Median ``-X importtime`` of ``import app`` for a stage.

    ``bytecode=False`` mimics a Lambda cold start from a zip without ``.pyc`` files: the
    runtime's own modules (stdlib, boto3) load from cached bytecode, everything shipped in
    the zip compiles from source (the deployment directory is read-only, so every cold start).
    """
    env = _stage_env(stage)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    samples = []
    with tempfile.TemporaryDirectory() as prefix:
        env["PYTHONPYCACHEPREFIX"] = prefix  # bytecode goes here, never into the project tree
        modules = ["app"]
        if not bytecode:
            listing = subprocess.run(
                [sys.executable, "-c", f"RUNTIME = {_RUNTIME_PACKAGES!r}\n" + _RUNTIME_MODULES],
                cwd=ROOT,
                env={**env, "PYTHONDONTWRITEBYTECODE": "1"},
                capture_output=True,
                text=True,
                timeout=120,
            )
            modules = json.loads(listing.stdout)
        warm = (
            f"import importlib\nfor name in {modules!r}:\n    try:\n        importlib.import_module(name)\n"
            "    except Exception:\n        pass\n"
        )
        subprocess.run(
            [sys.executable, "-c", warm],
            cwd=ROOT if bytecode else tempfile.gettempdir(),
            env=env,
            capture_output=True,
            timeout=120,
        )
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        for _ in range(runs):
            result = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", "import app"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            if result.returncode != 0:
                raise RuntimeError(f"import app failed for {stage}: {result.stderr[-500:]}")
            samples.append(app_import_us(result.stderr) / 1000)
    return statistics.median(samples)


def package_zip(stage: str) -> dict[str, Any]:
    """``chalice package`` on a clean copy of the project (no __pycache__); zip size and contents."""
    chalice = Path(sys.executable).with_name("chalice")
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        project.mkdir()
        shutil.copy2(ROOT / "app.py", project)
        shutil.copy2(ROOT / "requirements.txt", project)
        shutil.copytree(ROOT / "chalicelib", project / "chalicelib", ignore=ignore)
        shutil.copytree(ROOT / ".chalice", project / ".chalice", ignore=ignore)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PII_VAULT_", "AWS_ENDPOINT_URL"))}
        env.update(AWS_DEFAULT_REGION=REGION, PYTHONDONTWRITEBYTECODE="1")
        out = Path(tmp) / "out"
        result = subprocess.run(
            [str(chalice), "package", "--stage", stage, str(out)],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            raise RuntimeError(f"chalice package --stage {stage} failed: {(result.stderr or result.stdout)[-300:]}")
        archive = out / "deployment.zip"
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            unpacked = sum(info.file_size for info in zf.infolist())
        return {
            "zip_bytes": archive.stat().st_size,
            "unzipped_bytes": unpacked,
            "files": len(names),
            "pyc_files": sum(n.endswith(".pyc") for n in names),
        }


def cold_start() -> list[dict[str, Any]]:
    rows = []
    for stage in STAGES:
        row: dict[str, Any] = {
            "stage": stage,
            "import_ms_cached_bytecode": import_time_ms(stage, bytecode=True),
            "import_ms_no_bytecode": import_time_ms(stage, bytecode=False),
        }
        try:
            row.update(package_zip(stage))
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            row["package_error"] = str(exc)
        rows.append(row)
    return rows
