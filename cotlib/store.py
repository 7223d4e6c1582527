"""The record store: an append-only JSONL file of finished questions, safe to kill at any moment."""

from __future__ import annotations

import fcntl
import os
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path

from cotlib.data import write_atomic
from cotlib.errors import StoreError
from cotlib.records import CoTRecord


class RecordStore:
    """Append-only JSONL of finished questions, keyed by (question id, config hash).

    Each record is one checked ``os.write`` of a full line to a file opened with O_APPEND, then fsync'd: a short or
    failed write is undone (truncated back) and raises :class:`StoreError`, so a run never reports a record it lost.
    A damaged line (cut short by a kill, or garbled anywhere) is moved to ``<store>.damaged`` with a warning when the
    store is loaded, and its question is done again. :meth:`lock` keeps a second run off the same store.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._lock_fd: int | None = None

    def lock(self) -> None:
        """Take the store's exclusive lock (released by :meth:`unlock` or when the process dies), or fail fast."""
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StoreError(f"{self.path} is in use by another run (pid {holder}): wait for it to finish, or write "
                             "to another file") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def load(self) -> dict[tuple[str, str], CoTRecord]:
        """The records by (question id, config hash), in file order; damaged lines are moved aside."""
        records: dict[tuple[str, str], CoTRecord] = {}
        if not self.path.exists():
            return records
        good, damaged, first_bad = [], [], 0
        for number, line in enumerate(self.path.read_bytes().splitlines(keepends=True), start=1):
            if not line.strip():
                continue
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("cut short")
                record = CoTRecord.from_json(line)
            except ValueError:  # JSONDecodeError, UnicodeDecodeError and RecordError are ValueErrors
                damaged.append(line if line.endswith(b"\n") else line + b"\n")
                first_bad = first_bad or number
                continue
            good.append(line)
            records[record.key] = record
        if damaged and not good:  # not a store with a few damaged lines: some other file, left untouched
            raise StoreError(f"{self.path}:{first_bad}: not a generation record")
        if damaged:
            side = self.path.with_name(self.path.name + ".damaged")
            with open(side, "ab") as out:
                out.writelines(damaged)
            write_atomic(self.path, b"".join(good))
            warnings.warn(f"{self.path}: {len(damaged)} damaged line(s) moved to {side}; their questions will be done "
                          "again", stacklevel=2)
        return records

    def append(self, record: CoTRecord) -> None:
        line = (record.to_json() + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            size = os.fstat(fd).st_size
            try:
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(f"short write: {written} of {len(line)} bytes")
                os.fsync(fd)
            except OSError as err:
                try:
                    os.ftruncate(fd, size)  # no half line left behind
                except OSError:
                    pass
                raise StoreError(f"{self.path}: could not save the record of {record.id} ({err}); the run "
                                 "stops here, everything saved before is intact") from None
            finally:
                os.close(fd)


def load_records(path: str | Path) -> list[CoTRecord]:
    """The records of a run, in file order."""
    return list(RecordStore(path).load().values())


def merge(sources: Iterable[str | Path], dest: str | Path) -> int:
    """Append the records of ``sources`` that ``dest`` lacks, keyed by (question id, config); the number appended.
    A key already in ``dest``, or met earlier in ``sources``, is not appended again (the first record of a key wins).

    Each source and ``dest`` are locked while merging (a store still being written fails fast), and every record is
    appended through the store, so an interrupted merge leaves whole records behind and is simply run again.
    """
    store = RecordStore(dest)
    store.lock()
    try:
        done = set(store.load())
        added = 0
        for path in sources:
            if Path(path).resolve() == store.path.resolve():
                continue
            source = RecordStore(path)
            source.lock()
            try:
                records = source.load()
            finally:
                source.unlock()
            for key, record in records.items():
                if key not in done:
                    store.append(record)
                    done.add(key)
                    added += 1
        return added
    finally:
        store.unlock()
