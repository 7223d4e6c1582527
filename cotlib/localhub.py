"""A small Hugging Face Hub look-alike served on 127.0.0.1, for tests, CI and offline workshops.

``datasets.Dataset.push_to_hub``, ``huggingface_hub.DatasetCard.push_to_hub`` and ``datasets.load_dataset`` work
against it unchanged, once the client is pointed at it *before* huggingface_hub/datasets are imported (both read
their endpoint at import time)::

    HF_ENDPOINT=http://127.0.0.1:PORT  HF_HUB_DISABLE_XET=1  HF_TOKEN=<token>  python my_script.py

(plus ``NO_PROXY=127.0.0.1`` behind an HTTP proxy) and, in that process, ``route_client(endpoint)`` before pushing a
card: ``DatasetCard.validate`` posts to the hard-coded https://huggingface.co, which this reroutes to the local hub.
Start the server with ``python -m cotlib.localhub --root DIR --token TOKEN=USER`` or ``LocalHub(root, tokens)``.

Storage under ``root``: ``objects/<sha256>`` holds every file's bytes (LFS objects by their sha256), and
``repos/<type>/<namespace>/<name>/`` holds ``repo.json``, ``commits/<id>.json`` (each commit lists the whole tree
and its parent, under a fresh 40-hex id) and ``refs/heads/main`` (the latest commit).

Auth: ``Authorization: Bearer <token>`` with tokens mapped to user names; an unknown token gets 401, writing
outside the token's own namespace 403, and private repos are a 404 to everyone but their owner.

Limits:
- no Xet storage: clients must set ``HF_HUB_DISABLE_XET=1`` (the server never advertises Xet);
- no git protocol: only the HTTP API, and Git-LFS batch uploads of the basic single-part kind;
- one branch, ``main``: no other branches, tags, pull requests; no organizations, gated repos, or dataset-viewer
  (datasets-server) endpoints (the client shrugs off their absence);
- not the Hub's dataset-card validator: ``/api/validate-yaml`` only checks that the front matter is closed, and repo
  info has no ``cardData`` (the standard library has no YAML parser);
- request bodies are held in memory, state is plain files, every write takes one lock. Loopback only.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import re
import secrets
import shutil
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}  # repo type -> URL prefix
_LFS_SUFFIXES = (".parquet", ".arrow", ".bin", ".safetensors", ".pt", ".ckpt", ".npy", ".gguf", ".zip", ".gz", ".tar")
_LFS_MIN_SIZE = 10 * 1024 * 1024
_ANONYMOUS_MAX_BODY = 64 * 1024  # requests without a token only read: they never need a large body
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_OID, _SHA256 = re.compile(r"[0-9a-f]{40}"), re.compile(r"[0-9a-f]{64}")
_GITATTRIBUTES = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in _LFS_SUFFIXES)


class HubError(Exception):
    """An HTTP error answered the way the Hub does (``X-Error-Code`` drives huggingface_hub's exception type)."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _write(path: Path, data: bytes) -> None:
    """Write atomically, so concurrent readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _flag(value: object) -> bool:
    return str(value).lower() in ("1", "true")


def _lfs_info(f: dict) -> dict:
    return {"size": f["size"], "sha256": f["sha256"], "pointerSize": len(_pointer(f["sha256"], f["size"]))}


def _check_path(path: str) -> str:
    parts = path.split("/")
    if not path or any(p in ("", ".", "..") for p in parts) or parts[0] == ".git" or "\0" in path or "\\" in path:
        raise HubError(400, f"Invalid path in repo: {path!r}")
    return path


class _Store:
    """Repos, commits and objects on disk; every write holds one lock."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.lock = threading.RLock()
        self._commits: dict[Path, dict] = {}  # commit files never change: cache them

    def obj(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise HubError(400, f"Invalid sha256 oid: {sha256!r}")
        return self.root / "objects" / sha256

    def put(self, data: bytes) -> dict:
        sha = hashlib.sha256(data).hexdigest()
        if not self.obj(sha).exists():
            _write(self.obj(sha), data)
        return {"sha256": sha, "size": len(data)}

    def dir(self, rtype: str, rid: str) -> Path:
        parts = rid.split("/")
        if len(parts) != 2 or not all(_NAME.fullmatch(p) and ".." not in p for p in parts):
            raise HubError(400, f"Invalid repo id: {rid!r}")
        return self.root / "repos" / rtype / rid

    def meta(self, rtype: str, rid: str) -> dict | None:
        path = self.dir(rtype, rid) / "repo.json"
        return json.loads(path.read_text()) if path.exists() else None

    def head(self, rtype: str, rid: str) -> str | None:
        ref = self.dir(rtype, rid) / "refs" / "heads" / "main"
        return ref.read_text().strip() if ref.is_file() else None

    def commit(self, rtype: str, rid: str, oid: str) -> dict | None:
        if not _OID.fullmatch(oid):
            return None
        path = self.dir(rtype, rid) / "commits" / f"{oid}.json"
        if path not in self._commits and path.exists():
            self._commits[path] = json.loads(path.read_text())
        return self._commits.get(path)

    def resolve(self, rtype: str, rid: str, rev: str) -> dict:
        """``main`` or a full commit id -> that commit."""
        commit = self.commit(rtype, rid, self.head(rtype, rid) or "" if rev in ("main", "refs/heads/main") else rev)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return commit

    def create(self, rtype: str, rid: str, private: bool, author: str) -> None:
        with self.lock:
            _write(self.dir(rtype, rid) / "repo.json", json.dumps(
                {"id": rid, "type": rtype, "private": private, "author": author, "createdAt": _now()}).encode())
            self.apply(rtype, rid, author, {"summary": "initial commit"},
                       [{"key": "file", "value": {"path": ".gitattributes", "content": _GITATTRIBUTES}}])

    def apply(self, rtype: str, rid: str, author: str, header: dict, ops: list[dict]) -> str:
        """Make one commit on ``main`` from NDJSON commit operations; returns the new commit id."""
        with self.lock:
            parent_id = self.head(rtype, rid)
            if header.get("parentCommit") and header["parentCommit"] != parent_id:
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(self.commit(rtype, rid, parent_id)["files"]) if parent_id else {}
            changed: dict[str, dict] = {}
            for op in ops:
                key, value = op.get("key"), op.get("value") or {}
                path = _check_path(str(value.get("path", "")))
                if key == "file":
                    content = value.get("content", "")
                    try:
                        data = (base64.b64decode(content, validate=True) if value.get("encoding") == "base64"
                                else content.encode())
                    except (binascii.Error, ValueError, AttributeError):
                        raise HubError(400, f"Invalid base64 content for {path!r}") from None
                    changed[path] = {**self.put(data), "oid": _git_oid(data), "lfs": False}
                elif key == "lfsFile":
                    sha = str(value.get("oid", ""))
                    if not self.obj(sha).is_file():
                        raise HubError(400, f"LFS object {sha} of {path} was never uploaded")
                    size = self.obj(sha).stat().st_size
                    changed[path] = {"sha256": sha, "size": size, "oid": _git_oid(_pointer(sha, size)), "lfs": True}
                elif key in ("deletedFile", "deletedFolder"):
                    doomed = [p for p in {**files, **changed} if p == path or p.startswith(path.rstrip("/") + "/")]
                    if not doomed:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                    for p in doomed:
                        files.pop(p, None), changed.pop(p, None)
                else:
                    raise HubError(400, f"Unknown commit operation: {key!r}")
            record = {"parents": [parent_id] if parent_id else [], "title": header.get("summary") or "update",
                      "message": header.get("description") or "", "author": author, "date": _now()}
            oid = hashlib.sha1(json.dumps([record, sorted(files), sorted(changed)]).encode()
                               + secrets.token_bytes(16)).hexdigest()
            files.update(changed)
            commit = json.dumps({"id": oid, **record, "files": files}).encode()
            _write(self.dir(rtype, rid) / "commits" / f"{oid}.json", commit)
            _write(self.dir(rtype, rid) / "refs" / "heads" / "main", oid.encode())
            return oid


def _tree(commit: dict, prefix: str, recursive: bool) -> list[dict] | None:
    """Entries under ``prefix`` (None if there is no such folder), shaped like ``/api/.../tree``."""
    base = prefix.strip("/") + "/" if prefix.strip("/") else ""
    files = {p: f for p, f in commit["files"].items() if p.startswith(base)}
    if base and not files:
        return None
    out: dict[str, dict] = {}
    for path in sorted(files):
        parts = path[len(base):].split("/")
        for i in range(1, len(parts) if recursive else min(2, len(parts))):
            folder = base + "/".join(parts[:i])
            out.setdefault(folder, _entry(commit, folder))
        if recursive or len(parts) == 1:
            out[path] = _entry(commit, path)
    return sorted(out.values(), key=lambda e: (e["type"] != "directory", e["path"]))


def _entry(commit: dict, path: str) -> dict | None:
    """One file or folder, shaped like the Hub's tree / paths-info items."""
    f = commit["files"].get(path)
    if f is None:
        inside = sorted((p, g["oid"]) for p, g in commit["files"].items() if p.startswith(path + "/"))
        if not inside:
            return None
        return {"type": "directory", "path": path, "oid": hashlib.sha1(json.dumps(inside).encode()).hexdigest()}
    lfs = {"lfs": {**_lfs_info(f), "oid": f["sha256"]}} if f["lfs"] else {}
    return {"type": "file", "path": path, "oid": f["oid"], "size": f["size"], **lfs}


class _Handler(BaseHTTPRequestHandler):
    """Routes one request to the hub; errors become JSON bodies with the Hub's ``X-Error-*`` headers."""

    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses connections
    disable_nagle_algorithm = True
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        if self.server.hub.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    # -- plumbing ---------------------------------------------------------------------------------------------
    def _read_body(self, limit: int) -> bytes:
        """The body, read only after the token was checked, and only up to ``limit`` bytes (413 beyond)."""
        if self.headers.get("Transfer-Encoding"):  # huggingface_hub always sends Content-Length
            self.close_connection = True  # the unread body would poison the kept-alive connection
            raise HubError(411, "Send a Content-Length instead of a Transfer-Encoding")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            raise HubError(400, "Invalid Content-Length")
        if length > limit:
            self.close_connection = True
            raise HubError(413, f"Request body of {length} bytes is over this endpoint's limit of {limit} bytes")
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: Any = b"", headers: dict[str, str] | None = None,
              ctype: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": ctype, "Content-Length": str(len(data)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _json(self) -> dict:
        if "form-urlencoded" in self.headers.get("Content-Type", ""):
            return {k: v if len(v) > 1 or k == "paths" else v[0] for k, v in parse_qs(self.body.decode()).items()}
        try:
            return json.loads(self.body or b"{}")
        except ValueError as exc:
            raise HubError(400, f"Invalid JSON body: {exc}") from None

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        self.endpoint = f"http://{self.headers.get('Host') or '%s:%d' % self.server.server_address[:2]}"
        segs = [unquote(s) for s in url.path.split("/")[1:]]
        self.body = b""
        try:
            self.user = self._user()
            upload = segs[:1] == ["lfs-upload"] and self.command == "PUT"  # authorized by its one-time ticket
            self.body = self._read_body(self.server.hub.max_body if self.user or upload else _ANONYMOUS_MAX_BODY)
            if segs[:1] == ["api"]:
                self._api(segs[1:])
            elif segs[:1] == ["lfs-upload"] and self.command == "PUT":
                self._lfs_upload(segs[1:])
            else:
                self._repo_url(segs)
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:  # malformed request
            self._send_error(HubError(400, f"Malformed request: {type(exc).__name__}: {str(exc)[:200]}"))
        except HubError as err:
            self._send_error(err)
        except Exception as exc:  # a bug here: answer it rather than drop the connection
            self.close_connection = True
            self._send(500, {"error": f"{type(exc).__name__}: {exc}"})
            raise

    def _send_error(self, err: HubError) -> None:
        if err.status in (401, 403) and self.body == b"" and self.headers.get("Content-Length", "0") != "0":
            self.close_connection = True  # the body was never read: do not reuse the connection
        headers = {"X-Error-Message": err.message, **err.headers}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._send(err.status, {"error": err.message}, headers)

    # -- auth -------------------------------------------------------------------------------------------------
    def _user(self) -> str | None:
        auth = self.headers.get("Authorization")
        if not auth:
            return None
        scheme, _, token = auth.partition(" ")
        user = self.server.hub.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return user

    def _readable(self, rtype: str, rid: str) -> dict:
        meta = self.server.hub.store.meta(rtype, rid)
        if meta is None or (meta["private"] and rid.split("/")[0] != self.user):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return meta

    def _writable(self, rtype: str, rid: str | None = None, namespace: str | None = None) -> None:
        if self.user is None:
            raise HubError(401, "You must be authenticated to write")
        if rid is not None:
            self._readable(rtype, rid)
        if (namespace or str(rid).split("/")[0]) != self.user:
            raise HubError(403, f"You don't have the rights to write to {namespace or rid}")

    # -- /api ---------------------------------------------------------------------------------------------------
    def _api(self, segs: list[str]) -> None:
        store, method = self.server.hub.store, self.command
        if segs == ["whoami-v2"] and method == "GET":
            if self.user is None:
                raise HubError(401, "Invalid credentials in Authorization header")
            token = {"type": "access_token", "accessToken": {"displayName": "localhub", "role": "write"}}
            return self._send(200, {"type": "user", "id": self.user, "name": self.user, "fullname": self.user,
                                    "orgs": [], "auth": token})
        if segs == ["agent-harnesses"] and method == "GET":  # fetched at import by huggingface_hub's telemetry
            return self._send(200, {"standardEnvVars": [], "harnesses": {}})
        if segs == ["validate-yaml"] and method == "POST":
            content = str(self._json().get("content", ""))
            if content.startswith("---") and "\n---" not in content[3:]:
                return self._send(400, {"errors": [{"message": "unterminated YAML front matter"}], "warnings": []})
            return self._send(200, {"errors": [], "warnings": []})
        if segs[:1] == ["repos"] and segs[1:] in (["create"], ["delete"]):
            return self._repo_admin(segs[1])
        if len(segs) < 3 or segs[0] not in ("models", "datasets", "spaces"):
            raise HubError(404, f"Not found: {self.command} /api/{'/'.join(segs)}")
        rtype, rid, rest = segs[0][:-1], f"{segs[1]}/{segs[2]}", segs[3:]
        action, args = (rest[0], rest[1:]) if rest else ("info", [])
        if method == "POST" and action in ("preupload", "commit"):
            self._writable(rtype, rid)
        meta = self._readable(rtype, rid)
        if action == "refs":
            main = {"name": "main", "ref": "refs/heads/main", "targetCommit": store.head(rtype, rid)}
            return self._send(200, {"branches": [main], "converts": [], "tags": [], "pullRequests": []})
        if action == "commit" and method == "POST":
            return self._commit(rtype, rid, "/".join(args))
        rev = args[0] if args else "main"
        commit = store.resolve(rtype, rid, rev)
        if action in ("info", "revision") and method == "GET":
            return self._info(rtype, rid, meta, commit)
        if action == "tree" and method == "GET":
            entries = _tree(commit, "/".join(args[1:]), _flag(self.query.get("recursive", [""])[0]))
            if entries is None:
                raise HubError(404, f"Entry not found: {'/'.join(args[1:])}", "EntryNotFound")
            return self._send(200, entries)
        if action == "paths-info" and method == "POST":
            entries = [_entry(commit, str(p).strip("/")) for p in self._json().get("paths") or []]
            return self._send(200, [e for e in entries if e])
        if action == "commits" and method == "GET":
            out, cur = [], commit
            while cur:
                out.append({"id": cur["id"], "title": cur["title"], "message": cur["message"],
                            "authors": [{"user": cur["author"]}], "date": cur["date"]})
                cur = store.commit(rtype, rid, cur["parents"][0]) if cur["parents"] else None
            return self._send(200, out)
        if action == "preupload" and method == "POST":
            files = []
            for f in self._json().get("files", []):
                sample, size = base64.b64decode(f.get("sample", "")), int(f.get("size", 0))
                lfs = size >= _LFS_MIN_SIZE or str(f["path"]).lower().endswith(_LFS_SUFFIXES) or b"\0" in sample
                old = commit["files"].get(f["path"])
                oid = (old["sha256"] if old["lfs"] else old["oid"]) if old else None
                files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular",
                              "shouldIgnore": False, "oid": oid})
            return self._send(200, {"files": files, "commitOid": commit["id"]})
        raise HubError(404, f"Not found: {self.command} /api/{'/'.join(segs)}")

    def _repo_admin(self, op: str) -> None:
        body, store = self._json(), self.server.hub.store
        rtype = body.get("type") or "model"
        if rtype not in _PREFIX:
            raise HubError(400, f"Invalid repo type: {rtype}")
        namespace = body.get("organization") or self.user
        self._writable(rtype, namespace=namespace)
        rid = f"{namespace}/{body.get('name', '')}"
        store.dir(rtype, rid)  # validates the name
        url = f"{self.endpoint}/{_PREFIX[rtype]}{rid}"
        with store.lock:
            exists = store.meta(rtype, rid) is not None
            if op == "delete":
                if not exists:
                    raise HubError(404, "Repository not found", "RepoNotFound")
                shutil.rmtree(store.dir(rtype, rid))
                return self._send(200, {})
            if exists:
                return self._send(409, {"error": f"You already created this {rtype} repo", "url": url})
            private = body.get("private", body.get("visibility") == "private") is True
            store.create(rtype, rid, private, self.user or "")
        self._send(200, {"url": url, "name": rid, "id": rid})

    def _commit(self, rtype: str, rid: str, branch: str) -> None:
        if self.query.get("create_pr", ["0"])[0] not in ("0", "false", ""):
            raise HubError(400, "localhub does not support pull requests")
        try:
            lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
        except ValueError as exc:
            raise HubError(400, f"Invalid NDJSON commit payload: {exc}") from None
        header = next((line["value"] for line in lines if line.get("key") == "header"), None)
        if header is None:
            raise HubError(400, "The commit payload has no header line")
        ops = [line for line in lines if line.get("key") != "header"]
        if branch not in ("main", "refs/heads/main"):
            raise HubError(404, f"localhub only has a main branch, not {branch!r}", "RevisionNotFound")
        oid = self.server.hub.store.apply(rtype, rid, self.user or "", header, ops)
        self._send(200, {"success": True, "commitOid": oid, "pullRequestUrl": None, "hookOutput": "",
                         "commitUrl": f"{self.endpoint}/{_PREFIX[rtype]}{rid}/commit/{oid}"})

    def _info(self, rtype: str, rid: str, meta: dict, commit: dict) -> None:
        siblings = [{"rfilename": p, "size": f["size"], "blobId": f["oid"], "lfs": _lfs_info(f) if f["lfs"] else None}
                    for p, f in sorted(commit["files"].items())]  # as if ?blobs=true, always
        self._send(200, {"_id": hashlib.sha1(rid.encode()).hexdigest()[:24], "id": rid, "author": rid.split("/")[0],
                         "sha": commit["id"], "lastModified": commit["date"], "createdAt": meta["createdAt"],
                         "private": meta["private"], "gated": False, "disabled": False, "downloads": 0, "likes": 0,
                         "tags": [], "siblings": siblings,
                         "usedStorage": sum(f["size"] for f in commit["files"].values())})

    # -- Git-LFS and file URLs ----------------------------------------------------------------------------------
    def _repo_url(self, segs: list[str]) -> None:
        rtype = "model"
        if segs[:1] in (["datasets"], ["spaces"]):
            rtype, segs = segs[0][:-1], segs[1:]
        if len(segs) >= 3 and segs[1].endswith(".git") and segs[2:5] == ["info", "lfs", "objects"]:
            return self._lfs(rtype, f"{segs[0]}/{segs[1][:-4]}", segs[5:])
        if len(segs) >= 5 and segs[2] == "resolve" and self.command in ("GET", "HEAD"):
            return self._resolve(rtype, f"{segs[0]}/{segs[1]}", segs[3], "/".join(segs[4:]))
        raise HubError(404, f"Not found: {self.command} {self.path}")

    def _lfs(self, rtype: str, rid: str, action: list[str]) -> None:
        store, body = self.server.hub.store, self._json()
        self._writable(rtype, rid)  # only uploads are served, so only writers get here
        if action != ["batch"] or self.command != "POST" or body.get("operation") != "upload":
            raise HubError(400, "localhub's LFS endpoint only serves batch uploads")
        objects = []
        for obj in body.get("objects", []):
            oid, size = str(obj.get("oid")), int(obj.get("size", 0))
            item: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if not store.obj(oid).is_file():  # no "actions" => already uploaded. No "verify": the PUT checks.
                ticket = secrets.token_urlsafe(24)
                self.server.hub.tickets[ticket] = (oid, size)
                item["actions"] = {"upload": {"href": f"{self.endpoint}/lfs-upload/{ticket}", "header": {}}}
            objects.append(item)
        self._send(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
                   ctype="application/vnd.git-lfs+json")

    def _lfs_upload(self, segs: list[str]) -> None:
        """The signed-URL PUT of one LFS object: the client sends no token, the one-time ticket authorizes it."""
        oid, size = self.server.hub.tickets.pop(segs[0] if segs else "", (None, None))
        if oid is None:
            raise HubError(403, "Unknown or used upload ticket")
        if len(self.body) != size or hashlib.sha256(self.body).hexdigest() != oid:
            raise HubError(400, "Uploaded content does not match the announced oid/size")
        self.server.hub.store.put(self.body)
        self._send(200, {})

    def _resolve(self, rtype: str, rid: str, rev: str, path: str) -> None:
        store = self.server.hub.store
        self._readable(rtype, rid)
        commit = store.resolve(rtype, rid, rev)
        f = commit["files"].get(path)
        if f is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit["id"]})
        size = f["size"]
        headers = {"ETag": f'"{f["oid"]}"', "X-Repo-Commit": commit["id"], "Accept-Ranges": "bytes"}
        if f["lfs"]:
            headers.update({"X-Linked-Etag": f'"{f["sha256"]}"', "X-Linked-Size": str(size)})
        start, end, status = 0, size - 1, 200
        if rng := self.headers.get("Range"):
            try:
                unit, _, spec = rng.partition("=")
                a, _, b = spec.split(",")[0].strip().partition("-")  # first range only
                if a == "":  # "bytes=-N": the last N bytes
                    start, end = max(0, size - int(b)), size - 1
                else:
                    start, end = int(a), min(int(b), size - 1) if b else size - 1
                if unit.strip() != "bytes" or start < 0 or start > end:
                    raise ValueError(rng)
            except ValueError:
                unsatisfiable = {"Content-Range": f"bytes */{size}"}
                raise HubError(416, f"Range not satisfiable: {rng}", headers=unsatisfiable) from None
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length, data = end - start + 1 if size else 0, b""
        if self.command == "GET":
            with open(store.obj(f["sha256"]), "rb") as fh:
                fh.seek(start)
                data = fh.read(length)
        self._send(status, data, {**headers, "Content-Length": str(length)}, "application/octet-stream")


