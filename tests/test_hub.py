"""cotlib.hub against the loopback Hub: card validity, push → load round trip, re-runs, 401/403/private.

Clients run in fresh interpreters (huggingface_hub reads HF_ENDPOINT at import; see tests/test_localhub.py).
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from cotlib import hub
from cotlib.localhub import LocalHub
from conftest import ROOT

TOKENS = {"tok-learner": "learner", "tok-other": "other"}
RECORDS = [
    {"id": "a", "question": "1+1?", "answer": "2", "verified": True, "method": "direct", "teacher": "T", "calls": 1,
     "tokens_in": 10, "tokens_out": 20, "solution": "1+1=2. \\\\boxed{2}"},
    {"id": "b", "question": "2+3?", "answer": "5", "verified": True, "method": "search", "teacher": "T", "calls": 9,
     "tokens_in": 90, "tokens_out": 200, "solution": "2+3=5. \\\\boxed{5}"},
    {"id": "c", "question": "7*6?", "answer": "42", "verified": False, "method": "failed", "teacher": "T", "calls": 8,
     "tokens_in": 80, "tokens_out": 150, "solution": None},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LocalHub(tmp_path_factory.mktemp("hub"), TOKENS) as running:
        yield running


def client(server, tmp_path, code, token=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_DATASETS_CACHE=str(tmp_path / "ds"), NO_PROXY="127.0.0.1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", PYTHONPATH=str(ROOT))
    if token:
        env["HF_TOKEN"] = token
    prelude = f"""
import json
from cotlib import export, hub, localhub
hub.use_endpoint({server.endpoint!r})
localhub.route_client({server.endpoint!r})
import datasets
datasets.disable_progress_bars()
RECORDS = {RECORDS!r}
def error(fn):
    try:
        fn()
    except hub.HubError as err:
        return str(err)
"""
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_push_card_and_load_back(server, tmp_path):
    out = client(server, tmp_path, """
sel = export.select(RECORDS)
ds = export.to_dataset({"train": export.to_alpaca(sel)})
card = hub.build_card("learner/cot-demo", 2, RECORDS)
url = hub.push_dataset(ds, "learner/cot-demo", card=card)
back = hub.load_dataset("learner/cot-demo", split="train")
read = hub.load_card("learner/cot-demo")
print(json.dumps({"url": url, "rows": back.to_list(), "meta": read.data.to_dict(), "text": read.text}))
""", token="tok-learner")
    assert out["url"] == f"{server.endpoint}/datasets/learner/cot-demo"
    assert [r["instruction"] for r in out["rows"]] == ["1+1?", "2+3?"] and set(out["rows"][0]) == {"instruction", "input", "output"}
    meta = out["meta"]
    assert meta["size_categories"] == ["n<1K"] and meta["license"] == "apache-2.0"
    assert meta["task_categories"] == ["question-answering", "text-generation"] and "configs" in meta
    assert "| teacher model | T |" in out["text"] and "| verified | 2 (67%) |" in out["text"]
    assert 'load_dataset("learner/cot-demo", split="train")' in out["text"]
    assert "tok-learner" not in json.dumps(out)


def test_rerun_updates_the_repo(server, tmp_path):
    out = client(server, tmp_path, """
from huggingface_hub import HfApi
sel = export.select(RECORDS)
rows = export.to_alpaca(sel)
card = hub.build_card("learner/rerun", 2, RECORDS)
hub.push_dataset(export.to_dataset({"train": rows}), "learner/rerun", card=card)
first = HfApi().dataset_info("learner/rerun").sha
hub.push_dataset(export.to_dataset({"train": rows}), "learner/rerun", card=card)  # same data: no failure
rows.append({"instruction": "9+9?", "input": "", "output": "18"})
hub.push_dataset(export.to_dataset({"train": rows}), "learner/rerun", card=card)
second = HfApi().dataset_info("learner/rerun").sha
print(json.dumps({"changed": first != second, "rows": hub.load_dataset("learner/rerun").num_rows}))
""", token="tok-learner")
    assert out == {"changed": True, "rows": 3}


def test_errors_are_one_clear_line(server, tmp_path):
    out = client(server, tmp_path, """
