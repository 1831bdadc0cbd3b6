#!/usr/bin/env python3
"""An HTTP proxy in front of the Docker socket that forwards only the calls docker_api_policy
allows for this proxy's client (SOCKET_PROXY_ROLE) and refuses the rest with 403 and a JSON
{"message": "socket proxy: <why>"}, which docker-py raises as an APIError with that text.

Each request is read whole (head and body, at most MAX_BODY bytes), checked, and sent to Docker
rebuilt from the checked parts only, with `Connection: close`; Docker's answer is streamed back
byte for byte until Docker closes, so chunked and long-lived responses pass unchanged and
nothing can be smuggled behind a checked request. One request per client connection.

Set by compose (docker-compose.yml x-socket-proxy): SOCKET_PROXY_ROLE (daemon | webserver |
watchdog) and PLATFORM_PROJECT (the compose project). Listens on port 2375 on the proxy's own
internal network; Docker's socket is mounted at /var/run/docker.sock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys

from docker_api_policy import Policy, Refused

PORT = 2375
DOCKER_SOCKET = "/var/run/docker.sock"
MAX_HEAD = 64 * 1024
MAX_BODY = 4 * 1024 * 1024
HEAD_TIMEOUT_SECONDS = 30
log = logging.getLogger("socket-proxy")


class BadRequest(Exception):
    pass


def response(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"message": f"socket proxy: {message}"}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    """Method, target, lower-cased headers and the whole body (Content-Length or chunked)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise BadRequest("request head too large") from None
    except asyncio.IncompleteReadError:
        raise BadRequest("incomplete request") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"bad request line {lines[0][:100]!r}")
    method, target, _ = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or name != name.strip():
            raise BadRequest("bad header line")
        key = name.lower()
        if key in headers and key in ("content-length", "transfer-encoding"):
            raise BadRequest(f"repeated {name} header")
        headers[key] = value.strip()
    encoding = headers.get("transfer-encoding", "").lower()
    if encoding and "content-length" in headers:
        raise BadRequest("both Content-Length and Transfer-Encoding")
    if encoding == "chunked":
        body = await read_chunked(reader)
    elif encoding:
        raise BadRequest(f"unsupported Transfer-Encoding {encoding!r}")
    else:
        length = headers.get("content-length", "0")
        if not length.isdigit():
            raise BadRequest("bad Content-Length")
        if int(length) > MAX_BODY:
            raise BadRequest(f"body larger than {MAX_BODY} bytes")
        body = await reader.readexactly(int(length))
    return method, target, headers, body


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = (await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise BadRequest("bad chunk size") from None
        if len(body) + size > MAX_BODY:
            raise BadRequest(f"body larger than {MAX_BODY} bytes")
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise BadRequest("bad chunk terminator")


def rebuild(method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
    """The request Docker sees: only the checked parts."""
    lines = [f"{method} {target} HTTP/1.1", "Host: docker", "Connection: close"]
    if "content-type" in headers:
        lines.append(f"Content-Type: {headers['content-type']}")
    if "user-agent" in headers:
        lines.append(f"User-Agent: {headers['user-agent']}")
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def docker_json(socket_path: str, path: str) -> tuple[int, object]:
    """GET path on Docker: status and decoded JSON body (Content-Length or chunked)."""
    reader, writer = await asyncio.open_unix_connection(socket_path, limit=MAX_BODY)
    try:
        writer.write(rebuild("GET", path, {}, b""))
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status = int(head.split(" ", 2)[1])
        if "transfer-encoding: chunked" in head.lower():
            raw = await read_chunked(reader)
        else:
            raw = await reader.read()
        return status, json.loads(raw or b"null")
    finally:
        writer.close()


class SocketProxy:
    def __init__(self, policy: Policy, socket_path: str):
        self.policy = policy
        self.socket_path = socket_path

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # one connection's failure never stops the proxy
            log.exception("request failed")
            try:
                writer.write(response(502, "Bad Gateway", "internal error; see the proxy's log"))
            except Exception:
                pass
        finally:
            try:
                writer.close()
                await writer.wait_closed()
            except Exception:
                pass

    async def _handle(self, reader, writer) -> None:
        try:
            method, target, headers, body = await asyncio.wait_for(read_request(reader), HEAD_TIMEOUT_SECONDS)
        except (BadRequest, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            writer.write(response(400, "Bad Request", str(exc) or "request not read in time"))
            await writer.drain()
            return
        try:
            if headers.get("upgrade") or "upgrade" in headers.get("connection", "").lower():
                raise Refused("connection upgrades (attach, exec) are not allowed")
            decision = self.policy.check_request(method, target, body)
            if decision.target is not None:
                status, info = await docker_json(self.socket_path, f"/containers/{decision.target}/json")
                if status == 404:
                    # Docker's own answer (docker-py raises NotFound); nothing is forwarded.
                    body404 = json.dumps({"message": f"No such container: {decision.target}"}).encode()
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body404) + body404)
                    await writer.drain()
                    return
                if status != 200 or not isinstance(info, dict):
                    raise Refused(f"cannot inspect container {decision.target} (Docker answered {status})")
                else:
                    labels = (info.get("Config") or {}).get("Labels") or {}
                    self.policy.target_allowed(decision.action, labels)
                    # Act on the id that was checked, not on a name that could be re-pointed.
                    target = target.replace(f"/containers/{decision.target}", f"/containers/{info['Id']}", 1)
        except Refused as exc:
            log.warning("refused %s %s: %s", method, target.split("?")[0], exc)
            writer.write(response(403, "Forbidden", str(exc)))
            await writer.drain()
            return
        path = target.split("?")[0]
        # Healthchecks ping every 2 s and docker-py asks the version per client: not worth a line.
        log.log(logging.DEBUG if path.endswith(("/_ping", "/version")) else logging.INFO, "%s %s", method, path)
        up_reader, up_writer = await asyncio.open_unix_connection(self.socket_path)
        try:
            up_writer.write(rebuild(method, target, headers, body))
            await up_writer.drain()
            while chunk := await up_reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        finally:
            up_writer.close()


async def serve(policy: Policy, socket_path: str, host: str, port: int) -> None:
    proxy = SocketProxy(policy, socket_path)
    server = await asyncio.start_server(proxy.handle, host, port, limit=MAX_HEAD)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("role %s of project %s: listening on %s:%d, forwarding to %s", policy.role, policy.project,
             host, port, socket_path)
    async with server:
        await stop.wait()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        policy = Policy(os.environ.get("SOCKET_PROXY_ROLE", ""), os.environ.get("PLATFORM_PROJECT", ""))
    except ValueError as exc:
        print(f"socket proxy: {exc} (SOCKET_PROXY_ROLE, PLATFORM_PROJECT)", file=sys.stderr)
        return 2
    asyncio.run(serve(policy, DOCKER_SOCKET, "0.0.0.0", PORT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
