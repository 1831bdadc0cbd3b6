"""Resources of the platform location. ALERT_WEBHOOK_URL is optional and read through EnvVar,
so nothing deployment-specific is baked in at import time and the UI shows which variable feeds
the webhook's URL."""

import json
import os
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from dagster import ConfigurableResource, EnvVar

ALERT_WEBHOOK_URL_ENV = "ALERT_WEBHOOK_URL"


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
            headers={"Content-Type": "application/json", "User-Agent": "dagster-platform-alerts"},
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
    return {"webhook": webhook_from_env()}
