"""`cotlib` command line and endpoint checks, against real loopback servers."""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cotlib import cli, config, local
from cotlib.config import Endpoint, Secret

GOOD_KEY = "sk-good-key-0123456789"


class FakeProvider(BaseHTTPRequestHandler):
    """A provider that lists one model and wants a key."""

    def do_GET(self):  # noqa: N802 (stdlib name)
        if self.headers.get("Authorization") != f"Bearer {GOOD_KEY}":
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps({"data": [{"id": "m1"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def provider():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeProvider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def test_check_endpoint_ok_bad_key_and_unreachable(provider):
    assert config.check_endpoint(Endpoint(provider, "m1", Secret(GOOD_KEY))).startswith("OK")
    assert "NOT listed" in config.check_endpoint(Endpoint(provider, "other", Secret(GOOD_KEY)))
    bad = config.check_endpoint(Endpoint(provider, "m1", Secret("sk-wrong-key-000000000")))
    assert bad.startswith("NOT OK") and "401" in bad and "bad or missing key" in bad and "wrong" not in bad
    closed = config.check_endpoint(Endpoint(f"http://127.0.0.1:{local.free_port()}/v1", "m1", Secret(GOOD_KEY)), timeout=2)
    assert closed.startswith("NOT OK") and "unreachable" in closed


def test_doctor_on_a_hosted_backend_hides_the_key(provider, clean_env, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clean_env.setenv("COTLIB_BASE_URL", provider)
    clean_env.setenv("COTLIB_MODEL", "m1")
    clean_env.setenv("COTLIB_API_KEY", GOOD_KEY)
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "Hardware" in out and "Recommended chapter-6 setup" in out and "reachability: OK" in out
    assert GOOD_KEY not in out and "set (hidden)" in out


def test_doctor_reports_bad_settings(clean_env, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clean_env.setenv("COTLIB_API_KEY", GOOD_KEY)
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "COTLIB_BASE_URL is not" in out and GOOD_KEY not in out


class ModelList(BaseHTTPRequestHandler):
    """A teacher's /v1/models, listing the local model's alias."""

    def do_GET(self):  # noqa: N802 (stdlib name)
        body = json.dumps({"data": [{"id": local.MODEL_ID}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_console_script_help_and_teacher_status(tmp_path):
    """`cotlib teacher status` says each state with its own exit code: 3 with no teacher, 0 with one serving."""
    run = [sys.executable, "-m", "cotlib.cli"]
    assert "doctor" in subprocess.run([*run, "--help"], capture_output=True, text=True, check=True).stdout
    env = {**os.environ, "COTLIB_CACHE": str(tmp_path)}
    status = subprocess.run([*run, "teacher", "status"], capture_output=True, text=True, env=env)
    assert (status.returncode, status.stdout.strip()) == (3, "not running")
    server = ThreadingHTTPServer(("127.0.0.1", 0), ModelList)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        (tmp_path / "teacher.json").write_text(json.dumps(
            {"pid": os.getpid(), "port": port, "model": local.MODEL_ID, "n_ctx": 2048, "log": "teacher.log"}))
        status = subprocess.run([*run, "teacher", "status"], capture_output=True, text=True, env=env)
        assert status.returncode == 0
        assert status.stdout.strip() == f"running at http://127.0.0.1:{port}/v1 (pid {os.getpid()})"
    finally:
        server.shutdown()
