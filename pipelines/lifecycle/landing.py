"""The sequence every step that lands rows follows (the ingest, fc_events): finish a deletion a crash left half done,
the step's own work, reconcile the events gaps, publish to Iceberg, read the totals. No Dagster: the assets call it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from pipelines.events.store import EventStore
from pipelines.lifecycle.eventstore import pending_gaps
from pipelines.lifecycle.forget import Forgetter, load_forgotten
from pipelines.lifecycle.reconcile import ReconcileResult, reconcile_gaps
from pipelines.lifecycle.subjects import Forgotten
from pipelines.stripe_fc.client import StripeFCClient
from pipelines.warehouse import Warehouse

T = TypeVar("T")


@dataclass(frozen=True)
class Landing:
    """What the step's work may use: the open warehouse (writer lock held), the event store, the forgotten subjects."""

    warehouse: Warehouse
    store: EventStore
    forgotten: Forgotten


@dataclass(frozen=True)
class Landed(Generic[T]):
    """What a landing step did: its work's result, the gaps reconciled, the rows published to Iceberg, the totals."""

    result: T
    gaps: ReconcileResult
    gap_waits: bool  # a gap waits that no client could reconcile (no key here): the next run with a key does
    published: dict[str, int]
    totals: dict[str, int]
    catalog_uri: str  # the catalog's address as shown in metadata (no credentials)


async def land(
    open_warehouse: Callable[[], Warehouse],
    store_path: str | Path,
    work: Callable[[Landing], Awaitable[T]],
    tables: Sequence[str],
    run_id: str,
    gap_client: Callable[[], StripeFCClient | None],
    already_seen: Callable[[T], Iterable[str]] = lambda _result: (),
) -> Landed[T]:
    """Open the warehouse, then the event store, then: finish a pending deletion (before anything else is written),
    run `work`, reconcile the gaps the store records with the client `gap_client` gives (asked for only when a gap
    waits; closed when done), publish `tables` to Iceberg as run `run_id` and count every table's rows."""
    # The warehouse first: a warehouse that refuses to open (newer than the code) leaves no event store behind.
    with open_warehouse() as wh, EventStore(store_path) as store:
        Forgetter(wh, str(store_path)).finish_pending()
        forgotten = load_forgotten(wh)
        result = await work(Landing(wh, store, forgotten))
        gaps, gap_waits = ReconcileResult(), False
        with store.locked() as connection:
            waiting = bool(pending_gaps(connection))
        client = gap_client() if waiting else None
        if client is not None:
            try:
                gaps = await reconcile_gaps(store, wh, client, forgotten, already_seen=already_seen(result))
            finally:
                await client.aclose()
        gap_waits = waiting and client is None
        with wh.connection():  # the publish and the totals on one open of the file
            published = await asyncio.to_thread(wh.publish, tuple(tables), None, run_id)
            totals = wh.row_counts()
        return Landed(result, gaps, gap_waits, published, totals, wh.catalog_shown.get("uri", ""))
