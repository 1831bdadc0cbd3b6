"""The code servers' compose healthcheck is a bare TCP connect to port 4000 (docker-compose.yml,
`code-location`), which is only as good as this: `dagster api grpc` binds its port after it
loaded the code, or, with --lazy-load-user-code, after it recorded the load error it will serve.
Run against the installed Dagster, so an upgrade that binds first fails here."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

SLOW_MODULE = """
import pathlib, time
pathlib.Path({marker!r}).touch()
time.sleep({seconds})
{tail}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _health(port: int) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        request = health_pb2.HealthCheckRequest(service="DagsterApi")
        return health_pb2_grpc.HealthStub(channel).Check(request, timeout=10).status


@pytest.mark.parametrize("tail", ["from dagster import Definitions\ndefs = Definitions()",
                                  "raise ImportError('broken on purpose')"], ids=["loads", "fails-to-import"])
def test_the_port_opens_only_after_the_code_is_loaded(tmp_path: Path, tail: str):
    marker, port = tmp_path / "importing", _free_port()
    (tmp_path / "slow_defs.py").write_text(SLOW_MODULE.format(marker=str(marker), seconds=4, tail=tail))
    dagster = Path(sys.executable).with_name("dagster")
    server = subprocess.Popen(
        [str(dagster), "api", "grpc", "-h", "127.0.0.1", "-p", str(port), "-m", "slow_defs",
         "--lazy-load-user-code"],
        cwd=tmp_path, env={"PATH": str(dagster.parent), "PYTHONPATH": str(tmp_path), "HOME": str(tmp_path)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert server.poll() is None and time.monotonic() < deadline, "the server never imported the module"
            time.sleep(0.05)
        importing_since = time.monotonic()
        while time.monotonic() - importing_since < 3:  # the module sleeps 4 s
            assert not _accepts(port), "port open while the code was still importing"
            time.sleep(0.2)
        while not _accepts(port):
            assert server.poll() is None and time.monotonic() < deadline, "the port never opened"
            time.sleep(0.05)
        assert _health(port) == health_pb2.HealthCheckResponse.SERVING
    finally:
        server.terminate()
        server.wait(timeout=30)
