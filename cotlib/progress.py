"""Progress bars: a live widget for a learner, the final state in a stored notebook.

In a Jupyter kernel that a person drives (JupyterLab, Colab, VS Code) the bar is tqdm's ipywidgets bar (the text bar
below where ipywidgets is not installed: it is the ``dev`` extra's, and Colab brings its own). A notebook
executed to be stored (``make execute``, nbval) would save that widget as its first frame (``0%|``), so there, with
``COTLIB_PROGRESS=text`` in the environment, tqdm's text bar is drawn into one output updated in place, and the
stored notebook (and its HTML export) shows where it ended. Outside a kernel it is plain tqdm on stderr.
"""

from __future__ import annotations

import importlib.util
import io
import os
import sys
from typing import Any

from tqdm.std import tqdm


def in_notebook() -> bool:
    """Running in a Jupyter kernel? (A kernel has IPython loaded: elsewhere, importing it would cost half a second.)"""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class NotebookBar(tqdm):
    """tqdm's text bar in one notebook output, updated in place."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from IPython.display import Pretty, display

        self.handle = None if kwargs.get("disable") else display(Pretty(""), display_id=True)
        super().__init__(*args, file=io.StringIO(), **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> None:
        from IPython.display import Pretty

        if self.handle is not None:
            self.handle.update(Pretty(msg if msg is not None else str(self)))


def bar(**kwargs: Any) -> tqdm:
    """A progress bar (``tqdm`` keyword arguments): a widget in a live notebook, text in one in-place output when the
    notebook is executed to be stored (``COTLIB_PROGRESS=text``), on stderr elsewhere."""
    if not in_notebook():
        return tqdm(**kwargs)
    if os.environ.get("COTLIB_PROGRESS") == "text" or importlib.util.find_spec("ipywidgets") is None:
        return NotebookBar(**kwargs)
    from tqdm.notebook import tqdm as widget_bar

    return widget_bar(**kwargs)
