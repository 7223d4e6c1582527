"""``cotlib`` on the command line: the whole pipeline, a command per chapter.

``doctor``, ``teacher start|stop|status`` and ``student`` set up; ``generate`` (chapter 3), ``export`` (4), ``push``
(5), ``train`` and ``eval`` (6) run the pipeline. Every field of the config dataclasses is a flag
(:mod:`cotlib.flags`); ``--config FILE`` (JSON or TOML, a section per dataclass, see :func:`sections`) sets them
for a whole run and flags win over it; ``--print-config`` prints the resolved settings as such a file.
``generate`` saves them beside its records and ``push`` shows them in the dataset card. Heavy libraries (torch,
Unsloth, datasets) load inside the commands only.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cotlib import __version__, config, errors, flags, hardware, local
from cotlib.recipe import TrainConfig

EXPORT_FORMATS = ("alpaca", "chat", "sharegpt", "prm")
RUN_SECTIONS = ("teacher", "generation", "limits")  # what a generation run's saved settings hold
NOTES = {  # a few words for the flags whose name is not enough
    "base_url": "OpenAI-compatible URL or provider name; unset: the COTLIB_* settings (or the local teacher)",
    "model": "model id at --base-url",
    "api_key_env": "environment variable (or .env entry) holding the key",
    "language": "en or zh",
    "rationalize": "last resort: hint with the golden answer (flagged)",
    "concurrency": "requests in flight; unset: 2 for a local server, 8 hosted",
    "timeout": "seconds per request",
    "max_retries": "retries per request (429, 5xx, timeouts, malformed replies)",
    "max_calls": "stop the run after this many calls",
    "formats": "which files: alpaca (alpaca.json, alpaca_train/test.jsonl), chat (chat.jsonl), prm (prm.jsonl)",
    "metadata": "keep id, answer, method, verified, teacher in the split files",
}


@dataclass(frozen=True)
class TeacherChoice:
    """Which teacher answers; unset, the COTLIB_* settings (or the local teacher)."""

    base_url: str | None = None
    model: str | None = None
    api_key_env: str = config.ENV_API_KEY  # the variable's name: a key is never in a config


@dataclass(frozen=True)
class ExportSettings:
    """What chapter 4 keeps from the records, and which files it writes."""

    formats: tuple[str, ...] = EXPORT_FORMATS
    test_fraction: float = 0.2
    include_unverified: bool = False
    include_rationalized: bool = True
    metadata: bool = True
    reasoning: bool = False  # a reasoning teacher's trace before each answer, as <think>…</think>

    def __post_init__(self) -> None:
        if not set(self.formats) <= set(EXPORT_FORMATS):
            raise ValueError(f"formats must be among {', '.join(EXPORT_FORMATS)}, not {' '.join(self.formats)}")
        if not 0 <= self.test_fraction < 1:
            raise ValueError(f"test_fraction must be at least 0 and below 1, not {self.test_fraction}")


def sections() -> dict[str, type]:
    """Config-file section → the dataclass it sets (``[generation.search]`` is the nested ``SearchParams``)."""
    from cotlib.generate import GenerationConfig, RunLimits

    return {"teacher": TeacherChoice, "generation": GenerationConfig, "limits": RunLimits, "export": ExportSettings,
            "train": TrainConfig}


def run_config_path(records: str | Path) -> Path:
    """Where ``cotlib generate`` saves a run's settings: beside its records (``cot_records.config.json``)."""
    return Path(records).with_suffix(".config.json")


def _add_settings(parser: argparse.ArgumentParser, *names: str) -> None:
    parser.add_argument("--config", metavar="FILE", help="settings file, JSON or TOML, with sections "
                        f"{', '.join(f'[{n}]' for n in names)}; flags win over it")
    parser.add_argument("--print-config", action="store_true", help="print the resolved settings as a config file "
                        "and stop")
    for name in names:
        flags.add_flags(parser, sections()[name], name, NOTES)


def _settings(args: argparse.Namespace, *names: str, **bases: Any) -> list[Any]:
    """The named sections: their defaults (or ``bases``), then ``--config FILE``, then the flags given."""
    known = sections()
    file = flags.read_config(args.config, known) if args.config else {}
    try:
        return [flags.build(known[name], args, file.get(name), bases.get(name)) for name in names]
    except (TypeError, ValueError) as err:
        raise errors.ConfigError(f"invalid setting: {err}") from None


