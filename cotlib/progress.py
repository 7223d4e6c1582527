"""Progress bars that a stored notebook shows as they ended.

tqdm's notebook widget is saved as its first frame (``0%|``) when a notebook is executed and stored; here, in a
Jupyter kernel, tqdm's text bar is drawn into one output that is updated in place, so the stored notebook (and its
HTML export) shows the final state. Anywhere else it is plain tqdm on stderr.
"""

from __future__ import annotations

import io
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
    """A progress bar (``tqdm`` keyword arguments): in place in a notebook, on stderr elsewhere."""
    return NotebookBar(**kwargs) if in_notebook() else tqdm(**kwargs)
