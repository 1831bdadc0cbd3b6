"""The authenticated gateway in front of the UI: the only published port, basic auth with bcrypt
users managed by `make user`, role routing (editor -> webserver, viewer -> the --read-only
webserver-viewer), login throttling, WebSockets, security headers, TLS, and refusing bad input."""

import base64
import json
import re
import secrets
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import urllib3
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.e2e.compose_stack import LOCATION_NAMES
from tests.e2e.dagster_graphql import CAPTURED_LOGS, DagsterGraphQL

pytestmark = pytest.mark.compose

GATEWAY_IMAGE = "flights-platform/gateway:dev"
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
VIEWER = ("vera", "viewer-" + secrets.token_urlsafe(9))
EDITOR = ("eddie", "editor-" + secrets.token_urlsafe(9))
UNAUTHORIZED = "UnauthorizedError"  # what `dagster-webserver --read-only` answers to a mutation

RELOAD = 'mutation { reloadRepositoryLocation(repositoryLocationName: "ingestion") { __typename } }'
WIPE = """mutation { wipeAssets(assetPartitionRanges: [{assetKey: {path: ["gateway_test", "never_materialized"]}}]) {
    __typename ... on UnauthorizedError { message } ... on PythonError { message } } }"""
PERMISSIONS = "{ permissions { permission value } }"
AUTOMATIC_TAGS = {"dagster/sensor_name", "dagster/schedule_name", "dagster/from_automation_condition",
                  "dagster/backfill"}


def _docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def _on_platform(stack, script: str) -> str:
    """Run a bash script in a throwaway container on the stack's network (another client IP)."""
    return _docker("run", "--rm", "--network", f"{stack.project}_platform", "--entrypoint", "bash",
                   GATEWAY_IMAGE, "-c", script).stdout


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def users(stack, dagster):
    """A viewer and a second editor, created with the documented `make user`."""
    stack.add_user(VIEWER[0], "viewer", VIEWER[1])
    stack.add_user(EDITOR[0], "editor", EDITOR[1])
    return {"viewer": VIEWER, "editor": EDITOR}


@pytest.fixture(scope="module")
def viewer(stack, users) -> DagsterGraphQL:
    return DagsterGraphQL(stack.base_url, auth=users["viewer"])


@pytest.fixture(scope="module")
def editor(stack, users) -> DagsterGraphQL:
    return DagsterGraphQL(stack.base_url, auth=users["editor"])


# --- what is published, health ---

def test_gateway_and_viewer_webserver_are_healthy(stack):
    services = stack.services()
    for name in ("gateway", "webserver-viewer"):
        assert services[name]["State"] == "running", services[name]
        assert services[name]["Health"] == "healthy", services[name]


def test_only_the_gateway_is_published(stack):
    services = stack.services()
    for name in ("webserver", "webserver-viewer"):
        published = [p for p in services[name].get("Publishers") or [] if p.get("PublishedPort")]
        assert not published, f"{name} is published to the host: {published}"
    gateway = [p for p in services["gateway"]["Publishers"] if p.get("PublishedPort")]
    assert [(p["URL"], p["PublishedPort"], p["TargetPort"]) for p in gateway] == [("127.0.0.1", stack.port, 8080)]


def test_health_endpoint_needs_no_login_and_reveals_nothing(stack):
    response = requests.get(f"{stack.base_url}/healthz", timeout=10)
    assert response.status_code == 200
    assert response.text == "ok\n"
    assert response.headers["Server"] == "nginx"  # no version
    assert stack.services()["gateway"]["Health"] == "healthy"


# --- authentication ---

@pytest.mark.parametrize("method, path", [("GET", "/"), ("POST", "/graphql"), ("GET", "/server_info"),
                                          ("GET", "/assets/ingestion/flights")])
def test_requests_without_credentials_get_401_and_a_challenge(stack, method, path):
    response = requests.request(method, f"{stack.base_url}{path}", json={"query": "{ version }"}, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Basic realm="Dagster"')
    assert "dagster" not in response.text.lower()


def test_wrong_password_gets_401(stack):
    response = requests.get(stack.base_url, auth=(stack.admin[0], "not-the-password"), timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    response = requests.get(stack.base_url, auth=("nobody", "whatever-password"), timeout=10)
    assert response.status_code == 401


def test_repeated_wrong_passwords_are_throttled_per_client(stack, dagster, users):
    """From another address: ~10 quick wrong passwords, then 429 even for the right one (a
    throttled client cannot test guesses); clients at other addresses are unaffected."""
    out = _on_platform(stack, f"""
        for i in $(seq 1 30); do
          curl -s -o /dev/null -w '%{{http_code}}\\n' -u '{stack.admin[0]}:wrong-'$i http://gateway:8080/
        done
        curl -s -D - -o /dev/null -u '{stack.admin[0]}:{stack.admin[1]}' http://gateway:8080/ | tr -d '\\r'
    """)
    lines = out.splitlines()
    codes, right = lines[:30], "\n".join(lines[30:])
    assert codes[0] == "401", codes
    assert set(codes) <= {"401", "429"}, codes
    first_429 = codes.index("429")
    assert 5 <= first_429 <= 15, codes  # GATEWAY_LOGIN_BURST=10 by default
    assert codes[first_429:] == ["429"] * (30 - first_429), codes
    assert right.startswith("HTTP/1.1 429"), right
    assert "Retry-After: 60" in right, right
    # The host's logged-in session and logins from the host are not throttled.
    assert dagster.query("{ version }")["version"]
    assert requests.get(stack.base_url, auth=VIEWER, timeout=10).status_code == 200


def test_a_busy_ui_session_is_not_throttled(stack):
    """Hundreds of requests (many in parallel) with valid credentials: never 429."""
    session = requests.Session()
    session.auth = stack.admin
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=16)
    session.mount("http://", adapter)

    def one(_):
        return session.post(f"{stack.base_url}/graphql", json={"query": "{ version }"}, timeout=30).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(one, range(400)))
    assert set(codes) == {200}, {c: codes.count(c) for c in set(codes)}


# --- roles ---

def test_users_command_lists_users_with_roles(stack, users):
    listing = stack.make("users").stdout.split("\n")
    assert f"{stack.admin[0]} editor" in listing
    assert f"{VIEWER[0]} viewer" in listing
    assert f"{EDITOR[0]} editor" in listing


def test_viewer_reads_everything_but_every_mutation_is_refused(viewer, dagster):
    runs_before = {r["runId"] for r in dagster.runs()}
    entries = viewer.wait_locations_loaded(LOCATION_NAMES, timeout=60)
    assert set(entries) >= set(LOCATION_NAMES)
    assert viewer.asset_node(["ingestion", "flights"])["repository"]["location"]["name"] == "ingestion"
    permissions = {p["permission"]: p["value"] for p in viewer.query(PERMISSIONS)["permissions"]}
    assert not any(permissions.values()), permissions

    assert viewer.query(RELOAD)["reloadRepositoryLocation"]["__typename"] == UNAUTHORIZED
    assert viewer.query(WIPE)["wipeAssets"]["__typename"] == UNAUTHORIZED
    with pytest.raises(AssertionError, match=UNAUTHORIZED):
        viewer.launch_asset_run("ingestion", ["ingestion", "airlines"])
    manual = [r for r in dagster.runs() if r["runId"] not in runs_before and not AUTOMATIC_TAGS & set(r["tags"])]
    assert not manual, manual  # (sensors and automation keep launching runs meanwhile)


@pytest.fixture(scope="module")
def editor_run(editor):
    run_id = editor.launch_asset_run("ingestion", ["ingestion", "airlines"])
    return run_id, editor.wait_run(run_id)


def test_editor_mutations_succeed(editor, editor_run):
    permissions = {p["permission"]: p["value"] for p in editor.query(PERMISSIONS)["permissions"]}
    assert permissions["launch_pipeline_execution"] and permissions["wipe_assets"], permissions
    assert editor.query(RELOAD)["reloadRepositoryLocation"]["__typename"] == "WorkspaceLocationEntry"
    assert editor.query(WIPE)["wipeAssets"]["__typename"] == "AssetWipeSuccess"
    editor.wait_locations_loaded(LOCATION_NAMES, timeout=120)
    status, seen = editor_run[1]
    assert status == "SUCCESS", seen


def test_viewer_sees_the_step_logs_of_a_run(viewer, editor, editor_run):
    """webserver-viewer mounts the compute-log volume (read-only), so logs show for viewers too."""
    run_id = editor_run[0]
    keys = [e["fileKey"] for e in viewer.events(run_id) if e["__typename"] == "LogsCapturedEvent"]
    assert keys, "no captured-logs event"
    logs = viewer.query(CAPTURED_LOGS, logKey=[run_id, "compute_logs", keys[0]])["capturedLogs"]
    assert "STEP_START" in (logs["stderr"] or ""), logs
    assert logs == editor.query(CAPTURED_LOGS, logKey=[run_id, "compute_logs", keys[0]])["capturedLogs"]


