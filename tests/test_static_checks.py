"""Lint and type checks run with the tests, so CI and a local run cannot drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_ruff_finds_no_defects() -> None:
    result = run("ruff", "check", "liveblog", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_laid_out_by_ruff_format() -> None:
    """House style: `ruff format` owns layout (import order and line length are lint rules above)."""
    result = run("ruff", "format", "--check", "liveblog", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_passes_on_the_package() -> None:
    result = run("mypy", "liveblog")
    assert result.returncode == 0, result.stdout + result.stderr
