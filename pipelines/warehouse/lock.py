"""The warehouse's lock file: one writer (flock exclusive, holding its pid) or any number of readers (shared)."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from pipelines.warehouse.base import LOCK_FILE_NAME, WarehouseBusyError, WarehouseError, one_line


class WriterLock:
    """Exclusive across processes; the kernel drops it when the holder dies, so a kill -9 never leaves it stuck."""

    def __init__(self, directory: Path, timeout: float) -> None:
        self.directory = directory
        self.timeout = timeout
        self._descriptor: int | None = None

    @property
    def held(self) -> bool:
        return self._descriptor is not None

    def acquire(self) -> None:
        lock_path = self.directory / LOCK_FILE_NAME
        try:
            descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise WarehouseError(f"cannot open lock file {lock_path}: {exc.strerror or one_line(exc)}") from exc
        holder = _flock_waiting(descriptor, fcntl.LOCK_EX, self.timeout)
        if holder is not None:
            raise WarehouseBusyError(
                f"warehouse {self.directory} is locked by another run (pid {holder}); gave up after {self.timeout:g}s"
            )
        # The holder's pid, for the message another waiting run prints.
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        self._descriptor = descriptor

    def release(self) -> None:
        if self._descriptor is None:
            return
        try:
            os.ftruncate(self._descriptor, 0)
            fcntl.flock(self._descriptor, fcntl.LOCK_UN)
        finally:
            os.close(self._descriptor)
            self._descriptor = None


class ReaderLock:
    """A shared flock on the same file: readers wait for a writer to finish, never for each other.

    A writer's step ends with its Iceberg publish, so a reader that gets the shared lock sees a whole warehouse;
    a writer waits (up to its lock timeout) for the readers in turn. Without a lock file (a warehouse copied
    read-only, or never written) there is no writer to wait for.
    """

    def __init__(self, directory: Path, timeout: float) -> None:
        self.directory = directory
        self.timeout = timeout
        self._descriptor: int | None = None

    def acquire(self) -> None:
        try:
            descriptor = os.open(self.directory / LOCK_FILE_NAME, os.O_RDONLY)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise WarehouseError(f"cannot open lock file in {self.directory}: {exc.strerror or one_line(exc)}") from exc
        holder = _flock_waiting(descriptor, fcntl.LOCK_SH, self.timeout)
        if holder is not None:
            raise WarehouseBusyError(
                f"warehouse {self.directory} is being written by another run (pid {holder}); "
                f"gave up reading after {self.timeout:g}s"
            )
        self._descriptor = descriptor

    def release(self) -> None:
        if self._descriptor is None:
            return
        try:
            fcntl.flock(self._descriptor, fcntl.LOCK_UN)
        finally:
            os.close(self._descriptor)
            self._descriptor = None


def _flock_waiting(descriptor: int, mode: int, timeout: float) -> str | None:
    """Take `mode` on the lock file, retrying until `timeout`; None once held, else the holder's pid (fd closed)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(descriptor, mode | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(descriptor)
                return holder
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