def test_password_and_role_changes_and_deletion_take_effect_at_once(stack):
    name, old, new = "temp.user-1", "first-" + secrets.token_hex(6), "second-" + secrets.token_hex(6)
    stack.add_user(name, "viewer", old)
    client = DagsterGraphQL(stack.base_url, auth=(name, old))
    assert client.query(RELOAD)["reloadRepositoryLocation"]["__typename"] == UNAUTHORIZED
    stack.add_user(name, "editor", new)  # new password and role: the old login is cached, yet refused
    assert requests.get(stack.base_url, auth=(name, old), timeout=10).status_code == 401
    promoted = DagsterGraphQL(stack.base_url, auth=(name, new))
    assert promoted.query(PERMISSIONS)["permissions"][0]["value"] is True
    stack.make("user-delete", f"NAME={name}")
    assert requests.get(stack.base_url, auth=(name, new), timeout=10).status_code == 401
    assert name not in stack.make("users").stdout


@pytest.mark.parametrize("args, message", [
    (["NAME=Ana", "ROLE=viewer"], "invalid user name 'Ana'"),
    (["NAME=ana/../x", "ROLE=viewer"], "invalid user name"),
    (["NAME=ana", "ROLE=admin"], "unknown role 'admin'"),
    (["NAME=ana", "ROLE=viewer", "PASSWORD=short"], "at least 8 characters"),
])
def test_users_command_refuses_bad_input_and_changes_nothing(stack, users, args, message):
    before = stack.make("users").stdout
    if not any(a.startswith("PASSWORD=") for a in args):
        args = [*args, "PASSWORD=long-enough-password"]
    result = stack.make("user", *args, check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert stack.make("users").stdout == before


def test_users_survive_a_restart_and_the_admin_is_created_once(stack, users):
    stack.compose("restart", "gateway")
    stack.compose("up", "-d", "--no-recreate", "--wait", "--wait-timeout", "60", "gateway")
    listing = stack.make("users").stdout
    assert f"{VIEWER[0]} viewer" in listing and f"{stack.admin[0]} editor" in listing
    logs = stack.compose("logs", "--no-color", "gateway").stdout
    assert logs.count("created the first editor") == 1, logs
    assert requests.get(stack.base_url, auth=VIEWER, timeout=10).status_code == 200


# --- the UI's transport ---

def test_websocket_upgrade_reaches_dagster_graphql(stack, users):
    url = f"ws://127.0.0.1:{stack.port}/graphql"
    with connect(url, subprotocols=["graphql-ws"], additional_headers={"Authorization": _basic(*VIEWER)},
                 open_timeout=15) as ws:
        assert ws.response.status_code == 101
        assert ws.subprotocol == "graphql-ws"
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(ws.recv(timeout=15))["type"] == "connection_ack"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, subprotocols=["graphql-ws"], open_timeout=15)
    assert refused.value.response.status_code == 401


@pytest.mark.parametrize("path", ["/", "/graphql", "/healthz", "/no-such-page"])
@pytest.mark.parametrize("logged_in", [True, False])
def test_security_headers_on_every_response(stack, path, logged_in):
    response = requests.get(f"{stack.base_url}{path}", auth=stack.admin if logged_in else None, timeout=10)
    for name, value in SECURITY_HEADERS.items():
        # Dagster sends its own CSP on pages; both apply (requests joins the two with ", ").
        assert value in (response.headers.get(name) or "").split(", "), (name, response.status_code, response.headers)
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP: no HSTS


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
    {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "cors"},
    {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"},  # a cross-site form POST
])
def test_cross_site_requests_with_the_browsers_login_are_refused(stack, headers):
    response = requests.post(f"{stack.base_url}/graphql", auth=stack.admin, headers=headers,
                             json={"query": RELOAD}, timeout=10)
    assert response.status_code == 403, response.text
    assert response.text == "cross-site request refused\n"


