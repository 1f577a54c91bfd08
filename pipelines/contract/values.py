"""The closed value sets and rules the declarations and the code share, each declared once: refresh outcomes and
their groups, Stripe's refresh statuses, balance types, account statuses, and the feature windows (data only)."""

from __future__ import annotations


class RefreshOutcome:
    """What happened to one account's balance refresh in a run (fc_balance_refreshes.outcome), by name."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # Stripe's refresh finished without a balance
    TIMED_OUT = "timed_out"
    ERROR = "error"  # the request failed, or Stripe answered with an unexpected status
    SKIPPED_COOLDOWN = "skipped_cooldown"
    SKIPPED_INACTIVE = "skipped_inactive"
    SKIPPED_NO_PERMISSION = "skipped_no_permission"
    SKIPPED_FRESH = "skipped_fresh"  # the refresh policy: the newest balance is young enough
    SKIPPED_BUDGET = "skipped_budget"  # the refresh policy: over FC_BALANCES_MAX_REFRESHES


REFRESH_OUTCOMES: tuple[str, ...] = (
    RefreshOutcome.SUCCEEDED, RefreshOutcome.FAILED, RefreshOutcome.TIMED_OUT, RefreshOutcome.SKIPPED_COOLDOWN,
    RefreshOutcome.SKIPPED_INACTIVE, RefreshOutcome.SKIPPED_NO_PERMISSION, RefreshOutcome.ERROR,
    RefreshOutcome.SKIPPED_FRESH, RefreshOutcome.SKIPPED_BUDGET,
)
# The groups the failure-rate check counts (passed to sql/checks/last_run_refresh_failures.sql); skips are neither.
ATTEMPTED_OUTCOMES: tuple[str, ...] = (
    RefreshOutcome.SUCCEEDED, RefreshOutcome.FAILED, RefreshOutcome.TIMED_OUT, RefreshOutcome.ERROR)
FAILED_OUTCOMES: tuple[str, ...] = (RefreshOutcome.FAILED, RefreshOutcome.TIMED_OUT, RefreshOutcome.ERROR)
SKIPPED_OUTCOMES: tuple[str, ...] = tuple(o for o in REFRESH_OUTCOMES if o not in ATTEMPTED_OUTCOMES)
# Refreshes the refresh policy saved (not requested).
SAVED_OUTCOMES: tuple[str, ...] = (RefreshOutcome.SKIPPED_FRESH, RefreshOutcome.SKIPPED_BUDGET)


class FundsRefreshOutcome:
    """The funds check's answers about its one refresh that are not run outcomes (its refresh_outcome is one of
    these or a RefreshOutcome; nothing of them is stored in fc_balance_refreshes)."""

    NOT_NEEDED = "not_needed"  # the known balance was fresh enough
    NOT_REQUESTED = "not_requested"  # --no-refresh, or no balances permission known locally
    SKIPPED_PENDING = "skipped_pending"  # a refresh is already pending at Stripe


class RefreshStatus:
    """Stripe's balance_refresh.status values (fc_accounts.balance_refresh_status)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# A finished refresh's status and the run outcome it gives.
FINISHED_REFRESH_OUTCOMES: dict[str, str] = {
    RefreshStatus.SUCCEEDED: RefreshOutcome.SUCCEEDED, RefreshStatus.FAILED: RefreshOutcome.FAILED}
BALANCE_TYPES: tuple[str, ...] = ("cash", "credit")
ACCOUNT_STATUSES: tuple[str, ...] = ("active", "inactive", "disconnected")
SUBJECT_TYPES: tuple[str, ...] = ("customer", "account")
DELETION_STATUSES: tuple[str, ...] = ("pending", "deleted", "done")
# account_numbers[].status as Stripe documents it since API version endive (2026-09-30), best first: only
# transactable numbers can be debited, pending ones may become so. The enum is open: a value not listed here is
# stored as sent and ranks after pending and before expired (it may be a usable state Stripe added; expired and
# deactivated are known to be unusable).
ACCOUNT_NUMBER_STATUSES: tuple[str, ...] = ("transactable", "pending", "expired", "deactivated")
# Why fc_account_health asks for a relink, most urgent first: an account gets the first that applies.
RELINK_REASONS: tuple[str, ...] = (
    "disconnected", "inactive", "numbers_not_transactable", "deactivating_soon", "refresh_failing",
    "no_balance_permission",
)
# fc_balance_refreshes outcomes that count as a failed refresh for account health (skips neither count nor break a
# streak; a timed-out refresh may still succeed at Stripe, so it does not count either).
FAILED_REFRESH_OUTCOMES: tuple[str, ...] = ("failed", "error")
# What a funds check judged by (fc_funds_decisions.basis and the fc_sufficient_funds macro).
FUNDS_BASES: tuple[str, ...] = ("available", "current_fallback", "no_balance")
# The feature rules: fc_underwriting_features has a row per window, (short, long) days ending on window_end, and a
# key has rows for a window_end only while its long window holds a daily value. Passed to the SQL as parameters.
FEATURE_WINDOWS: tuple[int, int] = (30, 90)
