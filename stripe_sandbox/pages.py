"""Sorted key lists and newest-first pages over them: O(log n + page) at any size."""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any

# An index entry; lists of keys are kept ascending, and pages read them from the top (newest first).
Key = tuple[int, str]


@dataclass(slots=True)
class PageQuery:
    limit: int = 10
    created_min: int | None = None  # inclusive
    created_max: int | None = None  # inclusive
    starting_after: Key | None = None
    ending_before: Key | None = None


def paginate(lists: Iterable[list[Key]], query: PageQuery) -> tuple[list[Key], bool]:
    """One newest-first page across one or more ascending key lists: O(lists x (log n + limit))."""
    wanted = query.limit + 1
    backwards = query.ending_before is not None and query.starting_after is None
    parts: list[list[Key]] = []
    for keys in lists:
        low = 0 if query.created_min is None else bisect_left(keys, (query.created_min,))
        high = len(keys) if query.created_max is None else bisect_left(keys, (query.created_max + 1,))
        if query.starting_after is not None:
            high = min(high, bisect_left(keys, query.starting_after))
        if query.ending_before is not None:
            low = max(low, bisect_right(keys, query.ending_before))
        if low >= high:
            continue
        if backwards:
            parts.append(keys[low:min(high, low + wanted)])
        else:
            part = keys[max(low, high - wanted):high]
            part.reverse()
            parts.append(part)
    if not parts:
        return [], False
    if backwards:
        merged = parts[0] if len(parts) == 1 else list(islice(heapq.merge(*parts), wanted))
        has_more = len(merged) > query.limit
        chosen = merged[:query.limit]
        chosen.reverse()
        return chosen, has_more
    merged = parts[0] if len(parts) == 1 else list(islice(heapq.merge(*parts, reverse=True), wanted))
    return merged[:query.limit], len(merged) > query.limit


def _index_add(index: dict[Any, list[Key]], value: Any, key: Key, touched: dict[int, list[Key]] | None) -> None:
    keys = index.get(value)
    if keys is None:
        keys = index[value] = []
    _list_add(keys, key, touched)


def _list_add(keys: list[Key], key: Key, touched: dict[int, list[Key]] | None) -> None:
    if touched is not None:
        keys.append(key)
        touched[id(keys)] = keys
    elif not keys or key > keys[-1]:
        keys.append(key)
    else:
        keys.insert(bisect_left(keys, key), key)


def _list_remove(keys: list[Key] | None, key: Key) -> None:
    if keys is None:
        return
    position = bisect_left(keys, key)
    if position < len(keys) and keys[position] == key:
        del keys[position]
