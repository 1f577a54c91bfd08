"""Stripe's webhook receiver (aiohttp), storing each event in the event store.

Imports events and redact, never Dagster.
"""
