-- Keys held by more than one row; {table} and {key} come from a fixed allow-list in pipelines/contract.py.
SELECT count(*) FROM (SELECT {key} FROM {table} GROUP BY {key} HAVING count(*) > 1);
