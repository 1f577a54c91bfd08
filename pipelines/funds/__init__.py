"""The funds check before an ACH debit: the macro's front door, the check and its on-demand refresh.

Imports contract, normalize, stripe_fc, lifecycle and marts, never Dagster.
"""