def _print_config(**resolved: Any) -> int:
    print(json.dumps(flags.as_config(**resolved), indent=2, ensure_ascii=False))
    return 0


def _doctor(args: argparse.Namespace) -> int:
    report = hardware.detect()
    setup = hardware.recommend(report)
    print(f"cotlib {__version__}\n\nHardware")
    for key, value in report.as_dict().items():
        print(f"  {key:<10} {value}")
    print(f"\nRecommended chapter-6 setup: {setup.model} on {setup.device}, max_seq_length={setup.max_seq_length}, "
          f"batch={setup.batch_size}, 4-bit={setup.load_in_4bit}\n  {setup.why}")
    try:
        settings = config.load_settings()
    except config.ConfigError as err:
        print(f"\nBackend settings: ERROR: {err}")
        return 1
    print("\nBackend")
    for key, value in settings.describe().items():
        print(f"  {key:<10} {value}")
    if settings.backend == "local" and not args.start_local and local.running_teacher() is None:
        print("  reachability: local teacher not running (start it with `cotlib teacher start`)")
        return 0
    try:
        endpoint = config.resolve(settings)
    except local.LocalTeacherError as err:
        print(f"  reachability: NOT OK: {err}")
        return 1
    line = config.check_endpoint(endpoint)
    print(f"  reachability: {line}")
    return 0 if line.startswith("OK") else 1


def _teacher(args: argparse.Namespace) -> int:
    if args.action == "start":
        teacher = local.ensure_teacher()
        print(f"local teacher {teacher.model} at {teacher.base_url} (pid {teacher.pid}, log {teacher.log})")
    elif args.action == "stop":
        print("stopped" if local.stop_teacher() else "no local teacher was running")
    else:
        teacher = local.running_teacher()
        print(f"running at {teacher.base_url} (pid {teacher.pid})" if teacher else "not running")
        return 0 if teacher else 3
    return 0


def _endpoint(teacher: TeacherChoice) -> config.Endpoint:
    """--base-url/--model/--api-key-env override the COTLIB_* settings; without them, settings (or the local teacher)."""
    if not teacher.base_url:
        return config.resolve(config.load_settings())
    key = os.environ.get(teacher.api_key_env) or config.dotenv_value(teacher.api_key_env) or ""  # env, then .env
    env = {config.ENV_BASE_URL: teacher.base_url, config.ENV_MODEL: teacher.model or "", config.ENV_API_KEY: key}
    return config.resolve(config.load_settings(environ=env, dotenv_path=""))


def _generate(args: argparse.Namespace) -> int:
    from cotlib import data, generate

    teacher, cfg, limits = _settings(args, *RUN_SECTIONS)
    if args.print_config:
        return _print_config(teacher=teacher, generation=cfg, limits=limits)
    pairs = data.load_qa(args.input)
    endpoint = _endpoint(teacher)
    if args.split:
        pairs = data.split(pairs, args.split)
    pairs = pairs[: args.limit] if args.limit else pairs
    try:
        summary = generate.generate(pairs, args.output, endpoint=endpoint, cfg=cfg, limits=limits,
                                    progress=not args.no_progress)
    except errors.StoreError as err:  # another run holds the file, it is not a records file, or the disk is full
        print(f"error: {err}", file=sys.stderr)
        return 2
    except errors.AuthError as err:  # one line for the whole run, not one per request
        print(f"error: {err}", file=sys.stderr)
        return 3
    command = ["cotlib", "generate", "--input", args.input, "--output", args.output]
    if args.split:
        command += ["--split", args.split]
    if args.limit:
        command += ["--limit", str(args.limit)]
    saved = {flags.COMMAND: shlex.join(command), **flags.as_config(teacher=teacher, generation=cfg, limits=limits)}
    settings = data.write_atomic(run_config_path(args.output), json.dumps(saved, indent=2, ensure_ascii=False) + "\n")
    u = summary.usage
    print(f"{summary.generated} generated ({summary.skipped} already done), {summary.verified} verified "
          f"({summary.pass_rate:.0%}); by method: {summary.by_method}; {u.calls} calls, {u.retries} retries, "
          f"{u.tokens_in} + {u.tokens_out} tokens; {summary.seconds:.1f} s -> {args.output} (settings: {settings})")
    if summary.stopped:
        print(f"stopped early: {summary.stopped}; re-run the same command to continue", file=sys.stderr)
    for line in summary.errors:
        print(f"error: {line}", file=sys.stderr)
    return 1 if summary.errors else 0


