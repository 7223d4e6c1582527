"""cotlib.localhub: the real huggingface_hub / datasets clients push to and load from it over loopback.

How the pieces are started: the server runs in this pytest process (``LocalHub`` in a thread, module-scoped), while
every client runs in a *fresh* Python subprocess. huggingface_hub and datasets read ``HF_ENDPOINT`` (and
``HF_HUB_DISABLE_XET``, ``HF_HOME``...) once, at import time, and other tests in this process may already have
imported them with the real defaults, so a client can only be pointed at a port chosen at run time from a new
interpreter whose environment is set before its first import. The HEAD/Range checks need no client: plain urllib.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cotlib.localhub import LocalHub

ROOT = Path(__file__).resolve().parents[1]
TOKENS = {"tok-alice": "alice", "tok-bob": "bob"}
ROWS = {"question": ["1+1?", "2+2?", "3+3?"], "answer": ["2", "4", "6"]}
TEST_ROWS = {"question": ["5+5?"], "answer": ["10"]}

# Runs first in every client: the project's way of talking to a local hub (see the module docstring of localhub).
PRELUDE = """
import json, os
from cotlib.localhub import route_client
route_client(os.environ["HF_ENDPOINT"])  # DatasetCard.validate() posts to the hard-coded huggingface.co
import datasets
from huggingface_hub import DatasetCard, DatasetCardData, HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
datasets.disable_progress_bars()

def error(fn):
    try:
        fn()
    except Exception as err:
        return err

def status(fn):
    err = error(fn)
    if err is None or isinstance(err, HfHubHTTPError):
        return err.response.status_code if err else 200
    raise err

def dset(train, test):
    return datasets.DatasetDict({"train": datasets.Dataset.from_dict(train),
                                 "test": datasets.Dataset.from_dict(test)})
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    with LocalHub(tmp_path_factory.mktemp("hub"), TOKENS) as server:
        yield server