class _Server(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True
    hub: "LocalHub"


class LocalHub:
    """A Hub-compatible HTTP server on 127.0.0.1 storing repos under ``root``; ``tokens`` maps token -> user."""

    def __init__(self, root: Path, tokens: dict[str, str], *, verbose: bool = False,
                 max_body: int = 1024 * 1024 * 1024) -> None:
        self.root, self.tokens, self.verbose, self.max_body = Path(root), dict(tokens), verbose, max_body
        self.store = _Store(self.root)
        self.tickets: dict[str, tuple[str, int]] = {}  # one-time LFS upload URLs
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """The base URL (``http://127.0.0.1:PORT``) once started."""
        if self._server is None:
            raise RuntimeError("LocalHub is not started")
        return "http://127.0.0.1:%d" % self._server.server_address[1]

    def start(self, port: int = 0) -> str:
        """Serve in a background thread on ``port`` (0: a free one); returns the endpoint URL."""
        if self._server is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._server = _Server(("127.0.0.1", port), _Handler)
            self._server.hub = self
            self._thread = threading.Thread(target=self._server.serve_forever, name="localhub", daemon=True)
            self._thread.start()
        return self.endpoint

    def stop(self) -> None:
        """Stop serving and close the socket (the files stay under ``root``)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = self._thread = None

    def __enter__(self) -> "LocalHub":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def route_client(endpoint: str) -> None:
    """Make huggingface_hub's shared HTTP client send requests for https://huggingface.co to ``endpoint``.

    Needed for ``DatasetCard.push_to_hub``, whose ``validate()`` posts to the hard-coded Hub URL; call it once in the
    client process (after setting ``HF_ENDPOINT``). Uses huggingface_hub's public ``set_client_factory`` with a client
    of our own (as huggingface_hub's default one: redirects followed, no timeout) that reroutes those requests.
    """
    import httpx
    from huggingface_hub import set_client_factory

    target = httpx.URL(endpoint)

    def reroute(request: httpx.Request) -> None:
        if request.url.host in ("huggingface.co", "hub-ci.huggingface.co"):
            request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port)
            request.headers["Host"] = target.netloc.decode()

    def factory() -> httpx.Client:
        return httpx.Client(event_hooks={"request": [reroute]}, follow_redirects=True, timeout=None)

    set_client_factory(factory)


def main(argv: list[str] | None = None) -> None:
    """``python -m cotlib.localhub --root DIR --token TOKEN=USER ...``: print the endpoint, serve until killed."""
    parser = argparse.ArgumentParser(prog="python -m cotlib.localhub", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="folder holding the repos")
    parser.add_argument("--token", action="append", default=[], metavar="TOKEN=USER", help="repeatable")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    if bad := [t for t in args.token if "=" not in t]:
        parser.error(f"--token expects TOKEN=USER, got {bad}")
    hub = LocalHub(args.root, dict(t.split("=", 1) for t in args.token), verbose=args.verbose)
    print(hub.start(args.port), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
