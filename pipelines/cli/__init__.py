"""The command line (`fc-balances`): one module per command group.

May import every pipelines package and the Dagster definitions; nothing imports it but entry.
"""
