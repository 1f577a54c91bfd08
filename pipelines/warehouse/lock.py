"""The warehouse's single-writer lock: an flock on a file in the folder, holding the writer's pid."""

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
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip() or "unknown"
                    os.close(descriptor)
                    raise WarehouseBusyError(
                        f"warehouse {self.directory} is locked by another run (pid {holder}); "
                        f"gave up after {self.timeout:g}s"
                    ) from None
                time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
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
