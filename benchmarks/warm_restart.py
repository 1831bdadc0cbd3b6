"""Warm restart of one code location: its container recreated from the built image (as
`make redeploy` does, without the build) until the UI shows it LOADED again. Floor: the same
container started with a no-op command."""

import subprocess
import time

from figures import Figure

NAME = "warm_restart"
RELOAD = """mutation R($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) {
  __typename ... on WorkspaceLocationEntry { loadStatus
    locationOrLoadError { __typename } } } }"""


def restart_to_loaded(ctx, location: str) -> float:
    stack = ctx.stack
    begin = time.monotonic()
    stack.compose("up", "-d", "--force-recreate", "--no-deps", location)
    deadline = begin + 300
    while time.monotonic() < deadline:
        try:
            entry = stack.direct.query(RELOAD, name=location)["reloadRepositoryLocation"]
            if entry.get("loadStatus") == "LOADED" and entry["locationOrLoadError"]["__typename"] == "RepositoryLocation":
                return time.monotonic() - begin
        except Exception:  # the webserver answers with an error entry while the server is down
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{location} not reloaded within 300 s")


def noop_start_s(image: str) -> float:
    begin = time.monotonic()
    subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "true", image],
                   capture_output=True, check=True)
    return time.monotonic() - begin


def run(ctx) -> list[Figure]:
    repeat = ctx.repeat or (2 if ctx.quick else 5)
    values, floor = [], []
    for _ in range(repeat):
        floor.append(noop_start_s("flights-platform/ingestion:dev"))
        values.append(restart_to_loaded(ctx, "ingestion"))
    ctx.stack.wait_loaded()
    return [Figure(NAME, "restart ingestion -> loaded in the UI", "s", values, floor,
                   "no-op start of the same container")]
