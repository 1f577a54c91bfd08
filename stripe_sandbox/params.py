"""Parse Stripe's form encoding (bracket syntax, `x[]=a` and `x[0]=a` arrays) into nested values."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from stripe_sandbox.errors import invalid

_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART_RE = re.compile(r"\[([^\[\]]*)\]")
_MAX_DEPTH = 8


def parse_query(raw: str) -> dict[str, Any]:
    """Parse a query string or an `application/x-www-form-urlencoded` body."""
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise invalid("The request body or query string is not valid form encoding.") from exc
    return parse_pairs(pairs)


def _split_key(raw_key: str) -> list[str]:
    match = _KEY_RE.match(raw_key)
    if match is None:
        raise invalid(f"Invalid parameter name: {raw_key[:100]}", param=raw_key[:100])
    parts = [match.group(1), *_PART_RE.findall(match.group(2))]
    if len(parts) > _MAX_DEPTH:
        raise invalid(f"Parameter nested too deeply: {raw_key[:100]}", param=raw_key[:100])
    if "" in parts[:-1]:
        raise invalid(f"Invalid array: {raw_key[:100]} (empty brackets only at the end)", param=raw_key[:100])
    return parts


def parse_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        parts = _split_key(raw_key)
        node: dict[str, Any] = root
        path = parts[0]
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if depth:
                path = f"{path}[{part}]"
            if last:
                if part == "":
                    # `x[]=a`: node here is the parent dict keyed by the array name (handled below)
                    raise AssertionError("unreachable")
                existing = node.get(part)
                if isinstance(existing, dict | list):
                    raise invalid(f"Invalid hash: {path} given both as a value and as a hash/array", param=path)
                node[part] = value
                break
            next_part = parts[depth + 1]
            child = node.get(part)
            if next_part == "" and depth + 1 == len(parts) - 1:
                if child is None:
                    child = node[part] = []
                if not isinstance(child, list):
                    raise invalid(f"Invalid array: {path}", param=path)
                child.append(value)
                break
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise invalid(f"Invalid hash: {path}", param=path)
            node = child
    return _arrays_from_indexed(root, "")


def _arrays_from_indexed(value: Any, path: str) -> Any:
    """Turn `{"0": a, "1": b}` (from `x[0]=a&x[1]=b`) into `[a, b]`, recursively."""
    if isinstance(value, list):
        return value
    if not isinstance(value, dict):
        return value
    converted = {
        key: _arrays_from_indexed(child, f"{path}[{key}]" if path else key) for key, child in value.items()
    }
    if path and converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted
