"""Columns several declarations share, declared once (contract/tables.py and contract/bookkeeping.py use them)."""

from __future__ import annotations

from pipelines.contract.shapes import AMOUNT, TS, Column
from pipelines.contract.values import BALANCE_TYPES

ACCOUNT_ID = Column("account_id", "VARCHAR", "Financial Connections account id (fca_...)", nullable=False)
CUSTOMER_ID = Column("customer_id", "VARCHAR", "account_holder.customer (null for other holder types)")
CURRENCY = Column("currency", "VARCHAR", "lowercase ISO 4217 code, as Stripe sends it", nullable=False)
AS_OF = Column("as_of", TS, "when the institution computed the balance", nullable=False)
BALANCE_TYPE = Column("balance_type", "VARCHAR", "cash or credit", nullable=False, values=BALANCE_TYPES)
AMOUNTS = (
    Column("current_minor", "BIGINT", "current balance in minor units, Stripe's sign (+ owed to the holder)"),
    Column("available_minor", "BIGINT", "cash.available in minor units (cash only; null when not given)"),
    Column("used_minor", "BIGINT", "credit.used in minor units (credit only)"),
    Column("current", AMOUNT, "current_minor / 10^exponent (ISO 4217 as Stripe applies it), exact"),
    Column("available", AMOUNT, "available_minor / 10^exponent, exact"),
    Column("used", AMOUNT, "used_minor / 10^exponent, exact"),
)
BUILT_AT = Column("built_at", TS, "the build time the mart was computed for (its step's start)")


def nullable(column: Column) -> Column:
    """The same column where marts may leave it null (they are built by SQL, not constrained)."""
    return Column(column.name, column.type, column.description, nullable=True, values=column.values)
