"""Cold start: `docker compose up -d` on empty volumes (first-time migrate included, images
already built) until every code location is LOADED, and until the gateway answers the login
page (401 with WWW-Authenticate). Floor: starting the same containers with a no-op command."""

import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from bench_stack import LOCATIONS, BenchStack
from figures import Figure, Target

NAME = "cold_start"
POLL_S = 0.2


def images(stack: BenchStack) -> list[str]:
    """One image per service (several services share one: each is started once per service)."""
    out = stack.compose("config", "--images").stdout.split()
    return out


def noop_start_s(stack: BenchStack) -> float:
    """Create + start + exit of every service's container with `true`, all at once."""
    def start(image: str) -> None:
        subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "true", image],
                       capture_output=True, check=True)
    services = images(stack)
    begin = time.monotonic()
    with ThreadPoolExecutor(len(services)) as pool:
        list(pool.map(start, services))
    return time.monotonic() - begin


def login_page_up(stack: BenchStack) -> bool:
    try:
        urllib.request.urlopen(stack.base_url + "/", timeout=2)
    except urllib.error.HTTPError as exc:
        return exc.code == 401 and "Basic" in (exc.headers.get("WWW-Authenticate") or "")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
    return False


def one_cold_start(stack: BenchStack) -> tuple[float, float]:
    stack.wipe()
    begin = time.monotonic()
    stack.compose("up", "-d")
    gateway = loaded = None
    deadline = begin + 300
    while (gateway is None or loaded is None) and time.monotonic() < deadline:
        if gateway is None and login_page_up(stack):
            gateway = time.monotonic() - begin
        if loaded is None:
            try:
                entries = stack.client.locations()
                if all(entries.get(n, {}).get("loadStatus") == "LOADED"
                       and entries[n]["locationOrLoadError"]["__typename"] == "RepositoryLocation"
                       for n in LOCATIONS):
                    loaded = time.monotonic() - begin
            except Exception:  # refused, 502 or 401 while the gateway and webserver come up
                pass
        time.sleep(POLL_S)
    if gateway is None or loaded is None:
        raise RuntimeError(f"stack not up within 300 s (gateway {gateway}, loaded {loaded})\n{stack.logs(50)}")
    return loaded, gateway


def run(ctx) -> list[Figure]:
    stack = ctx.stack
    repeat = ctx.repeat or (1 if ctx.quick else 3)
    loaded, gateway, floor = [], [], []
    for _ in range(repeat):
        floor.append(noop_start_s(stack))
        a, b = one_cold_start(stack)
        loaded.append(a)
        gateway.append(b)
    ctx.stack_is_up = True
    floor_name = "no-op start of the same containers"
    return [
        Figure(NAME, "up -d -> both locations loaded", "s", loaded, floor, floor_name, Target("max_abs", 8)),
        Figure(NAME, "up -d -> gateway login page (401)", "s", gateway, floor, floor_name),
    ]