def run_client(hub: LocalHub, tmp: Path, code: str, **variables: object) -> dict:
    """Run ``code`` after PRELUDE in a fresh interpreter pointed at ``hub``; it must print one JSON line last."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "TRANSFORMERS_"))}  # no token/offline leaks
    env.update(
        HF_ENDPOINT=hub.endpoint,
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(tmp / "hf_home"),
        HF_DATASETS_CACHE=str(tmp / "datasets_cache"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        NO_PROXY="127.0.0.1,localhost",
        PYTHONPATH=str(ROOT),
    )
    script = PRELUDE + "".join(f"{k} = {v!r}\n" for k, v in variables.items()) + textwrap.dedent(code)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def pushed(hub: LocalHub, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """alice/qa: a DatasetDict pushed with push_to_hub, then a DatasetCard, then read back anonymously."""
    return run_client(hub, tmp_path_factory.mktemp("client"), """
        commit = dset(ROWS, TEST_ROWS).push_to_hub("alice/qa", token="tok-alice").oid
        card = DatasetCard.from_template(DatasetCardData(
            license="mit", language=["en"], size_categories=["n<1K"], task_categories=["question-answering"],
            pretty_name="Tiny QA"))
        card.push_to_hub("alice/qa", token="tok-alice")
        train = datasets.load_dataset("alice/qa", split="train")
        test = datasets.load_dataset("alice/qa", split="test")
        meta = DatasetCard.load("alice/qa", repo_type="dataset").data.to_dict()
        info = HfApi().dataset_info("alice/qa", files_metadata=True)
        lfs = {s.rfilename: s.lfs is not None for s in info.siblings}
        print(json.dumps({"push": commit, "head": info.sha, "train": train.to_dict(), "test": test.to_dict(),
                          "meta": meta, "lfs": lfs}))
    """, ROWS=ROWS, TEST_ROWS=TEST_ROWS)


def test_push_card_and_load_round_trip(pushed: dict) -> None:
    assert pushed["train"] == ROWS and pushed["test"] == TEST_ROWS
    assert pushed["meta"] == {"license": "mit", "language": ["en"], "size_categories": ["n<1K"],
                              "task_categories": ["question-answering"], "pretty_name": "Tiny QA"}
    assert len(pushed["push"]) == 40 and pushed["head"] != pushed["push"]  # the card made a commit of its own
    assert pushed["lfs"] == {".gitattributes": False, "README.md": False,
                             "data/train-00000-of-00001.parquet": True, "data/test-00000-of-00001.parquet": True}


def test_repush_makes_a_new_commit(hub: LocalHub, tmp_path: Path) -> None:
    out = run_client(hub, tmp_path, """
        api = HfApi(token="tok-alice")
        first = dset(ROWS, TEST_ROWS).push_to_hub("alice/again", token="tok-alice").oid
        more = {k: v + v[:1] for k, v in ROWS.items()}
        second = dset(more, TEST_ROWS).push_to_hub("alice/again", token="tok-alice").oid
        same = dset(more, TEST_ROWS).push_to_hub("alice/again", token="tok-alice").oid  # unchanged: no commit
        api.create_repo("alice/again", repo_type="dataset", exist_ok=True)  # 409 from the server, tolerated
        rows = datasets.load_dataset("alice/again", split="train").to_dict()
        commits = [c.commit_id for c in api.list_repo_commits("alice/again", repo_type="dataset")]
        print(json.dumps({"first": first, "second": second, "same": same, "rows": rows, "commits": commits,
                          "more": more}))
    """, ROWS=ROWS, TEST_ROWS=TEST_ROWS)
    assert out["first"] != out["second"] and out["same"] == out["second"]
    assert out["rows"] == out["more"]
    assert out["commits"][:2] == [out["second"], out["first"]] and len(out["commits"]) == 3  # + the initial commit


def test_auth_errors_and_private_repos(hub: LocalHub, tmp_path: Path) -> None:
    out = run_client(hub, tmp_path, """
        alice, bob, anon = HfApi(token="tok-alice"), HfApi(token="tok-bob"), HfApi(token=False)
        small = dset(ROWS, TEST_ROWS)
        small.push_to_hub("alice/secret", token="tok-alice", private=True)
        small.push_to_hub("alice/open", token="tok-alice")
        def load(token):
            try:
                return len(datasets.load_dataset("alice/secret", split="train", token=token))
            except datasets.exceptions.DatasetNotFoundError:
                return "not found"
        print(json.dumps({
            "whoami": alice.whoami()["name"],
            "bad_whoami": status(lambda: HfApi(token="nope").whoami()),
            "bad_push": status(lambda: small.push_to_hub("alice/open", token="nope")),
            "bob_into_alice": status(lambda: small.push_to_hub("alice/open", token="tok-bob")),
            "bob_new_in_alice": status(lambda: bob.create_repo("alice/bobs", repo_type="dataset")),
            "bob_own": status(lambda: small.push_to_hub("bob/mine", token="tok-bob")),
            "anon_open": status(lambda: anon.dataset_info("alice/open")),
            "anon_secret": status(lambda: anon.dataset_info("alice/secret")),
            "bob_secret": status(lambda: bob.dataset_info("alice/secret")),
            "secret_not_found": isinstance(error(lambda: bob.dataset_info("alice/secret")), RepositoryNotFoundError),
            "alice_private": alice.dataset_info("alice/secret").private,
            # Others first: once alice has it in this shared local cache, the client itself serves it to anyone.
            "bob_loads": load("tok-bob"), "anon_loads": load(False), "alice_loads": load("tok-alice"),
        }))
    """, ROWS=ROWS, TEST_ROWS=TEST_ROWS)
    assert out["whoami"] == "alice"
    assert out["bad_whoami"] == 401 and out["bad_push"] == 401
    assert out["bob_into_alice"] == 403 and out["bob_new_in_alice"] == 403 and out["bob_own"] == 200
    assert out["anon_open"] == 200 and out["anon_secret"] == 404 and out["bob_secret"] == 404
    assert out["secret_not_found"] and out["alice_private"] is True
    assert out["alice_loads"] == len(ROWS["question"]) and out["bob_loads"] == out["anon_loads"] == "not found"


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy


def _request(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_resolve_head_and_range(hub: LocalHub, pushed: dict) -> None:
    url = f"{hub.endpoint}/datasets/alice/qa/resolve/main/data/train-00000-of-00001.parquet"
    status, _, data = _request(url)
    assert status == 200 and data[:4] == data[-4:] == b"PAR1"
    sha = hashlib.sha256(data).hexdigest()

    status, headers, body = _request(url, "HEAD")
    assert status == 200 and body == b""
    assert headers["Content-Length"] == headers["X-Linked-Size"] == str(len(data))
    assert headers["X-Linked-Etag"] == f'"{sha}"' and headers["ETag"].startswith('"')
    assert headers["X-Repo-Commit"] == pushed["head"] and headers["Accept-Ranges"] == "bytes"
    assert not any(name.lower().startswith("x-xet") for name in headers)  # Xet is never advertised

    status, headers, body = _request(url, headers={"Range": "bytes=4-11"})
    assert status == 206 and body == data[4:12]
    assert headers["Content-Range"] == f"bytes 4-11/{len(data)}" and headers["Content-Length"] == "8"
    assert _request(url, headers={"Range": "bytes=-4"})[2] == b"PAR1"
    status, headers, _ = _request(url, headers={"Range": f"bytes={len(data)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}"

    readme = f"{hub.endpoint}/datasets/alice/qa/resolve/{pushed['head']}/README.md"
    status, headers, _ = _request(readme, "HEAD")
    assert status == 200 and "X-Linked-Etag" not in headers  # a regular (non-LFS) file
    status, headers, _ = _request(f"{hub.endpoint}/datasets/alice/qa/resolve/main/nope.txt", "HEAD")
    assert status == 404 and headers["X-Error-Code"] == "EntryNotFound"
    assert _request(url, "HEAD", {"Authorization": "Bearer nope"})[0] == 401


def test_cli_serves_the_same_root_until_killed(hub: LocalHub, pushed: dict) -> None:
    """``python -m cotlib.localhub`` (as notebooks and CI run it) serves what is on disk, with its own tokens."""
    cmd = [sys.executable, "-m", "cotlib.localhub", "--root", str(hub.root), "--token", "t=carol"]
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True) as proc:
        try:
            endpoint = proc.stdout.readline().strip()
            assert endpoint.startswith("http://127.0.0.1:") and endpoint != hub.endpoint
            status, _, body = _request(f"{endpoint}/api/whoami-v2", headers={"Authorization": "Bearer t"})
            assert status == 200 and json.loads(body)["name"] == "carol"
            status, _, body = _request(f"{endpoint}/api/datasets/alice/qa")
            assert status == 200 and json.loads(body)["sha"] == pushed["head"]
            assert _request(f"{endpoint}/api/whoami-v2", headers={"Authorization": "Bearer tok-alice"})[0] == 401
        finally:
            proc.terminate()
