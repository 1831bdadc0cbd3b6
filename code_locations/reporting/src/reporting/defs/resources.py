"""Resources of the reporting location. Every setting comes from an environment variable through
EnvVar, so nothing deployment-specific is baked in at import time and the UI shows which
variable feeds which field."""

import json
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from dagster import ConfigurableResource, EnvVar

from flights_shared.postgres_io_manager import PostgresPandasIOManager
from flights_shared.warehouse import reject_blank_env, warehouse_from_env

REPORTS_DIR_ENV = "REPORTS_DIR"
ALERT_WEBHOOK_URL_ENV = "ALERT_WEBHOOK_URL"


class ReportsDirectory(ConfigurableResource):
    """Directory the human-readable reports are published to (a volume shared with readers)."""

    path: str

    def write_atomically(self, name: str, content: bytes) -> Path:
        """Write `name` so readers see either the old file or the complete new one, never a
        half-written report: temp file in the same directory, fsync, then rename over."""
        if not self.path:
            raise ValueError(f"{REPORTS_DIR_ENV} is empty: set it to the directory reports go to")
        directory = Path(self.path)
        if not directory.is_absolute():
            raise ValueError(
                f"{REPORTS_DIR_ENV} must be an absolute path (the working directory differs between "
                f"code server and run containers), got {self.path!r}"
            )
        if Path(name).name != name or name in ("", ".", ".."):
            raise ValueError(f"report file name must be a plain file name, got {name!r}")
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; reports are meant to be read
            target = directory / name
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return target


class WebhookDeliveryError(RuntimeError):
    """The alert webhook could not be reached or answered with an error status."""


class WebhookResource(ConfigurableResource):
    """Where run-failure alerts are POSTed as JSON. An empty URL means alerts are switched off."""

    url: str = ""
    timeout_seconds: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.url.strip())

    def post_json(self, payload: dict) -> int:
        """POST `payload`; returns the HTTP status, raises WebhookDeliveryError naming the URL's
        host and the cause on any failure (never hangs longer than timeout_seconds)."""
        url = self.url.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise WebhookDeliveryError(
                f"{ALERT_WEBHOOK_URL_ENV} must be an http(s) URL, got {url!r}"
            )
        request = urllib.request.Request(
            url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "dagster-reporting-alerts"},
            method="POST",
        )
        # Only the host goes into messages: the path of a webhook URL is often its secret.
        where = f"{parts.scheme}://{parts.netloc}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            raise WebhookDeliveryError(
                f"alert webhook at {where} answered HTTP {exc.code} {exc.reason}"
            ) from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise WebhookDeliveryError(f"alert webhook at {where} unreachable: {reason}") from exc


def webhook_from_env() -> WebhookResource:
    """The webhook fed by ALERT_WEBHOOK_URL, which is optional.

    Dagster refuses to initialize a resource whose EnvVar is unset, even when the field has a
    default (it raises "You have attempted to fetch the environment variable ... which is not
    set" on every sensor tick). So the EnvVar is wired only when the variable exists in the
    code server's environment (set-but-empty also works and means "off"); otherwise the field
    keeps its "" default and the sensor reports that alerts are off."""
    if ALERT_WEBHOOK_URL_ENV in os.environ:
        return WebhookResource(url=EnvVar(ALERT_WEBHOOK_URL_ENV))
    return WebhookResource()


def build_resources() -> dict:
    reject_blank_env(REPORTS_DIR_ENV)
    warehouse = warehouse_from_env()
    return {
        "warehouse": warehouse,
        "io_manager": PostgresPandasIOManager(warehouse=warehouse),
        "reports_dir": ReportsDirectory(path=EnvVar(REPORTS_DIR_ENV)),
        "webhook": webhook_from_env(),
    }
