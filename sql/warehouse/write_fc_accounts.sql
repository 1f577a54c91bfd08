-- Upsert accounts from the registered batch `batch_rows`: the newest observed_at wins; on a tie the stored
-- row stays (so a re-written batch changes nothing), inside the batch the later row (__ord) wins.
-- access_stopped_at: set while the status is inactive/disconnected, to the first observation in that state
-- (kept across later observations of the same stop), cleared when the account is active again.
INSERT INTO fc_accounts
SELECT account_id, customer_id, account_holder_type, institution_name, display_name, last4, category,
       subcategory, status, permissions, livemode, created_at, balance_refresh_status,
       balance_refresh_last_attempted_at, next_refresh_available_at, observed_at, access_stopped_at,
       expected_deactivation_at, account_numbers_status
FROM batch_rows
QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY observed_at DESC, __ord DESC) = 1
ON CONFLICT (account_id) DO UPDATE SET
    customer_id = excluded.customer_id,
    account_holder_type = excluded.account_holder_type,
    institution_name = excluded.institution_name,
    display_name = excluded.display_name,
    last4 = excluded.last4,
    category = excluded.category,
    subcategory = excluded.subcategory,
    status = excluded.status,
    permissions = excluded.permissions,
    livemode = excluded.livemode,
    created_at = excluded.created_at,
    balance_refresh_status = excluded.balance_refresh_status,
    balance_refresh_last_attempted_at = excluded.balance_refresh_last_attempted_at,
    next_refresh_available_at = excluded.next_refresh_available_at,
    observed_at = excluded.observed_at,
    expected_deactivation_at = excluded.expected_deactivation_at,
    account_numbers_status = excluded.account_numbers_status,
    access_stopped_at = CASE
        WHEN excluded.access_stopped_at IS NULL THEN NULL
        WHEN fc_accounts.access_stopped_at IS NOT NULL
             AND fc_accounts.status IN ('inactive', 'disconnected') THEN fc_accounts.access_stopped_at
        ELSE excluded.access_stopped_at
    END
WHERE excluded.observed_at > fc_accounts.observed_at;
