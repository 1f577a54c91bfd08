"""Data lifecycle: forgetting a subject everywhere, event gaps and their reconciliation.

Imports contract, normalize, stripe_fc and warehouse, never Dagster.
"""
