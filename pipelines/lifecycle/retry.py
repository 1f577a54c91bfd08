"""When the events sensor asks again for a run that did not land the waiting events: run keys and backoff."""

from __future__ import annotations

from dataclasses import dataclass

BACKOFF_FIRST_SECONDS = 60.0
BACKOFF_MAX_SECONDS = 3600.0
FINISHED_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCELED"})


@dataclass(frozen=True)
class RetryState:
    """The last run the sensor requested: for which waiting event, when, and how many times so far."""

    pending_id: str | None = None
    requested_at: float = 0.0
    attempt: int = 0

    @classmethod
    def parse(cls, value: object) -> RetryState:
        if not isinstance(value, dict):
            return cls()
        pending_id, at, attempt = value.get("pending_id"), value.get("requested_at"), value.get("attempt")
        if not isinstance(pending_id, str) or not isinstance(at, int | float) or type(attempt) is not int:
            return cls()
        return cls(pending_id, float(at), max(0, attempt))

    def as_dict(self) -> dict[str, object]:
        return {"pending_id": self.pending_id, "requested_at": self.requested_at, "attempt": self.attempt}

    @property
    def run_key(self) -> str:
        return self.pending_id if not self.attempt else f"{self.pending_id}#retry{self.attempt}"


def backoff_seconds(attempt: int) -> float:
    """60 s, 120 s, 240 s, ... capped at an hour."""
    return min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** max(0, attempt - 1))


def next_request(state: RetryState, pending_id: str, now: float, last_run_status: str | None) -> RetryState:
    """The run to request this tick (its `run_key`): the same state again means the same key, which Dagster
    launches only once.

    A newer waiting event gets a run at once. The same event still waiting means the last run failed, was
    canceled or ended before it arrived: once that run has finished and the backoff for the next attempt has
    passed, a retry gets a new run key. While the last run is queued or running, or the backoff lasts, the
    same key is returned. An unknown status (no such run) counts as finished.
    """
    if pending_id != state.pending_id:
        return RetryState(pending_id, now, 0)
    if last_run_status is not None and last_run_status not in FINISHED_STATUSES:
        return state
    attempt = state.attempt + 1
    if now - state.requested_at < backoff_seconds(attempt):
        return state
    return RetryState(pending_id, now, attempt)
