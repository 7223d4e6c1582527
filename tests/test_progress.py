"""Progress bars: a widget for a learner, the final state in a stored notebook."""

from tqdm.std import tqdm

from cotlib import progress


def test_in_a_notebook_executed_to_be_stored_the_bar_is_one_output_updated_to_its_final_state(monkeypatch):
    import IPython.display

    monkeypatch.setenv("COTLIB_PROGRESS", "text")
    shown = []

    class Handle:
        def update(self, obj):
            shown.append(obj.data)

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda obj, display_id=False: Handle())
    bar = progress.bar(total=3, desc="questions", unit="q", mininterval=0)
    for _ in range(3):
        bar.update(1)
    bar.close()
    assert isinstance(bar, progress.NotebookBar) and shown
    assert shown[-1].startswith("questions: 100%") and "3/3" in shown[-1]


def test_elsewhere_it_is_plain_tqdm_and_disabled_bars_show_nothing(monkeypatch):
    assert not progress.in_notebook()
    assert type(progress.bar(total=1, disable=True)) is tqdm
    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setenv("COTLIB_PROGRESS", "text")
    assert progress.bar(total=1, disable=True).handle is None


def test_in_a_live_notebook_it_is_the_ipywidgets_bar(monkeypatch):
    from tqdm.notebook import tqdm as widget_bar

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.delenv("COTLIB_PROGRESS", raising=False)
    bar = progress.bar(total=2, disable=True)
    assert isinstance(bar, widget_bar)
    bar.close()


def test_in_a_live_notebook_without_ipywidgets_it_is_the_text_bar(monkeypatch):
    import importlib.util

    import IPython.display

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ipywidgets" else real(name, *a))
    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.delenv("COTLIB_PROGRESS", raising=False)
    monkeypatch.setattr(IPython.display, "display", lambda obj, display_id=False: None)
    assert isinstance(progress.bar(total=2, disable=True), progress.NotebookBar)
