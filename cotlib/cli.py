"""``cotlib`` on the command line: ``doctor``, ``teacher start|stop|status``, ``student``."""

from __future__ import annotations

import argparse
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
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
