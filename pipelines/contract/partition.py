"""How an exported table's Iceberg data is partitioned: one transform of one declared column (data only)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Partition:
    """Hidden partitioning of an exported table: `day` (the UTC day of a timestamp) or `identity` (the value of a
    DATE or text column). The publish's bookkeeping, the mart builds and the Iceberg partition specs all read it."""

    column: str
    transform: str = "identity"  # "identity" or "day"

    def describe(self) -> str:
        return f"{self.transform}({self.column})"
