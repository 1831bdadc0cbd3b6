"""Sensors of the platform location: the deployment-wide run-failure alert."""

from dagster import (
    DefaultSensorStatus,
    RunFailureSensorContext,
    SkipReason,
    run_failure_sensor,
)

from platform_ops.defs.resources import ALERT_WEBHOOK_URL_ENV, WebhookDeliveryError, WebhookResource

MAX_ERROR_CHARS = 2000


def _describe(error) -> str:
    """Dagster's step error wraps the user's exception; name both ("Error occurred while
    executing op ...: ValueError: ...")."""
    root = error
    while root.cause is not None:
        root = root.cause
    if root is error:
        return error.message.strip()
    # The wrapper's class name ("dagster._core.errors.DagsterExecution...: ") is noise here.
    outer = error.message.strip()
    outer = outer.partition(f"{error.cls_name}: ")[2] or outer
    return f"{outer} {root.message.strip()}"


def failure_payload(context: RunFailureSensorContext) -> dict:
    """Small JSON describing the failed run: enough to triage, with a link into the UI."""
    run = context.dagster_run
    origin = run.remote_job_origin
    step_errors = [
        _describe(event.step_failure_data.error)
        for event in context.get_step_failure_events()
        if event.step_failure_data and event.step_failure_data.error
    ]
    error = step_errors[0] if step_errors else (context.failure_event.message or "")
    return {
        "run_id": run.run_id,
        "job": run.job_name,
        "location": origin.location_name if origin else None,
        "error": error[:MAX_ERROR_CHARS],
        "failed_steps": len(step_errors),
        "link": f"/runs/{run.run_id}",
    }


@run_failure_sensor(
    name="alert_on_run_failure",
    monitor_all_code_locations=True,
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description=f"POSTs a JSON alert for every failed run in the deployment to {ALERT_WEBHOOK_URL_ENV}.",
)
def alert_on_run_failure(context: RunFailureSensorContext, webhook: WebhookResource):
    """Returning nothing lets Dagster handle every failed run of the tick; raising on a failed
    POST marks this run's sensor evaluation as errored in the tick log (and the cursor moves on,
    so one unreachable webhook does not stall alerts for later failures)."""
    if not webhook.enabled:
        return SkipReason(
            f"{ALERT_WEBHOOK_URL_ENV} is not set: run-failure alerts are off "
            f"(run {context.dagster_run.run_id} failed)"
        )
    payload = failure_payload(context)
    try:
        status = webhook.post_json(payload)
    except WebhookDeliveryError as exc:
        context.log.error(f"alert for failed run {payload['run_id']} NOT delivered: {exc}")
        raise
    context.log.info(f"alerted webhook about failed run {payload['run_id']} (HTTP {status})")