def _export(args: argparse.Namespace) -> int:
    from cotlib import data, export, generate

    (settings,) = _settings(args, "export")
    if args.print_config:
        return _print_config(export=settings)
    records = generate.load_records(args.records)
    if not records:
        raise errors.RecordError(f"{args.records}: no records (run `cotlib generate` first)")
    selection = export.select(records, include_unverified=settings.include_unverified,
                              include_rationalized=settings.include_rationalized)
    if args.references:
        selection = export.add_references(selection, data.load_qa(args.references))
    for what, count in selection.summary().items():
        print(f"{what:<32} {count}")
    files: dict[str, list[dict]] = {}
    if "alpaca" in settings.formats:  # as chapter 4: alpaca.json plain, the splits with metadata
        rows = export.to_alpaca(selection, metadata=settings.metadata, reasoning=settings.reasoning)
        split = export.train_test_split(rows, settings.test_fraction)
        files |= {"alpaca.json": export.to_alpaca(selection, reasoning=settings.reasoning),
                  "alpaca_train.jsonl": split["train"], "alpaca_test.jsonl": split["test"]}
    if "chat" in settings.formats:
        files["chat.jsonl"] = export.to_chat(selection, reasoning=settings.reasoning)
    if "sharegpt" in settings.formats:
        files["sharegpt.jsonl"] = export.to_sharegpt(selection, reasoning=settings.reasoning)
    if "prm" in settings.formats:
        files["prm.jsonl"] = export.to_prm(records)
    for name, rows in files.items():
        write = export.write_json if name.endswith(".json") else export.write_jsonl
        print(f"{len(rows):>6} rows -> {write(rows, Path(args.output_dir) / name)}")
    return 0


def _run_config(args: argparse.Namespace) -> dict[str, Any] | None:
    """The generation run's settings for the card: ``--config FILE``, else those saved beside the records."""
    path = Path(args.config) if args.config else run_config_path(args.records)
    if not args.config and not path.is_file():
        print(f"no run settings at {path}: the card gets no 'Reproduce this dataset' section", file=sys.stderr)
        return None
    known = sections()
    file = flags.read_config(path, known)
    resolved = flags.as_config(**{name: flags.build(known[name], argparse.Namespace(), file.get(name))
                                  for name in RUN_SECTIONS})
    return {flags.COMMAND: file[flags.COMMAND], **resolved} if flags.COMMAND in file else resolved


def _secrets(token: str) -> list[str]:
    """The token, and the value of every environment or .env variable named like a key or a token."""
    from dotenv import dotenv_values, find_dotenv

    path = find_dotenv(usecwd=True)
    named = {**(dotenv_values(path) if path else {}), **os.environ}
    return [token, *(v for k, v in named.items() if v and len(v) >= 8 and flags.SECRET_NAME.search(k))]


def _push(args: argparse.Namespace) -> int:
    from cotlib import export, generate, hub

    if not args.local_hub and "/" not in args.repo_id:
        raise errors.HubError(f"--repo-id {args.repo_id}: give NAMESPACE/NAME (your user or organization name)")
    run_config = _run_config(args)
    if args.local_hub:  # chapter 5's loopback Hub, serving outputs/hub while this command runs
        connection = hub.connect(dataset_name=args.repo_id.split("/")[-1], root=Path(args.outputs) / "hub")
    else:
        token = hub.get_token() or config.dotenv_value("HF_TOKEN")  # HF_TOKEN, `hf auth login`, then .env
        if not token:
            raise errors.HubError("no Hugging Face token: set HF_TOKEN (environment or .env) or run `hf auth login`")
        connection = hub.Connection(args.repo_id, token)
    records = generate.load_records(args.records)
    splits = export.read_splits(args.outputs)
    rows = sum(len(split) for split in splits.values())
    references = sum(row.get("method") == "reference" for split in splits.values() for row in split)
    languages = args.languages or sorted({r.language for r in records}) or ["en"]
    curation_file = Path(args.outputs) / "curation.json"  # what chapter 4 (or curate) dropped, and why
    curation = json.loads(curation_file.read_text()) if curation_file.is_file() else None
    card = hub.build_card(connection.repo_id, rows, records, languages=languages, pretty_name=args.pretty_name,
                          reference_rows=references, run_config=run_config, curation=curation)
    if any(secret in str(card) for secret in _secrets(connection.token)):
        raise errors.HubError("the card would show a token or a key from the environment or .env: nothing pushed")
    url = hub.push_dataset(export.to_dataset(splits), connection.repo_id, card=card, private=args.private,
                           token=connection.token)
    print(f"{rows} rows ({', '.join(f'{name} {len(split)}' for name, split in splits.items())}) and the card -> {url}")
    return 0


