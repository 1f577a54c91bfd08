"""The Iceberg catalog's settings: its pyiceberg properties (FC_BALANCES_ICEBERG_CATALOG or the embedded default),
shown without secrets, and its failures as one line. No pyiceberg here: a command imports it only when it uses it."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines.warehouse.base import WarehouseError, one_line

NAMESPACE = "fc_balances"  # fixed: other engines name the tables fc_balances.<table>
# The SQL catalog stores each table under its catalog's name: readers (Spark's and Trino's JDBC catalogs, pyiceberg,
# ../shared/tools/check_warehouse.py) must attach under the same name to see the tables.
CATALOG_NAME = "fc"
CATALOG_SETTING = "FC_BALANCES_ICEBERG_CATALOG"
ICEBERG_DIR_NAME = "iceberg"  # <warehouse>/iceberg/: catalog.db and the tables' files (the embedded default)
FORMAT_VERSION = "2"
_SECRET_KEY = re.compile(r"secret|password|token|credential|key", re.IGNORECASE)


def embedded_properties(directory: str | os.PathLike[str]) -> dict[str, str]:
    """The default catalog: pyiceberg's SqlCatalog on SQLite at <warehouse>/iceberg/catalog.db, files beside it."""
    root = Path(directory).expanduser().absolute() / ICEBERG_DIR_NAME
    return {"type": "sql", "uri": f"sqlite:///{root / 'catalog.db'}", "warehouse": root.as_uri()}


def catalog_properties(directory: str | os.PathLike[str], setting: str | None) -> dict[str, str]:
    """The catalog's pyiceberg properties: the setting's JSON object when given, else the embedded default."""
    if not setting:
        return embedded_properties(directory)
    try:
        parsed = json.loads(setting)
    except ValueError:
        raise WarehouseError(f"{CATALOG_SETTING} must be a JSON object of pyiceberg catalog properties") from None
    if not isinstance(parsed, dict) or not parsed or not all(isinstance(k, str) for k in parsed):
        raise WarehouseError(f"{CATALOG_SETTING} must be a non-empty JSON object of pyiceberg catalog properties")
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in parsed.items()}


def shown_properties(properties: dict[str, str]) -> dict[str, str]:
    """The properties for messages and metadata: secrets masked, user info and queries cut from URIs."""
    shown = {}
    for key, value in properties.items():
        if _SECRET_KEY.search(key) and key not in ("uri",):
            shown[key] = "***"
        else:
            shown[key] = re.sub(r"//[^/@]*@", "//", value).split("?", 1)[0]
    return shown


@contextmanager
def catalog_errors(properties: dict[str, str], doing: str) -> Iterator[None]:
    """Any failure of the catalog or its storage (pyiceberg, SQLAlchemy, HTTP, S3) as one WarehouseError line,
    naming the catalog's location without user info, query or secret."""
    try:
        yield
    except WarehouseError:
        raise
    except Exception as exc:  # pyiceberg raises many kinds: each becomes one line
        shown = shown_properties(properties)
        where = shown.get("warehouse") or shown.get("uri", "")
        message = one_line(exc)
        for secret in (v for k, v in properties.items() if _SECRET_KEY.search(k) and len(v) >= 4):
            message = message.replace(secret, "***")
        raise WarehouseError(f"{doing} (Iceberg catalog {where}) failed: {message}") from exc
