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
    with pytest.raises(local.TeacherError, match="exited with code 3[^$]*boom"):
        local.ensure_teacher(timeout=20)
