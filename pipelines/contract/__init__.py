"""The table contract: declarations, the DDL, Arrow and Dagster schemas made from them, migrations, checks.

Also the read-only known state for the refresh policy. Imports only sql, settings and stripe_fc.policy's types.
"""
