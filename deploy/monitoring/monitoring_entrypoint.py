#!/usr/bin/env python3
"""Entrypoint of the monitoring image: `prometheus ...` or `alertmanager ...`. Renders that
program's config from the environment into /tmp (the root file system is read-only), then
execs it with the remaining arguments. Neither program expands variables in its config file.

Prometheus: MONITORING_SCRAPE_INTERVAL (how often targets are scraped and rules evaluated).
Alertmanager: ALERT_WEBHOOK_URL (the watchdog's webhook; empty: alerts are kept, not sent) and
MONITORING_ALERT_GROUP_WAIT. Compose gives every one of them its default."""

import json
import os
import re
import sys
from string import Template
from urllib.parse import urlsplit

CONFIG_DIR = "/etc/monitoring"
BINARIES = {"prometheus": "/usr/bin/prometheus", "alertmanager": "/usr/bin/prometheus-alertmanager"}
DURATION = re.compile(r"^\d+(ms|s|m|h)$")


def duration(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not DURATION.match(value):
        raise SystemExit(f"monitoring: {name} must be a duration like 15s, 1m or 500ms, got {value!r}")
    return value


def webhook_receiver() -> str:
    url = os.environ.get("ALERT_WEBHOOK_URL", "").strip()
    if not url:
        return "[]"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SystemExit(f"monitoring: ALERT_WEBHOOK_URL must be an http(s) URL, got {url!r}")
    # JSON is YAML: the URL goes in quoted and escaped, whatever it contains.
    return json.dumps([{"url": url, "send_resolved": True}])


def render(program: str) -> str:
    if program == "prometheus":
        values = {"scrape_interval": duration("MONITORING_SCRAPE_INTERVAL")}
        name = "prometheus.yml"
    else:
        values = {"webhook_configs": webhook_receiver(), "group_wait": duration("MONITORING_ALERT_GROUP_WAIT")}
        name = "alertmanager.yml"
    text = Template(open(f"{CONFIG_DIR}/{name}.template").read()).substitute(values)
    out = f"/tmp/{name}"
    with open(out, "w") as handle:
        handle.write(text)
    return out


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in BINARIES:
        raise SystemExit(f"usage: monitoring-entrypoint {{{'|'.join(BINARIES)}}} [args...]")
    program, args = argv[0], argv[1:]
    config = render(program)
    os.execv(BINARIES[program], [BINARIES[program], f"--config.file={config}", *args])


if __name__ == "__main__":
    main(sys.argv[1:])
