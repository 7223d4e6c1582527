"""``cotlib`` on the command line: ``doctor``, ``teacher start|stop|status``, ``generate``, ``student``."""

from __future__ import annotations

import argparse
import os
import sys

from cotlib import __version__, config, hardware, local


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
    except local.TeacherError as err:
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


def _endpoint(args: argparse.Namespace) -> config.Endpoint:
    """--base-url/--model/--api-key-env override the COTLIB_* settings; without them, settings (or the local teacher)."""
    if not args.base_url:
        return config.resolve(config.load_settings())
    key = os.environ.get(args.api_key_env) or config.dotenv_value(args.api_key_env) or ""  # env first, then .env
    env = {config.ENV_BASE_URL: args.base_url, config.ENV_MODEL: args.model or "", config.ENV_API_KEY: key}
    return config.resolve(config.load_settings(environ=env, dotenv_path=""))


def _generate(args: argparse.Namespace) -> int:
    from cotlib import data, generate

    try:
        pairs = data.load_qa(args.input)
        endpoint = _endpoint(args)
    except (data.QADataError, config.ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.split:
        pairs = data.split(pairs, args.split)
    pairs = pairs[: args.limit] if args.limit else pairs
    cfg = generate.GenerationConfig(language=args.language, max_calls_per_question=args.max_calls_per_question,
                                    rationalize=args.rationalize)
    limits = generate.RunLimits(concurrency=args.concurrency, requests_per_minute=args.rpm, max_calls=args.max_calls,
                                timeout=args.timeout, max_retries=args.max_retries)
    try:
        summary = generate.generate(pairs, args.output, endpoint=endpoint, cfg=cfg, limits=limits,
                                    progress=not args.no_progress)
    except generate.StoreError as err:  # another run holds the file, it is not a records file, or the disk is full
        print(f"error: {err}", file=sys.stderr)
        return 2
    except generate.AuthError as err:  # one line for the whole run, not one per request
        print(f"error: {err}", file=sys.stderr)
        return 3
    u = summary.usage
    print(f"{summary.generated} generated ({summary.skipped} already done), {summary.verified} verified "
          f"({summary.pass_rate:.0%}); by method: {summary.by_method}; {u.calls} calls, {u.retries} retries, "
          f"{u.tokens_in} + {u.tokens_out} tokens; {summary.seconds:.1f} s -> {args.output}")
    if summary.stopped:
        print(f"stopped early: {summary.stopped}; re-run the same command to continue", file=sys.stderr)
    for line in summary.errors:
        print(f"error: {line}", file=sys.stderr)
    return 1 if summary.errors else 0


def run_limits_defaults():  # -> generate.RunLimits (imported lazily: `cotlib teacher` needs no camel)
    from cotlib.generate import RunLimits

    return RunLimits()


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
    gen = sub.add_parser("generate", help="generate verified chain-of-thought records (resumable)")
    gen.add_argument("--input", required=True, help="question/answer file (JSON or JSONL)")
    gen.add_argument("--output", required=True, help="records file (JSONL); re-running resumes it")
    gen.add_argument("--base-url", help="OpenAI-compatible URL or provider name (default: COTLIB_* settings)")
    gen.add_argument("--model", help="model id at --base-url")
    gen.add_argument("--api-key-env", default=config.ENV_API_KEY, help="environment variable holding the key")
    gen.add_argument("--concurrency", type=int, help="requests in flight (default: 2 for a local server, 8 hosted)")
    gen.add_argument("--max-calls-per-question", type=int, default=24)
    gen.add_argument("--max-calls", type=int, help="stop the run after this many calls")
    gen.add_argument("--rpm", type=float, help="requests-per-minute limit")
    limits = run_limits_defaults()
    gen.add_argument("--timeout", type=float, default=limits.timeout, help="seconds per request")
    gen.add_argument("--max-retries", type=int, default=limits.max_retries,
                     help="retries per request (429, 5xx, timeouts, malformed replies)")
    gen.add_argument("--language", choices=["en", "zh"], default="en")
    gen.add_argument("--rationalize", action="store_true", help="last resort: hint with the golden answer (flagged)")
    gen.add_argument("--split", choices=["train", "heldout"], help="only this part of a split file")
    gen.add_argument("--limit", type=int, help="only the first N questions")
    gen.add_argument("--no-progress", action="store_true")
    gen.set_defaults(func=_generate)
    student = sub.add_parser("student", help="materialize the local student checkpoint and print its path")
    student.set_defaults(func=_student)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
