"""Dagster column schemas generated from the table declarations (DuckDB types, keys and nullability)."""

import dagster as dg

from pipelines.contract.tables import TABLES


def column_schema(table: str) -> dg.TableSchema:
    declared = TABLES[table]
    other = [f"unique key ({', '.join(declared.key)})"] if declared.key else []
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                column.name,
                column.type,
                description=column.description,
                constraints=dg.TableColumnConstraints(
                    nullable=column.nullable,
                    other=[f"one of: {', '.join(column.values)}"] if column.values else [],
                ),
            )
            for column in declared.columns
        ],
        constraints=dg.TableConstraints(other=other),
    )


def table_metadata(table: str) -> dict[str, object]:
    """The definition-time metadata every table asset carries."""
    return {"dagster/column_schema": column_schema(table)}
