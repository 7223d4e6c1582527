"""What a learner sees: JupyterLab in headless Chromium runs chapter 3's generation cell, and its ipywidgets progress
bar renders. The screenshot goes to images/jupyterlab_progress.png, which the README shows.

Debian's chromium, driven by Playwright with the system executable (no browser download); `make test` installs it
where it can (scripts/ensure-chromium). Everything runs on 127.0.0.1 with the local teacher.
"""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT
from cotlib import checkpoints, generate

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium started as root on a machine with a closed network: no sandbox, no background connections.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
SCREENSHOT = ROOT / "images" / "jupyterlab_progress.png"
CELLS = (3, 14, 17)  # chapter 3: set-up (the teacher's endpoint), the demo subset, the run with its progress bar

pytestmark = [pytest.mark.slow,  # needs Debian's chromium: make test-all installs it (scripts/ensure-chromium)
              pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                 reason="Debian's chromium is not installed: run scripts/ensure-chromium")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on 127.0.0.1 over a learner's folder holding chapter 3, whose run resumes with two questions left."""
    folder = tmp_path / "learner"
    folder.mkdir()
    shutil.copy(ROOT / "notebooks" / "03_cot_generation.ipynb", folder)
    records_file = checkpoints.ensure(4, folder / "outputs") / "cot_records.jsonl"
    records = generate.load_records(records_file)
    left = [r for r in records if r.method == "direct"][:2]  # solved at the first try, so they take about a call each
    records_file.write_text("".join(r.to_json() + "\n" for r in records if r not in left))
    settings = tmp_path / "settings" / "@jupyterlab"
    for extension, name, values in (("apputils-extension", "notification", '{"fetchNews": "false", "checkForUpdates": false}'),
                                    ("notebook-extension", "tracker", '{"windowingMode": "none"}')):  # render every cell
        (settings / extension).mkdir(parents=True)
        (settings / extension / f"{name}.jupyterlab-settings").write_text(values)
    env = {k: v for k, v in os.environ.items() if k != "COTLIB_PROGRESS"}  # a live kernel: the widget bar
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    token, port = secrets.token_hex(16), free_port()
    log = open(tmp_path / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.root_dir={folder}", f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=None", *(["--allow-root"] if os.geteuid() == 0 else [])],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "lab.log").read_text()[-2000:]
                time.sleep(0.5)
        yield url, token, folder, len(left)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_chapter_3_shows_a_live_progress_bar_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    url, token, folder, left = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{url}/lab/tree/03_cot_generation.ipynb?token={token}")
        page.wait_for_function("""() => {
            const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            const kernel = nb && nb.sessionContext && nb.sessionContext.session && nb.sessionContext.session.kernel;
            return kernel && kernel.status === "idle";
        }""", timeout=120_000)
        for index in CELLS:
            page.evaluate("""async (index) => {
                const nb = window.jupyterapp.shell.currentWidget;
                nb.content.activeCellIndex = index;
                await window.jupyterapp.commands.execute("notebook:run-cell");
            }""", index)
            page.wait_for_function("""(index) => {
                const nb = window.jupyterapp.shell.currentWidget;
                return nb.content.widgets[index].model.executionCount !== null
                    && nb.sessionContext.session.kernel.status === "idle";
            }""", arg=index, timeout=300_000)
        cell = page.locator(".jp-Notebook .jp-Cell").nth(CELLS[-1])
        cell.scroll_into_view_if_needed()
        bar = cell.locator(".jupyter-widgets .progress-bar")  # ipywidgets' FloatProgress, as tqdm.notebook draws it
        try:
            bar.wait_for(state="visible", timeout=30_000)
        finally:
            page.screenshot(path=str(folder / "last.png"))
        text = cell.locator(".jp-OutputArea").inner_text()
        errors = cell.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']").count()
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
        width = bar.evaluate("el => el.style.width")
        browser.close()
    assert f"{left}/{left}" in text and "questions" in text, text
    assert width == "100%" and errors == 0, (width, text)
    records = generate.load_records(folder / "outputs" / "cot_records.jsonl")
    assert len({r.id for r in records}) == len(records) >= 28
