"""The marts built from the warehouse by partition day: daily balances, features, latest, liquidity.

SQL lives under sql/marts/. Imports contract and warehouse, never Dagster.
"""