def test_same_origin_requests_and_cross_site_links_pass(stack):
    same = requests.post(f"{stack.base_url}/graphql", auth=stack.admin, json={"query": "{ version }"},
                         headers={"Origin": stack.base_url, "Sec-Fetch-Site": "same-origin"}, timeout=10)
    assert same.status_code == 200
    link = requests.get(f"{stack.base_url}/runs", auth=stack.admin, timeout=10,
                        headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
    assert link.status_code == 200


# --- first start, TLS and bad input, on standalone gateway containers ---

@pytest.fixture
def scratch(stack):
    """Names of throwaway containers/volumes, removed afterwards."""
    suffix = uuid.uuid4().hex[:8]
    made = {"containers": [], "volumes": []}

    def name(kind: str) -> str:
        value = f"{stack.project}-gwtest-{kind}-{suffix}-{len(made['containers']) + len(made['volumes'])}"
        made["volumes" if kind == "vol" else "containers"].append(value)
        return value

    yield name
    for c in made["containers"]:
        _docker("rm", "-f", c, check=False)
    for v in made["volumes"]:
        _docker("volume", "rm", "-f", v, check=False)


def _wait_for_log(container: str, text: str, timeout: float = 30, count: int = 1) -> str:
    deadline = time.monotonic() + timeout
    logs = ""
    while time.monotonic() < deadline:
        result = _docker("logs", container, check=False)
        logs = result.stdout + result.stderr
        if logs.count(text) >= count:
            return logs
        time.sleep(0.3)
    raise AssertionError(f"{text!r} not in the log of {container} within {timeout}s:\n{logs}")


def _gateway_run(*args: str) -> subprocess.CompletedProcess:
    return _docker("run", "--rm", "--read-only", "--tmpfs", "/tmp", "--network", "none", *args, GATEWAY_IMAGE, check=False)


def test_generated_admin_password_is_printed_once_and_works(stack, scratch):
    """First start on a volume that has only a viewer (added while the stack was down)."""
    volume, container = scratch("vol"), scratch("gw")
    common = ["--network", f"{stack.project}_platform", "--read-only", "--tmpfs", "/tmp",
              "-v", f"{volume}:/var/lib/gateway/users"]
    subprocess.run(["docker", "run", "--rm", "-i", *common, "--entrypoint", "gateway-users", GATEWAY_IMAGE,
                    "set", "early.viewer", "viewer"], input="early-viewer-pw\n", text=True, check=True,
                   capture_output=True)
    _docker("run", "-d", "--name", container, *common, GATEWAY_IMAGE)
    logs = _wait_for_log(container, "listening on http")
    match = re.search(r"created the first editor 'admin' with the generated password: (\S+)", logs)
    assert match, logs
    password = match.group(1)
    assert len(password) >= 20
    query = f"""curl -s -u 'admin:{password}' -H 'Content-Type: application/json' -d '{{"query": "{{ version }}"}}' http://127.0.0.1:8080/graphql"""
    assert '"version"' in _docker("exec", container, "bash", "-c", query).stdout
    _docker("restart", container)
    logs = _wait_for_log(container, "listening on http", count=2)
    assert logs.count("1 editor(s), 1 viewer(s)") == 2, logs
    assert logs.count(password) == 1, logs
    assert logs.count("created the first editor") == 1, logs
    assert '"version"' in _docker("exec", container, "bash", "-c", query).stdout


def test_tls_without_certificate_refuses_to_start_naming_the_file(scratch, tmp_path):
    result = _gateway_run("-v", f"{scratch('vol')}:/var/lib/gateway/users", "-v", f"{tmp_path}:/etc/gateway/certs:ro",
                          "-e", "GATEWAY_TLS=true")
    assert result.returncode != 0
    assert "GATEWAY_TLS=true but /etc/gateway/certs/tls.crt is missing" in result.stderr, result.stderr


@pytest.mark.parametrize("env, message", [
    ("GATEWAY_TLS=yes", "GATEWAY_TLS must be true or false"),
    ("GATEWAY_LOGIN_RATE=lots", "GATEWAY_LOGIN_RATE must look like"),
    ("GATEWAY_ADMIN_USER=Admin!", "GATEWAY_ADMIN_USER 'Admin!' is not a valid user name"),
])
def test_bad_settings_refuse_to_start(scratch, env, message):
    result = _gateway_run("-v", f"{scratch('vol')}:/var/lib/gateway/users", "-e", env)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize("content, message", [
    ("admin:$2y$10$" + "a" * 53 + "\nBad User:xyz\n", "viewer.htpasswd line 2 is malformed"),
    ("admin:plaintext-password\n", "viewer.htpasswd line 1 (user 'admin') is malformed: the password must be a bcrypt hash"),
    ("ana:$2y$10$" + "a" * 53 + "\nana:$2y$10$" + "b" * 53 + "\n", "user 'ana' appears twice"),
])
def test_malformed_user_file_refuses_to_start_and_is_kept(scratch, content, message):
    volume = scratch("vol")
    subprocess.run(["docker", "run", "--rm", "-i", "-v", f"{volume}:/var/lib/gateway/users", "--entrypoint", "bash", GATEWAY_IMAGE,
                    "-c", "cat > /var/lib/gateway/users/viewer.htpasswd"], input=content, text=True, check=True)
    result = _gateway_run("-v", f"{volume}:/var/lib/gateway/users")
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "refusing to start" in result.stderr
    kept = _docker("run", "--rm", "-v", f"{volume}:/var/lib/gateway/users", "--entrypoint", "cat", GATEWAY_IMAGE, "/var/lib/gateway/users/viewer.htpasswd").stdout
    assert kept == content
    listing = _docker("run", "--rm", "-v", f"{volume}:/var/lib/gateway/users", "--entrypoint", "gateway-users",
                      GATEWAY_IMAGE, "list", check=False)
    assert listing.returncode != 0 and message in listing.stderr


def test_unknown_role_file_refuses_to_start(scratch):
    volume = scratch("vol")
    _docker("run", "--rm", "-v", f"{volume}:/var/lib/gateway/users", "--entrypoint", "touch", GATEWAY_IMAGE, "/var/lib/gateway/users/admins.htpasswd")
    result = _gateway_run("-v", f"{volume}:/var/lib/gateway/users")
    assert result.returncode != 0
    assert "admins.htpasswd: unknown role 'admins'" in result.stderr, result.stderr


def test_tls_serves_https_with_hsts_and_redirects_plain_http(stack, scratch, tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    _docker("run", "--rm", "--user", "0", "-v", f"{certs}:/out", "--entrypoint", "bash", GATEWAY_IMAGE, "-c",
            "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
            "-keyout /out/tls.key -out /out/tls.crt 2>/dev/null && chmod 644 /out/tls.key /out/tls.crt")
    container = scratch("gw")
    _docker("run", "-d", "--name", container, "--network", f"{stack.project}_platform", "--read-only",
            "--tmpfs", "/tmp", "-v", f"{scratch('vol')}:/var/lib/gateway/users", "-v", f"{certs}:/etc/gateway/certs:ro",
            "-e", "GATEWAY_TLS=true", "-e", "GATEWAY_ADMIN_PASSWORD=tls-admin-password", "-p", "127.0.0.1::8080",
            GATEWAY_IMAGE)
    _wait_for_log(container, "listening on https")
    port = int(_docker("port", container, "8080/tcp").stdout.splitlines()[0].rsplit(":", 1)[1])
    base = f"https://127.0.0.1:{port}"
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    health = requests.get(f"{base}/healthz", verify=False, timeout=10)
    assert health.status_code == 200 and health.text == "ok\n"
    assert health.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert requests.get(base, verify=False, timeout=10).status_code == 401
    version = requests.post(f"{base}/graphql", json={"query": "{ version }"}, auth=("admin", "tls-admin-password"),
                            verify=False, timeout=10)
    assert version.status_code == 200 and version.json()["data"]["version"]
    plain = requests.get(f"http://127.0.0.1:{port}/runs", allow_redirects=False, timeout=10)
    assert plain.status_code == 301 and plain.headers["Location"] == f"https://127.0.0.1:{port}/runs"
    assert _docker("inspect", "-f", "{{.State.Running}}", container).stdout.strip() == "true"
    healthcheck = _docker("exec", container, "gateway-healthcheck", check=False)
    assert healthcheck.returncode == 0, healthcheck.stderr


def test_the_last_editor_cannot_be_removed_or_demoted(scratch):
    """On its own users volume (the shared stack's admin must stay): gateway-users, which
    `make user` / `make user-delete` run, keeps at least one editor."""
    volume = scratch("vol")

    def users(*args: str, password: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "run", "--rm", "-i", "--read-only", "--tmpfs", "/tmp", "--network", "none",
                               "-v", f"{volume}:/var/lib/gateway/users", "--entrypoint", "gateway-users",
                               GATEWAY_IMAGE, *args], input=password + "\n", text=True, capture_output=True)

    assert users("set", "boss", "editor", password="boss-password").returncode == 0
    assert users("set", "sam", "viewer", password="sam-password").returncode == 0
    for args in (("delete", "boss"), ("set", "boss", "viewer")):
        result = users(*args, password="boss-password")
        assert result.returncode != 0 and "'boss' is the last editor" in result.stderr, result.stderr
    assert users("set", "sam", "editor", password="sam-password").returncode == 0
    assert users("set", "boss", "viewer", password="boss-password").returncode == 0
    assert users("list").stdout == "boss viewer\nsam editor\n"
