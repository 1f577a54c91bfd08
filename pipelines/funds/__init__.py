"""The funds check before an ACH debit: the macro's front door, the check and its on-demand refresh, and the service
(`fc-balances serve`: memory of known balances, single-flight refreshes, the decision log).

Imports contract, normalize, stripe_fc, lifecycle, marts, events and webhooks, never Dagster.
"""
