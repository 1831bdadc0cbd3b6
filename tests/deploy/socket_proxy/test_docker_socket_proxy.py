"""The socket proxy's server (deploy/socket_proxy/docker_socket_proxy.py) between docker-py and a
Docker-API speaking unix socket: allowed calls pass (streamed, chunked, unchanged), refused ones
never reach the socket and docker-py raises the proxy's reason. The upstream here is a recording
HTTP server on a unix socket; tests/e2e/test_socket_proxy.py runs the proxy against real Docker."""

import asyncio
import json
import socket
import sys
import threading
from pathlib import Path

import docker
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "deploy" / "socket_proxy"))
import docker_socket_proxy  # noqa: E402
from docker_api_policy import Policy  # noqa: E402

PROJECT = "flights"
CONTAINERS = {
    "run1": {"Id": "a" * 64, "Config": {"Labels": {"io.flights-platform.project": PROJECT, "io.flights-platform.role": "run"}}},
    "postgres1": {"Id": "b" * 64, "Config": {"Labels": {"com.docker.compose.project": PROJECT, "com.docker.compose.service": "postgres"}}},
}
CONTAINERS.update({c["Id"]: c for c in list(CONTAINERS.values())})


class RecordingDocker:
    """Answers like Docker for the few routes the tests use; records every request it got."""

    def __init__(self, path: str):
        self.path = path
        self.requests: list[tuple[str, str, bytes]] = []

    async def handle(self, reader, writer):
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        method, target, _ = head.split("\r\n")[0].split(" ")
        length = next((int(line.split(":")[1]) for line in head.split("\r\n") if line.lower().startswith("content-length:")), 0)
        body = await reader.readexactly(length)
        self.requests.append((method, target, body))
        path = target.split("?")[0]
        parts = path.split("/")
        if path.endswith("/version"):
            await self.send(writer, 200, {"ApiVersion": "1.47", "Version": "28.0.0"})
        elif path == "/v1.47/containers/json":
            # Chunked, in pieces with pauses: the proxy must pass it through as it comes.
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            payload = json.dumps([{"Id": "a" * 64}]).encode()
            for piece in (payload[:5], payload[5:]):
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
                await asyncio.sleep(0.2)
            writer.write(b"0\r\n\r\n")
        elif "containers" in parts and parts[-1] == "json":  # inspect, versioned or not
            found = CONTAINERS.get(parts[parts.index("containers") + 1])
            await self.send(writer, 200 if found else 404, found or {"message": "No such container"})
        elif method == "POST" and parts[-1] in ("stop", "start", "kill"):
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        else:
            await self.send(writer, 500, {"message": f"test upstream has no route {method} {path}"})
        await writer.drain()
        writer.close()

    @staticmethod
    async def send(writer, status, obj):
        body = json.dumps(obj).encode()
        writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (status, len(body), body))


@pytest.fixture
def proxied(tmp_path):
    """(docker-py APIClient through a proxy of the given role, the recording upstream)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    upstream = RecordingDocker(str(tmp_path / "docker.sock"))
    servers = []

    def start(role: str):
        async def boot():
            servers.append(await asyncio.start_unix_server(upstream.handle, upstream.path))
            proxy = docker_socket_proxy.SocketProxy(Policy(role, PROJECT), upstream.path)
            server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
            servers.append(server)
            return server.sockets[0].getsockname()[1]

        port = asyncio.run_coroutine_threadsafe(boot(), loop).result(10)
        return docker.APIClient(base_url=f"tcp://127.0.0.1:{port}", version="1.47", timeout=10), upstream, port

    yield start
    for server in servers:
        loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_allowed_calls_pass_and_act_on_the_checked_id(proxied):
    client, upstream, _ = proxied("webserver")
    assert client.version()["ApiVersion"] == "1.47"
    client.stop("run1", timeout=60)
    assert ("POST", f"/v1.47/containers/{'a' * 64}/stop?t=60", b"") in upstream.requests


def test_a_chunked_streamed_response_passes_unchanged(proxied):
    client, _, _ = proxied("watchdog")
    filters = {"label": [f"io.flights-platform.project={PROJECT}"]}
    assert client.containers(all=True, filters=filters) == [{"Id": "a" * 64}]


def test_refusals_reach_docker_py_with_the_reason_and_never_reach_docker(proxied):
    client, upstream, _ = proxied("daemon")
    with pytest.raises(docker.errors.APIError) as info:
        client.exec_create("run1", ["sh"])
    assert info.value.response.status_code == 403
    assert "socket proxy:" in str(info.value) and "is not allowed" in info.value.explanation
    with pytest.raises(docker.errors.APIError, match="socket proxy: container create with HostConfig.Privileged"):
        client.create_container("x", host_config=client.create_host_config(privileged=True),
                                labels={"io.flights-platform.project": PROJECT, "io.flights-platform.role": "run"})
    with pytest.raises(docker.errors.APIError, match="host paths are not allowed"):
        client.create_container("x", host_config=client.create_host_config(binds=["/:/host"], network_mode=f"{PROJECT}_platform"),
                                labels={"io.flights-platform.project": PROJECT, "io.flights-platform.role": "run"})
    with pytest.raises(docker.errors.APIError, match="not a run container of project flights"):
        client.stop("postgres1")
    assert [r for r in upstream.requests if r[0] != "GET"] == []


def test_an_unknown_container_is_docker_py_not_found(proxied):
    client, upstream, _ = proxied("daemon")
    with pytest.raises(docker.errors.NotFound):
        client.stop("gone")
    assert all(r[0] == "GET" for r in upstream.requests)


def raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def test_ambiguous_framing_and_upgrades_are_refused(proxied):
    _, upstream, port = proxied("daemon")
    smuggle = (b"POST /v1.47/containers/run1/stop HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nPOST /v1.47/containers/run1/exec HTTP/1.1\r\n\r\n")
    assert raw(port, smuggle).startswith(b"HTTP/1.1 400")
    upgrade = b"POST /v1.47/containers/run1/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    answer = raw(port, upgrade)
    assert answer.startswith(b"HTTP/1.1 403") and b"connection upgrades" in answer
    assert upstream.requests == []


def test_a_chunked_request_body_is_read_whole_and_checked(proxied):
    _, upstream, port = proxied("daemon")
    body = json.dumps({"Image": "x", "HostConfig": {"Privileged": True},
                       "Labels": {"io.flights-platform.project": PROJECT, "io.flights-platform.role": "run"}}).encode()
    request = (b"POST /v1.47/containers/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:]))
    answer = raw(port, request)
    assert answer.startswith(b"HTTP/1.1 403") and b"Privileged" in answer
    assert upstream.requests == []


def test_a_misconfigured_proxy_does_not_start(monkeypatch, capsys):
    monkeypatch.setenv("SOCKET_PROXY_ROLE", "admin")
    monkeypatch.setenv("PLATFORM_PROJECT", PROJECT)
    assert docker_socket_proxy.main() == 2
    assert "unknown socket-proxy role 'admin'" in capsys.readouterr().err
