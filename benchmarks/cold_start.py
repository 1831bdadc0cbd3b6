"""Cold start: `docker compose up -d` on empty volumes (first-time migrate included, images
already built) until every code location is LOADED, and until the gateway answers the login
page (401 with WWW-Authenticate). Floor: starting the same containers with a no-op command.
Then the start a returning user sees: `down` (volumes kept) and `up -d` again.

Its profile: the CPU each service used until the locations were loaded (from its cgroup) and the
one-shot services' wall time. On a small host the start is CPU-bound: the CPU-seconds divided by
the cores is as fast as these services can be loaded, however they are ordered."""

import os
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


def one_cold_start(stack: BenchStack, keep_volumes: bool = False) -> tuple[float, float, dict[str, float], dict[str, float]]:
    """Seconds to loaded and to the login page; CPU-seconds by service and one-shot walls at loaded.
    keep_volumes: a restart of an existing stack (containers removed, history kept)."""
    if keep_volumes:
        stack.compose("down", "--timeout", "10", check=False)
    else:
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
                    cpu, one_shots = stack.cpu_seconds(), stack.one_shot_seconds()
            except Exception:  # refused, 502 or 401 while the gateway and webserver come up
                pass
        time.sleep(POLL_S)
    if gateway is None or loaded is None:
        raise RuntimeError(f"stack not up within 300 s (gateway {gateway}, loaded {loaded})\n{stack.logs(50)}")
    return loaded, gateway, cpu, one_shots


def run(ctx) -> list[Figure]:
    stack = ctx.stack
    repeat = ctx.repeat or (1 if ctx.quick else 3)
    loaded, gateway, floor, cpus, one_shots = [], [], [], [], []
    restart_loaded, restart_gateway = [], []
    for _ in range(repeat):
        floor.append(noop_start_s(stack))
        a, b, cpu, walls = one_cold_start(stack)
        loaded.append(a)
        gateway.append(b)
        cpus.append(cpu)
        one_shots.append(walls)
        a, b, _, _ = one_cold_start(stack, keep_volumes=True)
        restart_loaded.append(a)
        restart_gateway.append(b)
    ctx.stack_is_up = True
    floor_name = "no-op start of the same containers"
    figures = [
        Figure(NAME, "up -d -> every location loaded", "s", loaded, floor, floor_name, Target("max_abs", 8)),
        Figure(NAME, "up -d -> gateway login page (401)", "s", gateway, floor, floor_name, Target("max_abs", 10)),
        Figure(NAME, "restart (down, volumes kept; up -d) -> every location loaded", "s", restart_loaded, floor, floor_name),
        Figure(NAME, "restart (down, volumes kept; up -d) -> gateway login page (401)", "s", restart_gateway, floor, floor_name),
    ]
    if all(cpus):
        cores = os.cpu_count() or 1
        totals = [sum(cpu.values()) for cpu in cpus]
        figures.append(Figure(NAME, f"CPU until loaded, all services, / {cores} cores", "s",
                              [t / cores for t in totals], extra={"cpu_seconds": totals}))
        for service in sorted(set().union(*cpus)):
            figures.append(Figure(NAME, f"CPU until loaded, {service}", "s", [c.get(service, 0.0) for c in cpus]))
    for service in sorted(set().union(*one_shots)):
        figures.append(Figure(NAME, f"one-shot wall time, {service}", "s", [w.get(service, 0.0) for w in one_shots]))
    return figures
