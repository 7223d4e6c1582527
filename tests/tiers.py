"""The test tiers (a pytest plugin, loaded by ``-p tiers`` in pyproject.toml).

- fast (``make test``, a plain ``pytest``): ``-m "not slow"``. Every unit and structure test that is not marked
  ``slow``, the stamp check of every stored notebook (scripts/notebooks.py), and the light notebooks executed under
  nbval: the English chapters 1-5 and solutions 1-5.
- all (``make test-all``): ``-m ""``. Everything, each notebook executed once.

A notebook folder whose notebooks run starts from an empty ``outputs/``, so no result depends on an earlier run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: executed in the fast tier: light (under 3 min each on 2 cores), and together they feed each other in order
FAST_NOTEBOOKS = {f"notebooks/{sub}{name}" for sub in ("", "solutions/") for name in (
    "01_setup.ipynb", "02_data_prep.ipynb", "03_cot_generation.ipynb", "04_alpaca_export.ipynb", "05_hf_upload.ipynb")}


def _notebook(item: pytest.Item) -> str | None:
    path = Path(item.path)
    if path.suffix != ".ipynb":
        return None
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path.as_posix()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Notebooks outside the fast set are ``slow``: the stamp check guards their stored outputs in the fast tier."""
    for item in items:
        name = _notebook(item)
        if name is not None and name not in FAST_NOTEBOOKS:
            item.add_marker(pytest.mark.slow)


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    for folder in sorted({Path(item.path).parent for item in session.items if _notebook(item)}):
        shutil.rmtree(folder / "outputs", ignore_errors=True)
