"""Executing the Dagster jobs in process, as the schedule would: the CLI's logger and its one-line failure."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

from pipelines import startup
from pipelines.cli.common import CliError, say
from pipelines.redact import redact

_SKIPPED_STEP = re.compile(r"^Dependencies for step \S+ (?:failed|were not executed)")


class _ProgressHandler(logging.Handler):
    """Prints the pipeline's own log lines (progress, warnings), not Dagster's framework events."""

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        message = str(meta.get("orig_message", record.getMessage()))
        # Steps skipped after a failure say so in plain messages; the one-line error at the end says it better.
        if meta.get("dagster_event") is not None or _SKIPPED_STEP.match(message):
            return
        say(message)


def _cli_logger_defs() -> dict[str, Any]:
    import dagster as dg

    @dg.logger(config_schema={"quiet": dg.Field(bool, default_value=False)},
               description="fc-balances CLI: the pipeline's own messages, one line each")
    def cli_progress(init_context: dg.InitLoggerContext) -> logging.Logger:
        logger = logging.getLogger("fc_balances.cli")
        logger.setLevel(logging.WARNING if init_context.logger_config["quiet"] else logging.INFO)
        logger.propagate = False
        if not logger.handlers:
            logger.addHandler(_ProgressHandler())
        return logger

    return {"cli_progress": cli_progress}


_QUALIFIED_ERROR = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Failure): ")


def failure_message(result: Any) -> str:
    """The root cause of the first failed step, as one line."""
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE" and event.step_failure_data:
            error = event.step_failure_data.error
            while error is not None and error.cause is not None:
                error = error.cause
            if error is not None:
                text = error.message.strip().splitlines()[0] if error.message.strip() else error.cls_name or "error"
                return _QUALIFIED_ERROR.sub("", text)
    return "the run failed"


@contextmanager
def run_instance() -> Iterator[Any]:
    """The Dagster instance of one command's runs: DAGSTER_HOME's, or one ephemeral instance for all of them (its
    start-up paid once), disposed when the command is done (its temporary folder goes with it)."""
    import dagster as dg

    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    try:
        yield instance
    finally:
        instance.dispose()


def execute_job(resources: dict[str, Any], quiet: bool = False, ingest_only: bool = False,
                job_name: str | None = None, tags: dict[str, str] | None = None,
                instance: Any | None = None) -> dict[str, Any]:
    """Execute the same Dagster job the schedule runs, in this process, with the given resources.

    Settings travel as resources, never as run config (Dagster stores run config) and never through os.environ.
    `job_name` and `tags` pick another job (the marts) and a partition range; `instance` the Dagster instance of
    the command's other runs (else one of its own).
    """
    if instance is None:
        with run_instance() as own:
            return execute_job(resources, quiet, ingest_only, job_name, tags, own)
    from pipelines.definitions import INGEST_JOB_NAME, JOB_NAME, build_definitions

    defs = build_definitions(resources)
    name = job_name or (INGEST_JOB_NAME if ingest_only else JOB_NAME)
    job = defs.resolve_job_def(name).with_logger_defs(_cli_logger_defs())
    # A logger runs only when the run config names it; none named would bring Dagster's console logger back.
    run_config = {"loggers": {"cli_progress": {"config": {"quiet": quiet}}}}
    startup.end()  # Dagster, the definitions and the instance are loaded: the run's work collects as usual
    result = job.execute_in_process(
        run_config=run_config, instance=instance, raise_on_error=False, tags=tags
    )
    if not result.success:
        raise CliError(redact(failure_message(result)))
    metadata: dict[str, Any] = {"run_id": result.run_id}
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        table = materialization.asset_key.to_user_string()
        metadata[table] = {key: getattr(value, "value", value) for key, value in materialization.metadata.items()}
    return metadata


def execute_marts(resources: dict[str, Any], quiet: bool = False, first: date | None = None,
                  last: date | None = None, full: bool = False, instance: Any | None = None) -> dict[str, Any]:
    """Run the marts job once over a range of days: given, every day (`full`), or what the data says is out of date.

    The out-of-date range always ends today, so the unpartitioned marts are brought up to date too.
    """
    from assets.marts import marts_job
    from assets.marts_launch import out_of_date_range, range_tags

    warehouse = resources["warehouse"]
    today = datetime.now(UTC).date()
    settings = warehouse.history()
    if full:
        first, last = settings.history_start, today
    elif first is not None:
        last = last or today
        if last < first:
            raise CliError(f"--to {last} is before --from {first}")
        if last > today:
            raise CliError(f"--to {last} is after today ({today}, UTC)")
    else:
        found = out_of_date_range(warehouse, today)
        first, last = found if found is not None else (today, today)
    if not quiet:
        say(f"marts: rebuilding {first}..{last} ({(last - first).days + 1} days)")
    return execute_job(resources, quiet=quiet, job_name=marts_job.name, tags=range_tags(first, last),
                       instance=instance)
