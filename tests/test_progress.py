"""Progress bars that a stored notebook shows as they ended."""

from tqdm.std import tqdm

from cotlib import progress


def test_in_a_notebook_the_bar_is_one_output_updated_to_its_final_state(monkeypatch):
    import IPython.display

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
    assert progress.bar(total=1, disable=True).handle is None
