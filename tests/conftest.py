"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No COTLIB_* backend variables from the machine leak into a test."""
    for name in ("COTLIB_BASE_URL", "COTLIB_MODEL", "COTLIB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch
