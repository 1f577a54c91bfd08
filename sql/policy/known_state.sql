-- Read once before a run with a refresh policy lists accounts: each account's newest balance as_of in the
-- warehouse (microseconds since the epoch), and the priorities not expired at $now.
WITH newest AS (
    SELECT account_id, max(as_of) AS newest_as_of FROM fc_balances GROUP BY account_id
),
priorities AS (
    SELECT account_id, max(priority) AS priority
    FROM fc_refresh_priority
    WHERE expires_at IS NULL OR expires_at > $now
    GROUP BY account_id
)
SELECT coalesce(n.account_id, p.account_id) AS account_id, epoch_us(n.newest_as_of) AS newest_as_of_us, p.priority
FROM newest AS n
FULL OUTER JOIN priorities AS p ON n.account_id = p.account_id;
