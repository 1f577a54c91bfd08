-- Insert rejects from `batch_rows` unless an identical (account_id, as_of, currency, reason, payload) row is
-- stored (NULL-safe); duplicates inside the batch keep the earliest fetched_at.
INSERT INTO fc_rejected_balances
SELECT account_id, as_of, currency, reason, payload, fetched_at
FROM batch_rows AS incoming
WHERE NOT EXISTS (
    SELECT 1
    FROM fc_rejected_balances AS stored
    WHERE stored.account_id IS NOT DISTINCT FROM incoming.account_id
      AND stored.as_of IS NOT DISTINCT FROM incoming.as_of
      AND stored.currency IS NOT DISTINCT FROM incoming.currency
      AND stored.reason = incoming.reason
      AND stored.payload IS NOT DISTINCT FROM incoming.payload
)
QUALIFY row_number() OVER (
    PARTITION BY account_id, as_of, currency, reason, payload ORDER BY fetched_at, __ord
) = 1;
