"""UI/GraphQL latency: the asset-graph query the UI's lineage view issues, at 1, 10 and 50
concurrent clients (threads on the host, each with its own keep-alive connection), through the
gateway (published port, basic auth, auth-cache hit) and direct to the editors' webserver.

"Direct" is the webserver published on 127.0.0.1 by benchmarks/compose.bench.yml (this
throwaway stack only), so both paths are measured from the same client over loopback and differ
only by the gateway hop; a client inside the compose network would add a different client (and
its container's CPU share) to the comparison. Levels alternate direct/gateway so both see the
same background load."""

import base64
import http.client
import json
import threading
import time

from figures import Figure, Target

NAME = "graphql_latency"
ASSET_GRAPH = """query AssetGraph { assetNodes { id assetKey { path } groupName
  dependencyKeys { path } dependedByKeys { path } isPartitioned
  repository { id name location { id name } } } }"""
LEVELS = [1, 10, 50]
WARMUP = 5


def client_samples(port: int, headers: dict, count: int, out: list, barrier: threading.Barrier) -> None:
    body = json.dumps({"query": ASSET_GRAPH})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json", **headers}

    def once() -> float:
        begin = time.perf_counter()
        conn.request("POST", "/graphql", body, headers)
        response = conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - begin
        if response.status != 200 or b'"errors"' in data:
            raise RuntimeError(f"asset graph query: HTTP {response.status} {data[:300]!r}")
        return elapsed

    for _ in range(WARMUP):
        once()
    barrier.wait()
    out.extend(once() for _ in range(count))
    conn.close()


def series(port: int, headers: dict, clients: int, per_client: int) -> list[float]:
    samples: list[float] = []
    barrier = threading.Barrier(clients)
    threads = [threading.Thread(target=client_samples, args=(port, headers, per_client, samples, barrier))
               for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(samples) != clients * per_client:
        raise RuntimeError(f"{clients} clients: {len(samples)} of {clients * per_client} requests answered")
    return [s * 1000 for s in samples]


def run(ctx) -> list[Figure]:
    stack = ctx.stack
    stack.wait_quiet()
    auth = {"Authorization": "Basic " + base64.b64encode(":".join(stack.admin).encode()).decode()}
    total = {1: 40, 10: 80, 50: 150} if ctx.quick else {1: 200, 10: 400, 50: 750}
    paths = {"direct": (stack.webserver_port, {}), "gateway": (stack.port, auth)}
    measured: dict[tuple[str, int], list[float]] = {}
    for clients in LEVELS:
        for path in (("direct", "gateway") if clients != 10 else ("gateway", "direct")):
            port, headers = paths[path]
            measured[path, clients] = series(port, headers, clients, max(1, total[clients] // clients))
    rows = []
    for clients in LEVELS:
        for path in ("direct", "gateway"):
            values, single = measured[path, clients], measured[path, 1]
            rows.append(Figure(NAME, f"asset graph, {path}, {clients} client(s) (p50)", "ms", values, single,
                               f"{path}, 1 client"))
            rows.append(Figure(NAME, f"asset graph, {path}, {clients} client(s) (p95)", "ms", values, single,
                               f"{path}, 1 client", stat="p95"))
        rows.append(Figure(NAME, f"asset graph, gateway vs direct, {clients} client(s) (p95)", "ms",
                           measured["gateway", clients], measured["direct", clients], "direct, same clients",
                           Target("max_ratio", 1.2), stat="p95"))
    return rows
