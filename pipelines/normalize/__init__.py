"""Stripe JSON to tidy Arrow tables: sign convention, exact decimals, one row per currency.

Imports only the contract; knows nothing of Dagster, DuckDB or the warehouse.
"""
