"""Who has been forgotten: the warehouse's salt, the salted hash of a subject id, and the set of forgotten hashes."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SALT_FILE_NAME = ".fc_salt"
CUSTOMER_ID = re.compile(r"cus_[A-Za-z0-9]{1,250}")
ACCOUNT_ID = re.compile(r"fca_[A-Za-z0-9]{1,250}")


class SubjectError(ValueError):
    """A subject id of the wrong shape; one line."""


def subject_type(subject_id: str) -> str:
    """`customer` or `account` from the id's shape; SubjectError for anything else."""
    if CUSTOMER_ID.fullmatch(subject_id):
        return "customer"
    if ACCOUNT_ID.fullmatch(subject_id):
        return "account"
    shown = subject_id[:40].encode("ascii", "replace").decode()
    raise SubjectError(f"not a customer (cus_...) or account (fca_...) id: {shown!r}")


def salt_path(warehouse_directory: str | os.PathLike[str]) -> Path:
    return Path(warehouse_directory).expanduser().absolute() / SALT_FILE_NAME


def read_salt(warehouse_directory: str | os.PathLike[str]) -> str | None:
    """The warehouse's salt (hex), or None when nothing was ever forgotten there."""
    try:
        text = salt_path(warehouse_directory).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise SubjectError(f"{salt_path(warehouse_directory)} is not a salt written by fc-balances")
    return text


def ensure_salt(warehouse_directory: str | os.PathLike[str]) -> str:
    """The salt, created once (32 random bytes, hex, mode 0600) the first time anything is forgotten.

    Per warehouse and secret: without it a hash cannot be tested against guessed ids, so the audit table can be
    kept for years without holding the ids.
    """
    existing = read_salt(warehouse_directory)
    if existing is not None:
        return existing
    path = salt_path(warehouse_directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    temporary = path.with_name(f"{SALT_FILE_NAME}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, value.encode("ascii") + b"\n")
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    try:
        os.link(temporary, path)  # fails if another process created it first: theirs wins
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)
    salt = read_salt(warehouse_directory)
    assert salt is not None
    return salt


def subject_hash(salt: str, subject_id: str) -> str:
    """hex SHA-256 of the salt followed by the id (DuckDB's sha256(salt || id) gives the same)."""
    return hashlib.sha256((salt + subject_id).encode("utf-8")).hexdigest()


@dataclass
class Forgotten:
    """The forgotten hashes, loaded once per run; `matches` hashes an id and looks it up."""

    salt: str | None = None
    hashes: frozenset[str] = frozenset()
    skipped: set[str] = field(default_factory=set)  # hashes of subjects skipped so far (counted, never named)

    def __bool__(self) -> bool:
        return bool(self.salt and self.hashes)

    def matches(self, subject_id: Any) -> bool:
        if not self or not isinstance(subject_id, str) or not subject_id:
            return False
        assert self.salt is not None
        digest = subject_hash(self.salt, subject_id)
        if digest in self.hashes:
            self.skipped.add(digest)
            return True
        return False

    def account_is_forgotten(self, account: Mapping[str, Any]) -> bool:
        """An account dict whose id or holder customer was forgotten."""
        if not self:
            return False
        holder = account.get("account_holder")
        customer = holder.get("customer") if isinstance(holder, Mapping) else None
        return self.matches(account.get("id")) or self.matches(customer)

    @classmethod
    def of(cls, salt: str | None, hashes: Iterable[str]) -> Forgotten:
        return cls(salt, frozenset(hashes))


def forgotten_in(con: Any, subject_id: str) -> bool:
    """Whether a DuckDB warehouse connection's fc_deletions names this id (hashed with the salt beside the file).

    For callers holding only a connection (the funds check): the salt is read from the database file's folder.
    """
    from pipelines.sql import load_sql

    row = con.execute(load_sql("lifecycle/database_file")).fetchone()
    if not row or not row[0]:
        return False
    salt = read_salt(Path(row[0]).parent)
    if salt is None:
        return False
    import duckdb

    try:
        hit = con.execute(load_sql("lifecycle/hash_forgotten"), {"subject_hash": subject_hash(salt, subject_id)})
    except duckdb.CatalogException:  # a warehouse older than the lifecycle migration: nothing was forgotten there
        return False
    return bool(hit.fetchone()[0])
