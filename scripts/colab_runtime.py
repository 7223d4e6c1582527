"""Colab's published GPU runtime, held as test data (``tests/data/colab/``), and the script that refreshes it.

Colab publishes what its runtime has in ``googlecolab/backend-info``: ``pip-freeze.gpu.txt`` (every package and
version) and ``os-info-gpu.txt`` (Ubuntu and Python). The Colab simulation (``tests/test_colab.py``) builds its
runtime from that list, so the install cell is tested against what learners get rather than a made-up set.

    python scripts/colab_runtime.py refresh              # download the latest list (GitHub) into tests/data/colab/
    python scripts/colab_runtime.py refresh --from DIR   # or copy it from a folder that holds the two files
    python scripts/colab_runtime.py show                 # the date, Python and the versions that matter here
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "colab"
REPO = "googlecolab/backend-info"
FILES = ("pip-freeze.gpu.txt", "os-info-gpu.txt")
SHOWN = ("torch", "ipython", "ipykernel", "psutil", "numpy", "pandas", "transformers", "datasets", "pip")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(freeze: str) -> dict[str, str]:
    """``pip freeze`` text -> {canonical name: version}: the ``name==version`` lines, with local build tags dropped
    (``torch==2.11.0+cu128`` -> 2.11.0, PyPI's build of that release); direct URLs (``name @ url``) are left out."""
    found = {}
    for line in freeze.splitlines():
        hit = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s+;]+)(?:\+\S+)?", line.strip())
        if hit:
            found[canonical(hit[1])] = hit[2]
    return found


def python_version(os_info: str) -> str:
    """The runtime's Python (``Python 3.13.15`` -> ``3.13.15``)."""
    hit = re.search(r"^Python (\d+\.\d+\.\d+)", os_info, re.M)
    if not hit:
        raise ValueError("os-info-gpu.txt names no Python version")
    return hit[1]


def published(folder: Path = DATA) -> str:
    """The date the held list was published (SOURCE.txt: ``..., 2026-08-19)``)."""
    hit = re.search(r"\d{4}-\d{2}-\d{2}", (folder / "SOURCE.txt").read_text())
    if not hit:
        raise ValueError(f"{folder / 'SOURCE.txt'} names no date")
    return hit[0]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as reply:
        return reply.read()


def refresh(dest: Path = DATA, source: Path | None = None) -> str:
    """Replace the held list with the latest one (or ``source``'s copy) and record where and when it came from."""
    dest.mkdir(parents=True, exist_ok=True)
    if source is not None:
        for name in FILES:
            shutil.copyfile(source / name, dest / name)
        note = (source / "SOURCE.txt").read_text().strip() if (source / "SOURCE.txt").exists() else f"copied from {source}"
    else:
        commit = json.loads(_get(f"https://api.github.com/repos/{REPO}/commits?path={FILES[0]}&per_page=1"))[0]
        sha, date = commit["sha"], commit["commit"]["committer"]["date"][:10]
        for name in FILES:
            (dest / name).write_bytes(_get(f"https://raw.githubusercontent.com/{REPO}/{sha}/{name}"))
        note = f"Colab GPU runtime package list and OS/Python versions, as published in {REPO} (commit {sha[:7]}, {date})."
    pins((dest / FILES[0]).read_text())  # fails loudly on a file that is not a freeze list
    python_version((dest / FILES[1]).read_text())
    (dest / "SOURCE.txt").write_text(note + "\n")
    return note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    again = sub.add_parser("refresh", help="download the latest published list into tests/data/colab/")
    again.add_argument("--from", dest="source", type=Path, help="copy the two files from this folder instead")
    sub.add_parser("show", help="the held list's date, Python and key versions")
    args = parser.parse_args(argv)
    if args.command == "refresh":
        print(refresh(DATA, args.source))
    found = pins((DATA / FILES[0]).read_text())
    print(f"Colab GPU runtime of {published()}: Python {python_version((DATA / FILES[1]).read_text())}, "
          + ", ".join(f"{n} {found[n]}" for n in SHOWN if n in found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
