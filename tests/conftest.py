"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Notebooks run here (nbval, the standalone runs) draw progress bars as text, the way they are stored (cotlib.progress).
os.environ["COTLIB_PROGRESS"] = "text"


@pytest.fixture(autouse=True)
def no_env_leaks():
    """Undo what a test, or a library it imports, sets in os.environ (Unsloth turns on every HF offline flag): the
    notebooks' kernels, run later in this process, must start from the environment a learner's kernel has."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No COTLIB_* backend variables leak into a test (nothing leaks out of any test: ``no_env_leaks``)."""
    for name in ("COTLIB_BASE_URL", "COTLIB_MODEL", "COTLIB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch
