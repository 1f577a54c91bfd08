"""Where Parquet files go: a local folder or an object store prefix (S3 endpoint from the environment)."""

from __future__ import annotations

import os
import re
import secrets
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipelines.warehouse.base import WarehouseError, one_line, redacted

_TEMP_FILE = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")


class Sink:
    """Where one Parquet file is written; commit() makes it visible whole, discard() drops it."""

    stream: Any

    def commit(self) -> None:
        raise NotImplementedError

    def discard(self) -> None:
        raise NotImplementedError


class LocalSink(Sink):
    """A temporary file beside the final one (name not ending .parquet), fsynced, then os.replace'd."""

    def __init__(self, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        self.final = final
        self.temporary = final.with_name(f".{final.name}.{secrets.token_hex(6)}.tmp")
        self.stream = open(self.temporary, "wb")  # noqa: SIM115 - closed in commit/discard

    def commit(self) -> None:
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.stream.close()
        os.replace(self.temporary, self.final)
        _fsync_directory(self.final.parent)

    def discard(self) -> None:
        self.stream.close()
        self.temporary.unlink(missing_ok=True)


class _ObjectStoreSink(Sink):
    """Built in memory, then one upload: an object store PUT is atomic, so no temporary key is needed."""

    def __init__(self, filesystem: pafs.FileSystem, path: str) -> None:
        self.filesystem, self.path = filesystem, path
        self.stream = pa.BufferOutputStream()

    def commit(self) -> None:
        body = self.stream.getvalue()
        with self.filesystem.open_output_stream(self.path) as out:
            out.write(body)

    def discard(self) -> None:
        self.stream = pa.BufferOutputStream()


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class ParquetTarget:
    """A local folder or an object store prefix holding <table>/<file> Parquet files."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        parts = urlsplit(uri)
        self.local_root: Path | None = None
        self.filesystem: pafs.FileSystem | None = None
        self.base = ""
        if not parts.scheme or len(parts.scheme) == 1 or parts.scheme == "file":
            self.local_root = Path(parts.path if parts.scheme == "file" else uri).expanduser().absolute()
            return
        try:
            self.filesystem, self.base = pafs.FileSystem.from_uri(_with_endpoint(uri))
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise WarehouseError(f"cannot use Parquet location {redacted(uri)}: {one_line(exc)}") from exc
        self.base = self.base.rstrip("/")

    def _path(self, table: str, relative: str) -> str:
        return f"{self.base}/{table}/{relative}"

    def open_sink(self, table: str, relative: str) -> Sink:
        if self.local_root is not None:
            return LocalSink(self.local_root / table / relative)
        assert self.filesystem is not None
        return _ObjectStoreSink(self.filesystem, self._path(table, relative))

    def list_parquet(self, table: str) -> list[str]:
        """Paths (relative to the table folder) of the table's .parquet files."""
        if self.local_root is not None:
            folder = self.local_root / table
            if not folder.is_dir():
                return []
            return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.parquet") if p.is_file())
        assert self.filesystem is not None
        prefix = f"{self.base}/{table}"
        infos = self.filesystem.get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
        return sorted(
            info.path[len(prefix) + 1 :]
            for info in infos
            if info.type == pafs.FileType.File and info.path.endswith(".parquet")
        )

    def row_count(self, table: str, relative: str) -> int | None:
        """Rows in a Parquet file from its footer; None when it is unreadable."""
        try:
            if self.local_root is not None:
                return pq.read_metadata(self.local_root / table / relative).num_rows
            assert self.filesystem is not None
            with self.filesystem.open_input_file(self._path(table, relative)) as source:
                return pq.ParquetFile(source).metadata.num_rows
        except (pa.ArrowException, OSError):
            return None

    def delete(self, table: str, relative: str) -> None:
        if self.local_root is not None:
            path = self.local_root / table / relative
            path.unlink(missing_ok=True)
            if path.parent != self.local_root / table:
                with suppress(OSError):
                    path.parent.rmdir()  # an emptied partition folder
            return
        assert self.filesystem is not None
        with suppress(FileNotFoundError):
            self.filesystem.delete_file(self._path(table, relative))

    def remove_temporaries(self) -> int:
        """Delete temporary files a killed export left behind (local folders only)."""
        if self.local_root is None or not self.local_root.is_dir():
            return 0
        removed = 0
        for folder, _, names in os.walk(self.local_root):
            for name in names:
                if _TEMP_FILE.match(name):
                    Path(folder, name).unlink(missing_ok=True)
                    removed += 1
        return removed


def _with_endpoint(uri: str) -> str:
    """Add the S3 endpoint from AWS_ENDPOINT_URL(_S3) to an s3:// URI that does not name one.

    pyarrow 26's AWS SDK reads AWS_ENDPOINT_URL on its own as well; passing it explicitly keeps the choice
    visible and works with builds that ignore the variable.
    """
    parts = urlsplit(uri)
    if parts.scheme != "s3":
        return uri
    query = dict(parse_qsl(parts.query))
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint and "endpoint_override" not in query:
        endpoint_parts = urlsplit(endpoint)
        if endpoint_parts.scheme in ("http", "https"):
            query.setdefault("scheme", endpoint_parts.scheme)
            query["endpoint_override"] = endpoint_parts.netloc
        else:
            query["endpoint_override"] = endpoint
    if "region" not in query and (region := os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        query["region"] = region
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
