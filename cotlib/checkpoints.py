"""Chapter checkpoints: any chapter can start on its own (a fresh Colab runtime, a workshop that begins at chapter 4).

Each chapter reads what the previous one left in ``outputs/``. When those files are missing, :func:`ensure` copies
the bundled ones, made by this project's own pipeline (``make checkpoints`` runs chapters 2-5 with the local teacher
and keeps their outputs, see :func:`save`), and says so in one line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

from cotlib import __version__
from cotlib.store import load_records

DIR = Path(__file__).with_name("data") / "checkpoints"
#: chapter -> the files in outputs/ it reads, and which chapter writes each
NEEDS: dict[int, dict[str, int]] = {
    3: {"qa_train.jsonl": 2, "qa_heldout.jsonl": 2},
    4: {"cot_records.jsonl": 3, "step_label_records.jsonl": 3, "qa_train.jsonl": 2, "qa_heldout.jsonl": 2},
    5: {"cot_records.jsonl": 3, "alpaca_train.jsonl": 4, "alpaca_test.jsonl": 4, "curation.json": 4},
    6: {"qa_heldout.jsonl": 2, "alpaca_train.jsonl": 4, "alpaca_test.jsonl": 4},
}
FILES = sorted({name for files in NEEDS.values() for name in files})


def manifest() -> dict:
    """How the bundled checkpoint was made (teacher, date, cotlib version, commit)."""
    return json.loads((DIR / "manifest.json").read_text())


def ensure(chapter: int, outputs: str | Path = "outputs") -> Path:
    """Make sure ``outputs/`` holds what ``chapter`` reads, copying bundled files for what is missing; returns it."""
    outputs = Path(outputs)
    missing = [name for name in NEEDS[chapter] if not (outputs / name).is_file()]
    if missing:
        outputs.mkdir(parents=True, exist_ok=True)
        for name in missing:
            shutil.copyfile(DIR / name, outputs / name)
        writers = sorted({NEEDS[chapter][name] for name in missing})
        made = manifest()
        print(f"{', '.join(missing)} not in {outputs}/ (chapter {', '.join(map(str, writers))} not run here): "
              f"using the bundled checkpoint (made by `make checkpoints` with {made['teacher']}, {made['date']})")
    return outputs


def save(outputs: str | Path, dest: str | Path = DIR) -> Path:
    """Keep the files a pipeline run left in ``outputs`` as the bundled checkpoint, with a manifest."""
    outputs, dest = Path(outputs), Path(dest)
    records = load_records(outputs / "cot_records.jsonl")
    dest.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(outputs / name, dest / name)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    made = {"teacher": ", ".join(sorted({r.teacher or "?" for r in records})), "date": date.today().isoformat(),
            "cotlib": __version__, "commit": commit or None, "files": FILES}
    (dest / "manifest.json").write_text(json.dumps(made, indent=2) + "\n")
    return dest


if __name__ == "__main__":  # make checkpoints: python -m cotlib.checkpoints save OUTPUTS [DEST]
    if len(sys.argv) not in (3, 4) or sys.argv[1] != "save":
        sys.exit("usage: python -m cotlib.checkpoints save OUTPUTS [DEST]")
    print(save(*sys.argv[2:]))
