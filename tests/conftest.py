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


def scrub_backend_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Remove the COTLIB_* backend variables, recording their state so that undo() also removes what code sets."""
    for name in ("COTLIB_BASE_URL", "COTLIB_MODEL", "COTLIB_API_KEY"):
        monkeypatch.setenv(name, "")  # records the original state, so whatever the test sets is undone
        monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No COTLIB_* backend variables leak into a test, nor out of it (the notebooks' kernels inherit this env)."""
    return scrub_backend_env(monkeypatch)
