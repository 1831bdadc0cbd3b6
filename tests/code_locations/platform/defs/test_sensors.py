"""The deployment-wide run-failure alert, against a real HTTP server on 127.0.0.1."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dagster import (
    DagsterInstance,
    DefaultSensorStatus,
    SkipReason,
    build_run_status_sensor_context,
    job,
    op,
)
from dagster._core.definitions.sensor_definition import SensorType

from platform_ops.defs.resources import WebhookDeliveryError, WebhookResource
from platform_ops.defs.sensors import alert_on_run_failure


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records what it is sent."""

    def __init__(self, status: int = 204):
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {"path": self.path, "content_type": self.headers["Content-Type"], "body": body}
                )
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@op
def load_warehouse():
    raise ValueError("warehouse refused the load: disk full")


@job
def nightly_load():
    load_warehouse()


@pytest.fixture(scope="module")
def failed_run() -> Iterator[tuple]:
    instance = DagsterInstance.ephemeral()
    result = nightly_load.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    yield instance, result
    instance.dispose()


def sensor_context(failed_run, webhook: WebhookResource):
    instance, result = failed_run
    return build_run_status_sensor_context(
        sensor_name=alert_on_run_failure.name,
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"webhook": webhook},
    ).for_run_failure()


def test_failed_run_is_posted_as_json(failed_run):
    _, result = failed_run
    with Receiver() as receiver:
        outcome = alert_on_run_failure(sensor_context(failed_run, WebhookResource(url=receiver.url)))
    assert outcome is None  # handled; Dagster moves the cursor past this run
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request["path"] == "/hooks/secret-token"
    assert request["content_type"] == "application/json"
    payload = json.loads(request["body"])
    run_id = result.dagster_run.run_id
    assert payload == {
        "run_id": run_id,
        "job": "nightly_load",
        "location": None,  # executed in-process: no code location origin
        "error": payload["error"],
        "failed_steps": 1,
        "link": f"/runs/{run_id}",
    }
    assert payload["error"].startswith('Error occurred while executing op "load_warehouse":')
    assert payload["error"].endswith("ValueError: warehouse refused the load: disk full")


def test_unset_url_skips_saying_alerts_are_off(failed_run):
    outcome = alert_on_run_failure(sensor_context(failed_run, WebhookResource()))
    assert isinstance(outcome, SkipReason)
    assert "ALERT_WEBHOOK_URL is not set" in outcome.skip_message
    assert "alerts are off" in outcome.skip_message


def test_webhook_error_status_is_raised_not_swallowed(failed_run):
    """Dagster records the raised error on the sensor tick and moves on to the next run."""
    with (
        Receiver(status=500) as receiver,
        pytest.raises(WebhookDeliveryError, match=r"answered HTTP 500") as excinfo,
    ):
        alert_on_run_failure(sensor_context(failed_run, WebhookResource(url=receiver.url)))
    assert "secret-token" not in str(excinfo.value)  # the URL path may be the secret
    assert len(receiver.requests) == 1


def test_unreachable_webhook_fails_fast_with_a_clear_error(failed_run):
    with Receiver() as receiver:
        url = receiver.url
    # server closed: nothing listens on that port any more
    webhook = WebhookResource(url=url, timeout_seconds=2)
    with pytest.raises(WebhookDeliveryError, match=r"alert webhook at http://127\.0\.0\.1:\d+ unreachable"):
        alert_on_run_failure(sensor_context(failed_run, webhook))


def test_non_http_url_is_rejected(failed_run):
    with pytest.raises(WebhookDeliveryError, match=r"ALERT_WEBHOOK_URL must be an http\(s\) URL"):
        alert_on_run_failure(sensor_context(failed_run, WebhookResource(url="file:///etc/passwd")))


def test_failure_sensor_watches_the_whole_deployment_and_runs_by_default():
    assert alert_on_run_failure.default_status == DefaultSensorStatus.RUNNING
    assert alert_on_run_failure.sensor_type == SensorType.RUN_STATUS
    assert alert_on_run_failure._monitor_all_code_locations  # no public accessor


def test_the_platform_location_serves_it_with_the_webhook_resource():
    """Defined once, in the platform location: every location's failed runs are alerted once."""
    from platform_ops.definitions import defs

    assert defs.resolve_sensor_def("alert_on_run_failure") is alert_on_run_failure
    assert "webhook" in defs.resources
    assert alert_on_run_failure.required_resource_keys == {"webhook"}
