"""The deployment's name: compose's project name, which prefixes the network and volumes run
containers join by name and labels every container of this deployment."""

from platform_core import settings

PROJECT = settings.text(
    "PLATFORM_PROJECT", required=True,
    doc="the compose project (set by compose): run containers join its network and carry its label")