ds = export.to_dataset({"train": export.to_alpaca(export.select(RECORDS))})
bad = error(lambda: hub.push_dataset(ds, "learner/x", token="tok-wrong"))
other = error(lambda: hub.push_dataset(ds, "learner/y", token="tok-other"))
private = hub.push_dataset(ds, "other/secret", private=True, token="tok-other")
anonymous = error(lambda: hub.load_dataset("other/secret", token=False))
print(json.dumps({"bad": bad, "other": other, "anonymous": anonymous}))
""")
    assert "rejected the token (401)" in out["bad"] and "tok-wrong" not in out["bad"]
    assert "may not write to 'learner' (403)" in out["other"]
    assert out["anonymous"] is not None


def test_missing_token_is_reported(monkeypatch):
    monkeypatch.setattr(hub, "get_token", lambda ask=False: None)
    with pytest.raises(hub.HubError, match="no Hugging Face token: set HF_TOKEN"):
        hub.push_dataset(object(), "x/y")


def test_card_counts_reference_rows_apart():
    plain = hub.build_card("learner/x", 300, RECORDS).text
    topped = hub.build_card("learner/x", 300, RECORDS, reference_rows=280).text
    assert "| of which reference solutions (method `reference`, not the teacher's) | 280 |" in topped
    assert "of which reference solutions" not in plain and "`reference`: a worked solution" in plain


@pytest.mark.parametrize(("rows", "category"), [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (250_000, "100K<n<1M")])
def test_size_categories_are_valid_hub_values(rows, category):
    assert hub.size_category(rows) == category


def test_connect_offline_starts_the_loopback_hub_and_hides_the_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(tmp_path / "hf"), COTLIB_OFFLINE="1", PYTHONPATH=str(ROOT))
    code = f"""
import json
from cotlib import hub
c = hub.connect(use_real_hub=True, root={str(tmp_path / 'hub')!r})  # offline wins: loopback
from huggingface_hub import whoami
print(json.dumps({{"repr": repr(c), "where": c.where, "user": whoami(token=c.token)["name"]}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["user"] == "learner" and "loopback Hub on this machine" in out["where"]
    assert hub.LOCAL_TOKEN not in out["repr"] and "learner/cotlib-cot-demo" in out["repr"]


def test_loopback_hub_stays_online_after_unsloth_in_an_offline_shell(tmp_path):
    """Offline flags set in the shell, then Unsloth imported before datasets (chapter 6's order): datasets must still
    talk to the loopback Hub. Offline, it would quietly read its cache instead: stale rows, or a refusal once
    chapter 5's exercise 3 has cached a second configuration of the repo."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(tmp_path / "hf"), COTLIB_OFFLINE="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", PYTHONPATH=str(ROOT))
    code = f"""
import json
from cotlib import export, hub
c = hub.connect(root={str(tmp_path / 'hub')!r})
import unsloth  # noqa: F401  (turns every HF offline flag on when any one is on)
import datasets
rows = export.to_alpaca(export.select({RECORDS!r}))
hub.push_dataset(export.to_dataset({{"train": rows}}), c.repo_id, token=c.token)
print(json.dumps({{"offline": datasets.config.HF_HUB_OFFLINE, "rows": hub.load_dataset(c.repo_id, token=c.token).num_rows}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"offline": False, "rows": 2}


@pytest.mark.skipif(os.environ.get("COTLIB_TEST_REAL_HUB") != "1" or not os.environ.get("HF_TOKEN"),
                    reason="opt-in: set COTLIB_TEST_REAL_HUB=1 and HF_TOKEN (a write token) to test against huggingface.co")
def test_real_hub_round_trip(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_ENDPOINT", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(ROOT))
    code = f"""
import json
from cotlib import export, hub
hub.use_endpoint(hub.DEFAULT_ENDPOINT)
from huggingface_hub import HfApi, whoami
repo = whoami()["name"] + "/cotlib-ci-roundtrip"
rows = export.to_alpaca(export.select({RECORDS!r}))
try:
    hub.push_dataset(export.to_dataset({{"train": rows}}), repo, card=hub.build_card(repo, len(rows), {RECORDS!r}), private=True)
    back = hub.load_dataset(repo)
    print(json.dumps({{"rows": back.num_rows}}))
finally:
    HfApi().delete_repo(repo, repo_type="dataset", missing_ok=True)
"""
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"rows": 2}


def test_models_come_from_the_real_hub_while_datasets_use_the_loopback_one(tmp_path, monkeypatch):
    import huggingface_hub

    from cotlib import hub

    calls = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda name, endpoint: calls.append((name, endpoint)) or str(tmp_path / "snapshot"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the loopback Hub: it holds no models
    assert hub.model_source("unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit") == str(tmp_path / "snapshot")
    assert calls == [("unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit", "https://huggingface.co")]
    assert hub.model_source(str(tmp_path)) == str(tmp_path)  # a local folder as it is
    monkeypatch.delenv("HF_ENDPOINT")
    assert hub.model_source("Qwen/Qwen2.5-1.5B-Instruct") == "Qwen/Qwen2.5-1.5B-Instruct"  # the real Hub: as is
    assert len(calls) == 1
