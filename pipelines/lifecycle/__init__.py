"""Data lifecycle: forgetting a subject everywhere, event gaps and their reconciliation.

Imports contract, normalize, stripe_fc, warehouse and the event store (landing.py), never Dagster.
"""