def _train_config(args: argparse.Namespace) -> TrainConfig:
    """The [train] settings on this machine's base (``hardware.recommend``): the GPU recipe, or the CPU one on the
    local student."""
    base = TrainConfig.for_machine()
    return _settings(args, "train", train=base)[0]


def _train(args: argparse.Namespace) -> int:
    from cotlib import data, export, train  # first: Unsloth patches trl/transformers before they load

    cfg = _train_config(args)
    if args.print_config:
        return _print_config(train=cfg)
    from datasets import Dataset

    rows = export.read_alpaca(args.data)
    held = export.read_alpaca(args.eval_data)[: args.eval_rows] if args.eval_data else None
    model, tokenizer, path = train.load_model(cfg)
    print(f"training path: {path}; {len(rows)} rows, {cfg.max_steps} steps of {cfg.batch_size} x {cfg.grad_accum}")
    to_text = train.formatting_func(tokenizer.eos_token)
    dataset = Dataset.from_list(rows).map(to_text, batched=True)
    held_out = Dataset.from_list(held).map(to_text, batched=True) if held else None
    trainer = train.make_trainer(train.for_training(model), tokenizer, dataset, cfg, eval_dataset=held_out)
    result = train.timed_train(trainer, resume=args.resume)
    adapter = train.save_adapter(model, tokenizer, Path(cfg.output_dir) / "adapter")
    command = ["cotlib", "train", "--data", args.data]
    command += ["--eval-data", args.eval_data, f"--eval-rows={args.eval_rows}"] if args.eval_data else []
    saved = {flags.COMMAND: shlex.join(command), **flags.as_config(train=cfg)}
    settings = data.write_atomic(Path(cfg.output_dir) / "train.config.json", json.dumps(saved, indent=2) + "\n")
    losses = result["losses"]
    validation = list(train.loss_curves(trainer)["validation loss"].values())
    print(f"{result['steps']} steps in {result['seconds']} s"
          + (f" (resumed from {result['resumed_from']})" if result["resumed_from"] else "")
          + (f"; training loss {losses[0]:.3f} -> {losses[-1]:.3f}" if losses else "")
          + (f"; validation loss {validation[-1]:.3f}" if validation else ""))
    print(f"adapter -> {adapter} (settings: {settings})")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from cotlib import data, train  # first: Unsloth patches trl/transformers before they load

    cfg = _train_config(args)
    pairs = data.load_qa(args.questions)[: args.limit or None]
    if args.adapter:
        model, tokenizer = train.load_adapter(args.adapter, cfg)
    else:
        model, tokenizer, _ = train.load_model(cfg)  # a fresh adapter changes nothing: the base model answers
        model = train.for_inference(model)
    scores, answers = train.evaluate(model, tokenizer, pairs, max_new_tokens=args.max_new_tokens)
    what = args.adapter or f"base model {cfg.model_name}"
    print(f"{what}: {scores.questions} questions, accuracy {scores.accuracy:.0%}, one \\boxed{{}} answer "
          f"{scores.one_boxed_share:.0%}, {scores.mean_chars:.0f} characters on average")
    if args.report:
        report = {"model": what, "questions": args.questions, "backend": train.backend(), "scores": asdict(scores),
                  "answers": [{"id": p.id, "golden": p.answer, "answer": a} for p, a in zip(pairs, answers)]}
        text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
        print(f"report -> {data.write_atomic(args.report, text)}")
    return 0


