-- The Python front door's call of the macro (pipelines/funds/macro.py), every value bound as a parameter.
SELECT sufficient, basis, balance_minor, as_of, staleness_hours
FROM fc_sufficient_funds($account_id, $amount_minor, $currency, at := $at)
