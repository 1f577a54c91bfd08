"""Stripe Financial Connections: the SDK client, rate limits, the refresh engine, the refresh policy.

Imports only the contract's declarations, settings and redact: no Dagster, DuckDB or warehouse.
"""