def _student(args: argparse.Namespace) -> int:
    print(local.student_checkpoint())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cotlib", description="Synthesize verified chain-of-thought data and fine-tune on it.")
    parser.add_argument("--version", action="version", version=f"cotlib {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    doctor = sub.add_parser("doctor", help="hardware check, recommended training setup, backend reachability")
    doctor.add_argument("--start-local", action="store_true", help="start the local teacher if it is not running")
    doctor.set_defaults(func=_doctor)
    teacher = sub.add_parser("teacher", help="start/stop the offline local teacher server")
    teacher.add_argument("action", choices=["start", "stop", "status"])
    teacher.set_defaults(func=_teacher)
    student = sub.add_parser("student", help="materialize the local student checkpoint and print its path")
    student.set_defaults(func=_student)

    gen = sub.add_parser("generate", help="chapter 3: generate verified chain-of-thought records (resumable)",
                         description="Generate verified chain-of-thought records; the resolved settings are saved "
                                     "beside the records (OUTPUT with the suffix .config.json).")
    gen.add_argument("--input", default="outputs/qa_train.jsonl", help="question/answer file, JSON or JSONL "
                     "(default: %(default)s)")
    gen.add_argument("--output", default="outputs/cot_records.jsonl", help="records file (JSONL); re-running "
                     "resumes it (default: %(default)s)")
    gen.add_argument("--split", choices=["train", "heldout"], help="only this part of a split file")
    gen.add_argument("--limit", type=int, help="only the first N questions")
    gen.add_argument("--no-progress", action="store_true")
    _add_settings(gen, *RUN_SECTIONS)
    gen.set_defaults(func=_generate)

    exp = sub.add_parser("export", help="chapter 4: records to Alpaca/chat/step-label files, split train/test")
    exp.add_argument("--records", default="outputs/cot_records.jsonl",
                     help="chapter 3's records (default: %(default)s)")
    exp.add_argument("--output-dir", default="outputs", help="where the files go (default: %(default)s)")
    exp.add_argument("--references", metavar="QA_FILE", help="top up with the reference solutions of this "
                     "question file (e.g. outputs/qa_train.jsonl), labelled method 'reference'")
    _add_settings(exp, "export")
    exp.set_defaults(func=_export)

    push = sub.add_parser("push", help="chapter 5: publish the exported splits and a dataset card on the Hub",
                          description="Publish chapter 4's splits with a dataset card; the card shows the generation "
                                      "run's settings (saved beside the records, or --config FILE). The token comes "
                                      "from HF_TOKEN (environment or .env) or `hf auth login`, never from a flag.")
    push.add_argument("--repo-id", required=True, help="NAMESPACE/NAME (with --local-hub: NAME, as the loopback user)")
    push.add_argument("--outputs", default="outputs", help="folder with alpaca_train/test.jsonl (default: %(default)s)")
    push.add_argument("--records", default="outputs/cot_records.jsonl", help="chapter 3's records, for the card "
                      "(default: %(default)s)")
    push.add_argument("--config", metavar="FILE", help="the run's settings for the card (default: beside the records)")
    push.add_argument("--languages", nargs="+", help="the card's languages (default: those of the records)")
    push.add_argument("--pretty-name", help="the card's title (default: the repo name)")
    push.add_argument("--private", action="store_true")
    push.add_argument("--local-hub", action="store_true", help="the loopback Hub on this machine (stored in "
                      "OUTPUTS/hub), as chapter 5 uses offline")
    push.set_defaults(func=_push)

    tr = sub.add_parser("train", help="chapter 6: LoRA fine-tuning on Alpaca rows, saving the adapter",
                        description="LoRA SFT as chapter 6 does it. The defaults shown are the GPU recipe; on a CPU "
                                    "the CPU setup on the local student applies (see --print-config). The adapter goes "
                                    "to OUTPUT_DIR/adapter.")
    tr.add_argument("--data", default="outputs/alpaca_train.jsonl",
                    help="Alpaca rows, JSON or JSONL (default: %(default)s)")
    tr.add_argument("--eval-data", help="rows for a validation loss, e.g. outputs/alpaca_test.jsonl")
    tr.add_argument("--eval-rows", type=int, default=32, help="at most this many of them (default: %(default)s)")
    tr.add_argument("--no-resume", dest="resume", action="store_false", help="start over instead of resuming from "
                    "the last checkpoint in OUTPUT_DIR")
    _add_settings(tr, "train")
    tr.set_defaults(func=_train)

    ev = sub.add_parser("eval", help="chapter 6: accuracy on held-out questions, of an adapter or the base model")
    ev.add_argument("--adapter", help="a saved adapter (default: the base model of the [train] settings)")
    ev.add_argument("--questions", default="outputs/qa_heldout.jsonl",
                    help="question/answer file (default: %(default)s)")
    ev.add_argument("--limit", type=int, help="only the first N questions")
    ev.add_argument("--max-new-tokens", type=int, default=160, help="per answer (default: %(default)s)")
    ev.add_argument("--report", metavar="FILE", help="write the scores and answers as JSON")
    ev.add_argument("--config", metavar="FILE", help="settings file whose [train] section picks the base model")
    ev.set_defaults(func=_eval)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except errors.CotlibError as err:  # each names what failed: one line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
