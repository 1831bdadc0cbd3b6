"""Latency the gateway adds to a GraphQL request, in one run of a throwaway stack.

    uv run python benchmarks/gateway_latency.py [-n 300]

Series (each: 20 warm-up requests, then n timed POST /graphql on one keep-alive connection):
  direct   a container on the compose network -> webserver:3000 (no auth)
  gateway  the same container -> gateway:8080 with basic auth (verified login, i.e. auth-cache hit)
           direct and gateway requests alternate, so both see the same load
  host     the host -> 127.0.0.1:GATEWAY_PORT (published port), as a browser on the host
  login    the first request after the auth cache was emptied (bcrypt check), host; 10 samples
Queries: `{ version }` (the proxy's own cost) and the UI's workspace query (a real one).
The replay is off so no runs compete for the CPU. Writes
benchmarks/results/<date>-gateway-latency.json and prints a markdown table."""

import argparse
import base64
import datetime
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.compose_stack import ComposeStack  # noqa: E402
from tests.e2e.dagster_graphql import LOCATIONS, DagsterGraphQL  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
QUERIES = {"version": "{ version }", "workspace": LOCATIONS}
WARMUP = 20
LOGIN_SAMPLES = 10

# Runs inside a container on the compose network: argv = n, Authorization header value.
IN_NETWORK = r"""
import http.client, json, sys, time
n, auth, queries = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
targets = {"direct": ("webserver", 3000, {}), "gateway": ("gateway", 8080, {"Authorization": auth})}
conns = {t: http.client.HTTPConnection(h, p, timeout=60) for t, (h, p, _) in targets.items()}
def once(t, body):
    headers = {"Content-Type": "application/json", **targets[t][2]}
    start = time.perf_counter()
    conns[t].request("POST", "/graphql", body, headers)
    response = conns[t].getresponse()
    data = response.read()
    elapsed = time.perf_counter() - start
    assert response.status == 200 and b'"errors"' not in data, (t, response.status, data[:300])
    return elapsed
out = {}
for name, query in queries.items():
    body = json.dumps({"query": query})
    for t in targets:
        for _ in range(%(warmup)d):
            once(t, body)
    samples = {t: [] for t in targets}
    for i in range(n):
        for t in (list(targets) if i %% 2 == 0 else list(reversed(list(targets)))):
            samples[t].append(once(t, body))
    out[name] = samples
print(json.dumps(out))
""" % {"warmup": WARMUP}


def stats_ms(seconds: list[float]) -> dict:
    ms = sorted(s * 1000 for s in seconds)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50": round(statistics.median(ms), 2), "p95": round(q[94], 2), "mean": round(statistics.fmean(ms), 2),
            "min": round(ms[0], 2), "max": round(ms[-1], 2), "n": len(ms)}


def host_series(port: int, auth: str, query: str, n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = json.dumps({"query": query})
    headers = {"Content-Type": "application/json", "Authorization": auth}
    samples = []
    for i in range(WARMUP + n):
        start = time.perf_counter()
        conn.request("POST", "/graphql", body, headers)
        response = conn.getresponse()
        response.read()
        elapsed = time.perf_counter() - start
        assert response.status == 200, response.status
        if i >= WARMUP:
            samples.append(elapsed)
    return samples


def login_series(stack: ComposeStack, auth: str, password: str) -> list[float]:
    """Each sample: `make user` (starts a new auth-cache generation), then one request = a bcrypt check."""
    samples = []
    body = json.dumps({"query": "{ version }"})
    for _ in range(LOGIN_SAMPLES):
        stack.add_user("bench", "editor", password)
        conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=60)
        start = time.perf_counter()
        conn.request("POST", "/graphql", body, {"Content-Type": "application/json", "Authorization": auth})
        response = conn.getresponse()
        response.read()
        samples.append(time.perf_counter() - start)
        assert response.status == 200, response.status
        conn.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=300, help="timed requests per series and query")
    args = parser.parse_args()
    stack = ComposeStack("flights-bench-gw", RESULTS)
    with stack.env_file.open("a") as env:
        env.write("REPLAY_ENABLED=false\nGATEWAY_LOGIN_BURST=100\n")
    user, password = "bench", "bench-" + base64.b32encode(os.urandom(10)).decode().lower()
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    try:
        stack.up()
        DagsterGraphQL(stack.base_url, auth=stack.admin).wait_locations_loaded(["ingestion", "reporting"])
        stack.add_user(user, "editor", password)
        in_network = json.loads(subprocess.run(
            ["docker", "run", "--rm", "--network", f"{stack.project}_platform", "--entrypoint", "python",
             "flights-platform/dagster:dev", "-c", IN_NETWORK, str(args.n), auth, json.dumps(QUERIES)],
            capture_output=True, text=True, check=True).stdout)
        host = {name: host_series(stack.port, auth, query, args.n) for name, query in QUERIES.items()}
        login = login_series(stack, auth, password)
    finally:
        stack.down()

    series = {}
    for name in QUERIES:
        series[name] = {"direct": stats_ms(in_network[name]["direct"]), "gateway": stats_ms(in_network[name]["gateway"]),
                        "host_via_gateway": stats_ms(host[name])}
        series[name]["added_p50_ms"] = round(series[name]["gateway"]["p50"] - series[name]["direct"]["p50"], 2)
        series[name]["added_p95_ms"] = round(series[name]["gateway"]["p95"] - series[name]["direct"]["p95"], 2)
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "n": args.n, "warmup": WARMUP,
        "queries": series,
        "first_request_of_a_login_ms": stats_ms(login),
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{datetime.date.today().isoformat()}-gateway-latency.json"
    out.write_text(json.dumps(result, indent=2) + "\n")

    print("| query | path | p50 ms | p95 ms | mean ms | n |\n|---|---|---|---|---|---|")
    for name, s in series.items():
        for path, label in (("direct", "direct to webserver (in network)"), ("gateway", "through gateway (in network)"),
                            ("host_via_gateway", "through gateway (host, published port)")):
            v = s[path]
            print(f"| `{name}` | {label} | {v['p50']} | {v['p95']} | {v['mean']} | {v['n']} |")
        print(f"| `{name}` | **added by the gateway** | **{s['added_p50_ms']}** | **{s['added_p95_ms']}** | | |")
    v = result["first_request_of_a_login_ms"]
    print(f"| `version` | first request of a login (bcrypt check, host) | {v['p50']} | {v['p95']} | {v['mean']} | {v['n']} |")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
