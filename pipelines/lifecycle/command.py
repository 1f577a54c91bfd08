"""`fc-balances forget`: parse the subjects, run the deletion under the writer lock, optionally disconnect."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pipelines.lifecycle.forget import ForgetResult, Forgetter
from pipelines.lifecycle.subjects import SubjectError, subject_type


def validate(subjects: list[tuple[str, str]]) -> list[str]:
    """Every (kind, id) checked before anything is touched; SubjectError names the first bad one."""
    for kind, subject_id in subjects:
        if subject_type(subject_id) != kind:
            raise SubjectError(f"--{kind} needs a {'cus_' if kind == 'customer' else 'fca_'}... id")
    return list(dict.fromkeys(subject_id for _, subject_id in subjects))


def describe(result: ForgetResult) -> str:
    if result.request_id is None:
        return f"{result.subject_id}: no data about this {result.subject_type} in the warehouse; nothing to delete"
    if result.already_forgotten:
        return f"{result.subject_id}: already forgotten (request {result.request_id}); nothing left to delete"
    total = sum(result.rows_removed.values())
    tables = ", ".join(f"{name} {count}" for name, count in sorted(result.rows_removed.items()) if count)
    return f"{result.subject_id}: forgotten (request {result.request_id}): {total} rows removed ({tables})"


def run_forget(subject_ids: list[tuple[str, str]], and_disconnect: bool, say: Callable[[str], None],
               warehouse_directory: str | None = None) -> int:
    """Forget every (kind, id) subject; 0 on success, 1 when a disconnect failed (the data was deleted all the same).

    Settings resolve as a run's do: the warehouse resource (folder, Iceberg catalog, event store, lock timeout)
    and, for --and-disconnect, the Stripe resource with the key from STRIPE_API_KEY.
    """
    from pipelines.resources import WarehouseResource

    subjects = validate(subject_ids)
    resource = WarehouseResource(directory=warehouse_directory)
    with resource.open() as warehouse:
        forgetter = Forgetter(warehouse, str(resource.event_store_path()))
        finished = forgetter.finish_pending()
        if finished:
            say(f"finished {finished} deletion request(s) an earlier forget or run left unfinished")
        for subject_id in subjects:
            say(describe(forgetter.forget(subject_id)))
    if and_disconnect:
        return _disconnect(subjects, say)
    return 0


def _disconnect(subjects: list[str], say: Callable[[str], None]) -> int:
    """Stripe's `disconnect` on every account of the subjects, as Stripe advises when consent is revoked."""
    import stripe

    from pipelines.resources import StripeResource
    from pipelines.settings import read

    api_key = read("STRIPE_API_KEY")
    if not api_key:
        say("error: --and-disconnect needs STRIPE_API_KEY; the data was deleted, nothing was disconnected")
        return 1

    async def disconnect_all() -> tuple[int, int]:
        # Outside a Dagster run an EnvVar is not resolved: the key goes in as read (kept in memory only).
        client = StripeResource(api_key=api_key).client()
        done = missing = 0
        try:
            for subject_id in subjects:
                accounts = [subject_id]
                if subject_type(subject_id) == "customer":
                    accounts = [a["id"] async for page in client.list_accounts(subject_id) for a in page]
                for account_id in accounts:
                    try:
                        await client.request(
                            "post", f"/v1/financial_connections/accounts/{account_id}/disconnect", {})
                        done += 1
                    except stripe.InvalidRequestError:
                        missing += 1  # unknown at Stripe, or already gone: nothing more to disconnect
        finally:
            await client.aclose()
        return done, missing

    try:
        done, missing = asyncio.run(disconnect_all())
    except stripe.StripeError as exc:
        say(f"error: disconnect failed ({type(exc).__name__}); the data was deleted")
        return 1
    say(f"disconnected {done} account(s) at Stripe" + (f"; {missing} unknown there" if missing else ""))
    return 0


__all__ = ["SubjectError", "run_forget"]
