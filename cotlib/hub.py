"""Chapter 5: publish the dataset on the Hugging Face Hub (or the loopback Hub offline) with a proper card.

huggingface_hub and datasets read ``HF_ENDPOINT`` when they are imported, so :func:`use_endpoint` must run before
anything imports them (this module imports them lazily, inside its functions, for that reason).
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from cotlib.errors import HubError
from cotlib import __version__

T = TypeVar("T")
DEFAULT_ENDPOINT = "https://huggingface.co"
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))
COLUMNS = {
    "instruction": "the question (Alpaca instruction)",
    "input": "always empty: the question is self-contained",
    "output": "a step-by-step solution whose final \\boxed{} answer was verified against the golden answer",
    "id, answer, method, verified, teacher": "where each row came from (if exported with metadata): the question's "
                                             "id, its golden answer, how the solution was found, and by whom",
}




def use_endpoint(endpoint: str) -> None:
    """Point huggingface_hub/datasets at ``endpoint`` (the real Hub or a loopback one); call before they load."""
    loaded = [m for m in ("huggingface_hub", "datasets") if m in sys.modules]
    current = os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")
    if loaded and current != endpoint.rstrip("/"):
        raise HubError(f"{' and '.join(loaded)} already loaded with endpoint {current}: restart the kernel and call "
                       "hub.use_endpoint() before anything imports them")
    os.environ["HF_ENDPOINT"] = endpoint.rstrip("/")
    os.environ["HF_HUB_DISABLE_XET"] = "1"  # plain HTTP + LFS uploads: what both the real Hub and the loopback Hub take
    if endpoint.startswith(("http://127.0.0.1", "http://localhost")):
        # offline mode forbids all Hub traffic, but the loopback Hub is on this machine. All three flags: Unsloth,
        # imported later, turns every one on when any one is, and datasets would then quietly read a stale cache
        for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            os.environ[name] = "0"
        # transfers on this machine take milliseconds: their bars would only stay in a stored notebook at 0%
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")


LOCAL_USER, LOCAL_TOKEN = "learner", "local-demo-token"  # valid on this machine's loopback Hub only


@dataclass
class Connection:
    """Where chapters 5 and 6 publish and read: the repo id, the token (never shown), the loopback Hub if used."""

    repo_id: str
    token: str = field(repr=False)
    loopback: Any = field(default=None, repr=False)

    @property
    def where(self) -> str:
        return f"{self.repo_id} on {endpoint()}" + (" (the loopback Hub on this machine)" if self.loopback else "")


def connect(use_real_hub: bool = False, dataset_name: str = "cotlib-cot-demo", root: str | Path = "outputs/hub") -> Connection:
    """The real Hub (token from HF_TOKEN, saved login or getpass) or, offline or by default, the loopback Hub."""
    from cotlib.data import offline

    if use_real_hub and not offline():
        use_endpoint(DEFAULT_ENDPOINT)
        token = get_token(ask=True)
        if token is None:
            raise HubError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
        from huggingface_hub import whoami

        return Connection(f"{whoami(token=token)['name']}/{dataset_name}", token)
    from cotlib.localhub import LocalHub, route_client

    server = LocalHub(Path(root), {LOCAL_TOKEN: LOCAL_USER})
    use_endpoint(server.start())
    route_client(endpoint())  # the card validator's call goes to huggingface.co by name
    return Connection(f"{LOCAL_USER}/{dataset_name}", LOCAL_TOKEN, server)


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def model_source(name: str) -> str:
    """Where to load a model from: a local folder as it is; a Hub id from the real Hub, even while datasets go to
    the loopback Hub (which holds no models: chapter 6 on a GPU reads its dataset there and Qwen2.5 from
    huggingface.co, downloaded once into the usual cache)."""
    if Path(name).is_dir() or endpoint() == DEFAULT_ENDPOINT.rstrip("/"):
        return name
    from huggingface_hub import snapshot_download

    return snapshot_download(name, endpoint=DEFAULT_ENDPOINT)


def get_token(ask: bool = False) -> str | None:
    """``HF_TOKEN``, else the token saved by ``hf auth login``, else (``ask=True``) getpass. Never printed."""
    from huggingface_hub import get_token as saved_token

    token = os.environ.get("HF_TOKEN") or saved_token()
    if token is None and ask:
        token = getpass.getpass("Hugging Face token with write access (input hidden): ").strip() or None
    return token


def size_category(rows: int) -> str:
    """The Hub's ``size_categories`` value for a row count (e.g. ``n<1K``)."""
    for limit, name in SIZE_CATEGORIES:
        if rows < limit:
            return name
    return "n>1B"


def build_card(repo_id: str, rows: int, records: Sequence[Any], languages: Sequence[str] = ("en",),
               license: str = "apache-2.0", pretty_name: str | None = None, reference_rows: int = 0,
               run_config: dict[str, Any] | None = None, curation: dict[str, int] | None = None) -> Any:
    """A ``DatasetCard`` with valid metadata and a body saying how the data was made (from chapter 3's records, and
    how many rows are reference solutions rather than the teacher's); ``curation`` (reason -> rows dropped, as
    ``Selection.dropped`` counts them) becomes a "Curation" table; with ``run_config`` (a config file as
    ``cotlib generate`` saves it), a "Reproduce this dataset" section shows it and its command line."""
    from huggingface_hub import DatasetCard, DatasetCardData

    from cotlib.export import validate

    records = validate(records)
    methods = Counter(r.method for r in records)
    teachers = sorted({r.teacher or "?" for r in records})
    verified = sum(r.verified for r in records)
    calls = sum(r.calls for r in records)
    tokens = sum(r.tokens_in + r.tokens_out for r in records)
    data = DatasetCardData(
        license=license, language=list(languages), size_categories=[size_category(rows)],
        task_categories=["question-answering", "text-generation"],
        tags=["chain-of-thought", "math", "synthetic", "cotlib", "camel"], pretty_name=pretty_name or repo_id.split("/")[-1],
    )
    share = (lambda n: f"{n} ({n / len(records):.0%})") if records else str
    body = "\n".join([
        f"# {data.pretty_name}", "",
        "Step-by-step (chain-of-thought) solutions generated by a teacher LLM and kept only when their final "
        "`\\boxed{}` answer verified against a golden answer, made with [cotlib](https://github.com/cotlib/cotlib).", "",
        "## How it was made", "",
        "| | |", "|---|---|",
        *([f"| teacher model | {', '.join(teachers) or '?'} |",
           f"| questions attempted | {len(records)} |",
           f"| verified | {share(verified)} |",
           *[f"| method `{m}` | {share(methods[m])} |" for m in ("direct", "search", "rationalized", "failed") if methods[m]],
           f"| LLM calls / tokens | {calls} / {tokens} |"] if records else
          ["| generation records | not given to the card (see the dataset's `method` column, if any) |"]),
        f"| rows in this dataset | {rows} |",
        *([f"| of which reference solutions (method `reference`, not the teacher's) | {reference_rows} |"]
          if reference_rows else []),
        f"| date / cotlib version | {date.today().isoformat()} / {__version__} |", "",
        "`direct`: the first attempt verified. `search`: found after a wrong first attempt, by fresh samples or, when "
        "those kept failing, by rollouts from a correct prefix after a binary search for the first wrong step. `rationalized`: the teacher was shown the golden answer "
        "(treat with care). `reference`: a worked solution written by the question generator itself, added because "
        "the offline teacher verified too few; it shows the format, not the teacher's reasoning.", "",
        *(["## Curation", "", "What was dropped before this dataset was written, and why:", "",
            "| reason | rows dropped |", "|---|---|", *[f"| {reason} | {n} |" for reason, n in curation.items()], ""]
          if curation else []),
        "## Schema", "", "| column | description |", "|---|---|",
        *[f"| `{c}` | {d} |" for c, d in COLUMNS.items()], "",
        "## Load it", "", "```python", "from datasets import load_dataset", "",
        f'dataset = load_dataset("{repo_id}", split="train")', "```",
        *(_reproduce(run_config) if run_config else []),
    ])
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}\n")


def _reproduce(run_config: dict[str, Any]) -> list[str]:
    """The card's "Reproduce this dataset" lines: the run's resolved settings (anything named like a key or a token
    dropped) and the command that uses them."""
    from cotlib.flags import COMMAND, without_secrets

    settings = without_secrets(run_config)
    command = settings.pop(COMMAND, None)
    return ["", "## Reproduce this dataset", "",
            "The generation run's settings, fully resolved (defaults, config file and flags). Save them as `run.json`"
            + (", then run:" if command else " and pass `--config run.json` to `cotlib generate`."), "",
            *(["```bash", f"{command} --config run.json", "```", ""] if command else []),
            "```json", json.dumps(settings, indent=2, ensure_ascii=False), "```"]


def _friendly(err: Exception, repo_id: str) -> HubError | None:
    """One clear message for the errors people hit; None for those worth retrying."""
    from huggingface_hub.errors import HfHubHTTPError

    status = getattr(getattr(err, "response", None), "status_code", None)
    if isinstance(err, HfHubHTTPError) and status == 401:
        return HubError(f"{endpoint()} rejected the token (401): check HF_TOKEN or run `hf auth login`")
    if isinstance(err, HfHubHTTPError) and status == 403:
        return HubError(f"the token may not write to {repo_id.split('/')[0]!r} (403): use your own namespace or a "
                        "token with write access to that organization")
    if isinstance(err, HfHubHTTPError) and status is not None and status < 500 and status != 429:
        return HubError(f"{endpoint()} answered HTTP {status} for {repo_id}")
    return None


def _retrying(action: Callable[[], T], repo_id: str, attempts: int = 3) -> T:
    import httpx

    for attempt in range(attempts):
        try:
            return action()
        except (httpx.HTTPError, OSError) as err:  # HfHubHTTPError is both
            friendly = _friendly(err, repo_id)
            if friendly is not None:
                raise friendly from None
            if attempt == attempts - 1:
                raise HubError(f"{endpoint()} unreachable or failing after {attempts} tries ({type(err).__name__})") from None
            time.sleep(2**attempt)
    raise AssertionError("unreachable")


@contextmanager
def quiet() -> Iterator[None]:
    """Silence the expected warnings of a push: datasets' num_proc note for single-shard splits and the Hub's
    "no files modified, skipping empty commit" on a re-run (the latter is the point of re-running)."""
    import datasets
    from huggingface_hub.utils import logging as hub_logging

    levels = datasets.logging.get_verbosity(), hub_logging.get_verbosity()
    datasets.logging.set_verbosity_error()
    hub_logging.set_verbosity_error()
    try:
        yield
    finally:
        datasets.logging.set_verbosity(levels[0])
        hub_logging.set_verbosity(levels[1])


def push_dataset(dataset: Any, repo_id: str, card: Any = None, private: bool = False, token: str | None = None) -> str:
    """Push a ``Dataset``/``DatasetDict`` (parquet) and its card (built from the dataset when none is given);
    re-running adds a new commit. Returns the URL."""
    token = token or get_token()
    if token is None:
        raise HubError("no Hugging Face token: set HF_TOKEN, run `hf auth login`, or pass token=")
    if card is None:  # never a repo without license, size and task categories
        splits = dataset.values() if hasattr(dataset, "values") else [dataset]
        card = build_card(repo_id, sum(split.num_rows for split in splits), [])
    with quiet():
        # one commit holds all the data files: a failure leaves the repo's data as it was, or complete
        _retrying(lambda: dataset.push_to_hub(repo_id, private=private, token=token), repo_id)
        try:
            merged = with_dataset_metadata(card, load_card(repo_id, token))
            _retrying(lambda: merged.push_to_hub(repo_id, repo_type="dataset", token=token), repo_id)
        except HubError as err:
            raise HubError(f"the data of {repo_id} is published and complete, but its card was not updated ({err}): "
                           "run the same push again") from None
    return f"{endpoint()}/datasets/{repo_id}"


def with_dataset_metadata(card: Any, pushed: Any) -> Any:
    """Our card, keeping the ``configs``/``dataset_info`` that ``push_to_hub`` just wrote into the README."""
    from huggingface_hub import DatasetCard

    data = card.data.to_dict()
    for key in ("configs", "dataset_info"):
        if pushed.data.get(key) is not None:
            data[key] = pushed.data.get(key)
    merged = type(card.data)(**data)
    return DatasetCard(f"---\n{merged.to_yaml()}\n---\n{card.text}")


def exists(repo_id: str, token: str | None = None) -> bool:
    """Whether the dataset repo is on the current endpoint."""
    from huggingface_hub import HfApi

    return _retrying(lambda: HfApi(endpoint()).repo_exists(repo_id, repo_type="dataset", token=token or get_token()),
                     repo_id)


def ensure_published(connection: Connection, outputs: str | Path = "outputs") -> bool:
    """On the loopback Hub, publish chapter 4's split files (bundled ones if missing) when chapter 5 has not run in
    this folder; True if it pushed. The real Hub is left alone: there, chapter 5 publishes."""
    from cotlib import checkpoints, export

    if connection.loopback is None or exists(connection.repo_id, connection.token):
        return False
    splits = export.read_splits(checkpoints.ensure(6, outputs))
    push_dataset(export.to_dataset(splits), connection.repo_id, token=connection.token)
    print(f"published chapter 4's export as {connection.repo_id} on the loopback Hub (chapter 5 did not run here)")
    return True


def load_dataset(repo_id: str, split: str = "train", token: str | None = None) -> Any:
    """Read a dataset back from the current endpoint (``token`` for private repos)."""
    import datasets

    with quiet():
        return _retrying(lambda: datasets.load_dataset(repo_id, split=split, token=token or get_token()), repo_id)


def load_card(repo_id: str, token: str | None = None) -> Any:
    from huggingface_hub import DatasetCard
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()  # one small README: a progress bar would only be noise
    try:
        return _retrying(lambda: DatasetCard.load(repo_id, repo_type="dataset", token=token or get_token()), repo_id)
    finally:
        if not was_disabled:
            enable_progress_bars()
