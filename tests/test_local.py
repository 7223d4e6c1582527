"""The embedded teacher: a real llama.cpp server on loopback, driven through camel."""

import os
import signal

import pytest

from cotlib import config, local


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """A private cache dir, so this test starts its own teacher and never touches the suite's shared one."""
    monkeypatch.setenv("COTLIB_CACHE", str(tmp_path))
    yield tmp_path
    local.stop_teacher()


def test_gguf_ships_in_the_wheel():
    path = local.gguf_path()
    assert path.name == local.GGUF_NAME
    assert path.stat().st_size > 50_000_000
    assert path.read_bytes()[:4] == b"GGUF"


def test_start_chat_through_camel_stop(own_cache):
    assert local.running_teacher() is None
    teacher = local.ensure_teacher(n_threads=1, n_ctx=1024)
    assert local.port_in_use(teacher.port)
    assert local.ensure_teacher().pid == teacher.pid  # reused, not started twice
    assert local.running_teacher() == teacher

    endpoint = config.resolve(config.Settings())
    assert endpoint.base_url == teacher.base_url and endpoint.context_window == 1024
    agent = config.chat_agent(endpoint, "You are a helpful assistant.", temperature=0.0, max_tokens=24, seed=0)
    response = agent.step("Say hello.")
    assert response.msgs and response.msgs[0].content.strip()
    assert response.info["usage"]["completion_tokens"] > 0

    assert local.stop_teacher() is True
    assert not local.port_in_use(teacher.port)
    assert local.running_teacher() is None
    with pytest.raises(ProcessLookupError):
        os.kill(teacher.pid, 0)
    assert local.stop_teacher() is False


def test_stale_state_is_ignored_and_replaced(own_cache):
    (own_cache / "teacher.json").write_text('{"pid": 999999, "port": 1, "model": "x", "n_ctx": 1, "log": ""}')
    assert local.running_teacher() is None
    teacher = local.ensure_teacher(n_threads=1, n_ctx=512)
    assert teacher.pid != 999999 and local.running_teacher() == teacher


def test_teacher_that_ignores_sigterm_is_killed(own_cache):
    teacher = local.ensure_teacher(n_threads=1, n_ctx=512)
    os.killpg(teacher.pid, signal.SIGSTOP)  # a stopped process cannot act on SIGTERM
    assert local.stop_teacher(timeout=1.0) is True
    assert not local.port_in_use(teacher.port)


def test_startup_failure_reports_the_log(own_cache, monkeypatch):
    monkeypatch.setattr(local, "server_command", lambda port, threads, ctx: ["python3", "-c", "import sys; print('boom'); sys.exit(3)"])
    with pytest.raises(local.LocalTeacherError, match="exited with code 3[^$]*boom"):
        local.ensure_teacher(timeout=20)


@pytest.fixture(scope="module")
def student():
    """The student checkpoint from the shared cache (converted once, about 25 s)."""
    return local.student_checkpoint()


def without_llama_cpp(monkeypatch):
    """As in Colab, where cotlib's install compiles nothing."""
    real = local.find_spec
    monkeypatch.setattr(local, "find_spec", lambda name: None if name == "llama_cpp" else real(name))


def test_choose_teacher(own_cache, monkeypatch, student):
    monkeypatch.delenv(local.ENV_TEACHER, raising=False)
    assert local.choose_teacher() == ("llama.cpp", local.MODEL_ID)
    monkeypatch.setenv(local.ENV_TEACHER, "Qwen/Qwen2.5-Math-7B-Instruct")
    assert local.choose_teacher() == ("transformers", "Qwen/Qwen2.5-Math-7B-Instruct")
    monkeypatch.delenv(local.ENV_TEACHER)
    without_llama_cpp(monkeypatch)
    monkeypatch.setattr(local, "student_checkpoint", lambda: student)
    monkeypatch.setattr(local, "_cuda", lambda: True)
    monkeypatch.setenv("COTLIB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert local.choose_teacher() == ("transformers", local.HUB_TEACHER)  # Colab with a GPU
    monkeypatch.setenv("COTLIB_OFFLINE", "1")
    assert local.choose_teacher() == ("transformers", str(student))  # no Hub to download from
    monkeypatch.setattr(local, "_cuda", lambda: False)
    monkeypatch.setenv("COTLIB_OFFLINE", "0")
    assert local.choose_teacher() == ("transformers", str(student))  # Colab's CPU runtime
    monkeypatch.setenv(local.ENV_TEACHER, "llama.cpp")
    with pytest.raises(local.LocalTeacherError, match="llama-cpp-python is not installed"):
        local.choose_teacher()


def test_gguf_found_in_the_cache_without_the_wheel(own_cache, monkeypatch):
    monkeypatch.setattr(local, "find_spec", lambda name: None)
    with pytest.raises(local.LocalTeacherError, match="not found"):
        local.gguf_path()
    (own_cache / local.GGUF_NAME).write_bytes(b"GGUF")
    assert local.gguf_path() == own_cache / local.GGUF_NAME


def test_transformers_serve_teacher_without_llama_cpp(own_cache, monkeypatch, student):
    """Colab's teacher code path (transformers serve, no compile), here on the CPU with the student as the model."""
    (own_cache / "student").mkdir()
    os.symlink(student, own_cache / "student" / local.MODEL_ID)
    monkeypatch.delenv(local.ENV_TEACHER, raising=False)
    without_llama_cpp(monkeypatch)
    monkeypatch.setattr(local, "_cuda", lambda: False)

    endpoint = config.resolve(config.Settings())
    teacher = local.running_teacher()
    assert teacher.engine == "transformers" and endpoint.model == teacher.model == str(own_cache / "student" / local.MODEL_ID)
    assert "transformers.cli.transformers" in " ".join(local.serve_command(teacher.model, teacher.port, "cpu"))
    agent = config.chat_agent(endpoint, "You are a careful math tutor.", temperature=0.0, max_tokens=24, seed=0)
    response = agent.step("What is 2 + 3?")
    assert response.msgs[0].content.strip() and response.info["usage"]["completion_tokens"] > 0

    from cotlib import data, generate

    pairs = data.split(data.bundled("demo"), "train")[:2]
    summary = generate.generate(pairs, own_cache / "records.jsonl", endpoint=endpoint, progress=False,
                                cfg=generate.GenerationConfig(max_calls_per_question=2, max_new_tokens=48))
    records = generate.load_records(own_cache / "records.jsonl")
    assert summary.generated == 2 and summary.usage.calls >= 2
    assert {r.teacher for r in records} == {teacher.model}
    assert local.ensure_teacher().pid == teacher.pid  # reused
    assert local.stop_teacher() and not local.port_in_use(teacher.port)
