"""Shared fixtures."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Notebooks run here (nbval, the standalone runs) draw progress bars as text, the way they are stored (cotlib.progress).
os.environ["COTLIB_PROGRESS"] = "text"


@contextmanager
def restored_environ():
    """os.environ as it was on entry, whatever the body (or a library it imports) set or removed."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def no_env_leaks():
    """Undo what a test, or a library it imports, sets in os.environ (Unsloth turns on every HF offline flag): the
    notebooks' kernels, run later in this process, must start from the environment a learner's kernel has."""
    with restored_environ():
        yield


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No COTLIB_* backend variables leak into a test (nothing leaks out of any test: ``no_env_leaks``)."""
    for name in ("COTLIB_BASE_URL", "COTLIB_MODEL", "COTLIB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch
