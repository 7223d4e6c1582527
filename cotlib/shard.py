"""Generation sharded over Ray workers: one engine run per shard, one store per shard, merged into one output.

Install the extra first: ``pip install "cotlib[ray]"``. Each question goes to the shard ``stable_hash(id) % workers``,
so a re-run puts it in the same shard; each shard is an ordinary :func:`cotlib.generate.generate` run writing
``<output>.shards/<i>.jsonl`` (resumable on its own), and :func:`merge` copies the shard stores into ``output``
without duplicates. Sharding helps when one process cannot keep the teacher busy (a cluster of self-hosted teachers,
or a provider whose rate limit allows more than one client sustains); on one machine it mostly adds Ray's start-up.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cotlib import config as cfgmod
from cotlib.client import Usage, default_concurrency
from cotlib.data import QAPair
from cotlib.errors import CotlibError, ShardError
from cotlib.generate import GenerationConfig, RunLimits, RunSummary, cost, generate
from cotlib.progress import bar as progress_bar
from cotlib.store import RecordStore, merge

INSTALL_HINT = 'pip install "cotlib[ray]"'


def shard_of(question_id: str, workers: int) -> int:
    """The shard of a question: a stable hash of its id (not Python's salted ``hash``), so re-runs agree."""
    return int.from_bytes(hashlib.sha256(question_id.encode()).digest()[:8], "big") % workers


def shard_dir(output: str | Path) -> Path:
    """Where the shard stores of ``output`` live: ``<output>.shards/``."""
    output = Path(output)
    return output.with_name(output.name + ".shards")


def split_limits(limits: RunLimits, workers: int, concurrency: int) -> list[RunLimits]:
    """Each worker's share of the run's limits.

    The limits describe one run against one account, so the totals must hold for all workers together: concurrency,
    requests per minute, ``max_calls`` and ``max_tokens`` are divided (integers as evenly as possible, remainders
    to the first workers; concurrency at least 1 each). Timeouts, retries and prices apply per request and are kept.
    The split is static: a worker that finishes early does not hand its unused calls or tokens to the others.
    """

    def share(total: int | None, i: int, least: int = 0) -> int | None:
        return None if total is None else max(least, total // workers + (i < total % workers))

    return [replace(limits, concurrency=share(concurrency, i, least=1),
                    requests_per_minute=limits.requests_per_minute / workers if limits.requests_per_minute else None,
                    max_calls=share(limits.max_calls, i), max_tokens=share(limits.max_tokens, i))
            for i in range(workers)]


@dataclass(frozen=True)
class EndpointSpec:
    """What a worker needs to rebuild the endpoint.

    ``Secret`` refuses pickling on purpose, so the key is revealed here and travels as a task argument: held in
    Ray's memory while the task exists, never printed (this field is left out of ``repr``, so of error messages and
    logs) and wrapped in a ``Secret`` again on the worker. Nothing is read from the workers' environment: a cluster
    node need not have ``COTLIB_API_KEY`` set, and a key typed in a notebook after Ray started still reaches them.
    """

    base_url: str
    model: str
    key: str = field(repr=False)
    context_window: int = 32768

    @classmethod
    def of(cls, endpoint: cfgmod.Endpoint) -> EndpointSpec:
        return cls(endpoint.base_url, endpoint.model, endpoint.api_key.reveal(), endpoint.context_window)

    def endpoint(self) -> cfgmod.Endpoint:
        return cfgmod.Endpoint(self.base_url, self.model, cfgmod.Secret(self.key), self.context_window)


def _run_shard(pairs: list[QAPair], path: str, spec: EndpointSpec, cfg: GenerationConfig,
               limits: RunLimits) -> RunSummary:
    """One worker: the ordinary engine on its shard, into its own store."""
    return generate(pairs, path, endpoint=spec.endpoint(), cfg=cfg, limits=limits, progress=False)


def _combine(summaries: dict[int, RunSummary], questions: int, skipped: int, model: str, limits: RunLimits,
             seconds: float) -> RunSummary:
    """One summary of the whole run from the shards' summaries."""
    usage, by_method = Usage(), {}
    for s in summaries.values():
        usage.add(s.usage)
        for method, n in s.by_method.items():
            by_method[method] = by_method.get(method, 0) + n
    parts = [summaries[i] for i in sorted(summaries)]
    stopped = "; ".join(f"shard {i}: {summaries[i].stopped}" for i in sorted(summaries) if summaries[i].stopped)
    return RunSummary(questions, skipped + sum(s.skipped for s in parts), sum(s.generated for s in parts),
                      sum(s.verified for s in parts), by_method, usage, cost(usage, model, limits.prices),
                      round(seconds, 2), stopped or None, [e for s in parts for e in s.errors])


def _run_on_ray(ray: Any, parts: dict[int, list[QAPair]], shards: Path, spec: EndpointSpec, cfg: GenerationConfig,
                shares: list[RunLimits], progress: bool) -> tuple[dict[int, RunSummary], tuple[int, Exception] | None]:
    """Run the shards as Ray tasks; their summaries, and the first failure (the other shards still finish)."""
    task = ray.remote(num_cpus=1)(_run_shard)
    shard_of_ref: dict[Any, int] = {}
    summaries: dict[int, RunSummary] = {}
    failure: tuple[int, Exception] | None = None
    try:
        for i, part in parts.items():
            shard_of_ref[task.remote(part, str(shards / f"{i}.jsonl"), spec, cfg, shares[i])] = i
        total = sum(len(part) for part in parts.values())
        with progress_bar(total=total, desc="questions", unit="q", disable=not progress) as bar:
            pending = list(shard_of_ref)
            while pending:
                (ref,), pending = ray.wait(pending, num_returns=1)
                i = shard_of_ref[ref]
                try:
                    summaries[i] = ray.get(ref)
                except Exception as err:  # noqa: BLE001 (raised once the other shards are done and merged)
                    failure = failure or (i, err)
                bar.update(len(parts[i]))
    except BaseException:
        for ref in shard_of_ref:
            ray.cancel(ref, force=True)  # Ctrl-C: each store keeps what it finished; the next run merges it
        raise
    return summaries, failure


def generate_sharded(pairs: Iterable[QAPair], output: str | Path, endpoint: cfgmod.Endpoint | None = None,
                     cfg: GenerationConfig = GenerationConfig(), limits: RunLimits = RunLimits(), workers: int = 2,
                     progress: bool = False, address: str | None = None) -> RunSummary:
    """:func:`cotlib.generate.generate` over ``workers`` Ray tasks, each with its share of ``limits``
    (:func:`split_limits`); the shard stores are then merged into ``output``. Resumable like the engine.

    Ray is started with ``workers`` CPUs (no dashboard), or joins the cluster at ``address`` (or ``RAY_ADDRESS``),
    and is shut down afterwards; if Ray is already initialised it is used as it is (start it yourself to keep it up
    between runs: starting takes seconds). Workers write the shard stores and this process merges them, so on a
    cluster of several machines ``output`` must be on a filesystem they all share.
    The endpoint is resolved here, once (none given: the settings, maybe the local teacher), and sent to the workers
    as an :class:`EndpointSpec`. Shard stores left by an interrupted run are merged first, and questions already in
    ``output`` are not sent again (nor is Ray started when none is left), whatever the number of workers was before.
    If a shard fails, the others finish, everything done is merged, and the first failure is raised: cotlib's own
    errors (a refused key, a store in use) as they are, anything else (a crashed worker) as :class:`ShardError`.
    """
    if workers < 1:
        raise ShardError(f"workers must be at least 1, not {workers}")
    try:
        import ray
    except ImportError:
        raise ShardError(f"sharded generation needs Ray: {INSTALL_HINT}") from None
    start = time.perf_counter()
    endpoint = endpoint or cfgmod.resolve(cfgmod.load_settings())
    pairs, key, shards = list(pairs), cfg.key(endpoint.model), shard_dir(output)
    merge(sorted(shards.glob("*.jsonl")), output)  # leftovers of an interrupted run
    done = RecordStore(output).load()
    todo = [p for p in pairs if (p.id, key) not in done]
    parts: dict[int, list[QAPair]] = {}
    for pair in todo:
        parts.setdefault(shard_of(pair.id, workers), []).append(pair)
    shares = split_limits(limits, workers, limits.concurrency or default_concurrency(endpoint))

    summaries: dict[int, RunSummary] = {}
    failure: tuple[int, Exception] | None = None
    if parts:
        started_here = not ray.is_initialized()
        if started_here:
            joining = address or os.environ.get("RAY_ADDRESS")  # a cluster brings its own CPUs
            ray.init(address=address, num_cpus=None if joining else workers, include_dashboard=False)
        try:
            summaries, failure = _run_on_ray(ray, parts, shards, EndpointSpec.of(endpoint), cfg, shares, progress)
        finally:
            if started_here:
                ray.shutdown()
        merge([shards / f"{i}.jsonl" for i in sorted(parts)], output)
    if failure is not None:
        i, err = failure
        if isinstance(err, CotlibError):
            raise err
        raise ShardError(f"shard {i} failed: {type(err).__name__}: {err}") from err
    return _combine(summaries, len(pairs), len(pairs) - len(todo), endpoint.model, limits,
                    time.perf_counter() - start)
