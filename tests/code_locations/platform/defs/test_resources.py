"""Platform resources: the optional alert webhook URL, wired through EnvVar only when set."""

import pytest
from dagster import EnvVar

from platform_ops.defs.resources import WebhookResource, build_resources, webhook_from_env

# --- ALERT_WEBHOOK_URL is optional ------------------------------------------------------------


def test_dagster_refuses_an_unset_envvar_even_with_a_field_default(monkeypatch):
    """The behaviour webhook_from_env designs around: wiring EnvVar unconditionally would make
    every sensor tick fail to initialise the resource while the variable is unset."""
    monkeypatch.delenv("ALERT_WEBHOOK_URL", raising=False)
    with pytest.raises(Exception, match='environment variable "ALERT_WEBHOOK_URL" which is not set'):
        WebhookResource(url=EnvVar("ALERT_WEBHOOK_URL")).process_config_and_initialize()


def test_unset_webhook_url_means_alerts_off(monkeypatch):
    monkeypatch.delenv("ALERT_WEBHOOK_URL", raising=False)
    webhook = webhook_from_env().process_config_and_initialize()
    assert webhook.url == "" and not webhook.enabled


def test_empty_webhook_url_means_alerts_off(monkeypatch):
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "")
    configured = webhook_from_env()
    assert isinstance(configured.url, EnvVar)
    assert not configured.process_config_and_initialize().enabled


def test_set_webhook_url_is_read_through_envvar(monkeypatch):
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "https://alerts.example/hook")
    configured = webhook_from_env()
    assert configured.url == EnvVar("ALERT_WEBHOOK_URL")
    resolved = configured.process_config_and_initialize()
    assert resolved.enabled and resolved.url == "https://alerts.example/hook"


def test_the_location_wires_the_webhook_from_env(monkeypatch):
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "https://alerts.example/hook")
    assert build_resources()["webhook"].url == EnvVar("ALERT_WEBHOOK_URL")
