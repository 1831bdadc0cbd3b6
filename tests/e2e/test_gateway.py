"""The authenticated gateway in front of the UI: the only published port, basic auth with bcrypt
users managed by `make user`, role routing (editor -> webserver, viewer -> the --read-only
webserver-viewer), login throttling, WebSockets, security headers, TLS, and refusing bad input;
and what an attacker tries: mutations over GET, every mutation as a viewer, spoofed identity
headers, a demoted user's open WebSocket, credentials in the login cache, timing of unknown names."""

import base64
import http.client
import json
import re
import secrets
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
import requests
import urllib3
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.e2e.compose_stack import docker as _docker
from tests.e2e.compose_stack import LOCATION_NAMES, ComposeStack
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


# --- GraphQL only from a JSON POST body ---

def _raw(stack, method: str, target: str, auth: tuple[str, str] | None = None,
         headers: dict | None = None, body: str | None = None) -> tuple[int, str]:
    """One request with the target sent byte for byte (requests would normalize encodings)."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
    try:
        all_headers = {**({"Authorization": _basic(*auth)} if auth else {}), **(headers or {})}
        connection.request(method, target, body=body, headers=all_headers)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


_Q = quote(WIPE)
GRAPHQL_REFUSED = "/graphql takes a query only as a POST with Content-Type: application/json\n"


@pytest.mark.parametrize("method, target", [
    ("GET", f"/graphql?query={_Q}"),
    ("GET", f"/graphql?%71uery={_Q}"),  # an encoded parameter name
    ("GET", "/graphql?query=" + quote("# a comment\n  \t" + WIPE)),
    ("GET", "/graphql?query=" + quote("query Harmless { version } " + WIPE.replace("mutation", "mutation Wipe", 1))
     + "&operationName=Wipe"),
    ("GET", f"/graphql?variables=%7B%7D&query={_Q}"),
    ("GET", f"/graphql/?query={_Q}"),
    ("GET", f"/%67raphql?query={_Q}"),  # an encoded path
    ("GET", f"//graphql?query={_Q}"),
    ("GET", f"/./graphql?query={_Q}"),
    ("HEAD", f"/graphql?query={_Q}"),
    ("GET", "/graphql?query=" + quote(PERMISSIONS)),  # a plain query, too: GET carries none
])
def test_graphql_over_get_is_refused_whatever_the_query_string_holds(stack, method, target):
    status, body = _raw(stack, method, target, auth=stack.admin, headers={"Accept": "application/json"})
    assert status == 405, body
    if method == "GET":
        assert body == GRAPHQL_REFUSED


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "text/plain; charset=application/json", "multipart/form-data; boundary=x"])
def test_graphql_post_that_a_form_can_send_is_refused(stack, content_type):
    """Dagster reads ?query= of a POST that is not JSON; every type a form can send is refused."""
    status, body = _raw(stack, "POST", f"/graphql?query={_Q}", auth=stack.admin,
                        headers={"Content-Type": content_type}, body=json.dumps({"query": WIPE}))
    assert (status, body) == (405, GRAPHQL_REFUSED)


def test_the_uis_graphql_requests_pass(stack):
    """The UI POSTs JSON to /graphql?op=<name>, opens GraphiQL with a plain GET, and a WebSocket."""
    status, body = _raw(stack, "POST", "/graphql?op=Version", auth=stack.admin,
                        headers={"Content-Type": "application/json; charset=utf-8"},
                        body=json.dumps({"query": "query Version { version }"}))
    assert status == 200 and json.loads(body)["data"]["version"], body
    status, body = _raw(stack, "GET", "/graphql", auth=stack.admin, headers={"Accept": "text/html"})
    assert status == 200 and "graphiql" in body.lower()


# --- a viewer, every mutation, and spoofed identity headers ---

BACKFILL = """mutation Backfill($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } } }"""
CANCEL_BACKFILL = """mutation Cancel($id: String!) { cancelPartitionBackfill(backfillId: $id) {
    __typename ... on Error { message } } }"""
BACKFILL_STATUS = "query Status($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } } }"
SWEEP_ASSET, SWEEP_PARTITION = ["ingestion", "flights"], "2013-01-01"


@pytest.fixture(scope="module")
def finished_backfill(editor) -> str:
    """A backfill of one day that has landed (the same load the pipeline makes), cancelled at once."""
    launched = editor.query(BACKFILL, params={"partitionNames": [SWEEP_PARTITION],
                                              "assetSelection": [{"path": SWEEP_ASSET}]})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]
    editor.query(CANCEL_BACKFILL, id=backfill_id)
    editor.wait_for(f"backfill {backfill_id} to end",
                    lambda: editor.query(BACKFILL_STATUS, id=backfill_id)["partitionBackfillOrError"]["status"]
                    not in ("REQUESTED", "CANCELING"), timeout=300)
    return backfill_id


MUTATION_SCHEMA = """{ __schema { mutationType { fields { name args { name type { ...T } } type { ...T } } }
  types { name kind possibleTypes { name } inputFields { name type { ...T } } enumValues { name } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }"""
# Harmless for anybody: the UI's "seen the intro" flag and a telemetry line (no runs, assets,
# schedules, sensors, backfills, locations or settings change).
HARMLESS_MUTATIONS = {"setNuxSeen", "logTelemetry"}
# Results that hold one result per item, checked item by item.
NESTED_RESULTS = {"TerminateRunsResult": "terminateRunResults", "LaunchMultipleRunsResult": "launchMultipleRunsResult"}
NESTED_SELECTIONS = {"TerminateRunsResult": "... on TerminateRunFailure { message }", "LaunchMultipleRunsResult": ""}
# Failures with a message that do not implement Dagster's Error interface.
MESSAGE_TYPES = {"TerminateRunFailure"}
REFUSAL = re.compile(r"UnauthorizedError|do not have permission", re.IGNORECASE)


def _type_name(t: dict) -> str:
    if t["kind"] == "NON_NULL":
        return _type_name(t["ofType"]) + "!"
    if t["kind"] == "LIST":
        return f"[{_type_name(t['ofType'])}]"
    return t["name"]


def _named(t: dict) -> dict:
    while t.get("ofType"):
        t = t["ofType"]
    return t


def _value(name: str, t: dict, types: dict, known: dict):
    """A value of type t for an argument or input field called name: a real one where the
    stack has it (known), else the simplest valid literal of the type."""
    if name in known:
        return known[name]
    if t["kind"] == "NON_NULL":
        return _value(name, t["ofType"], types, known)
    if t["kind"] == "LIST":
        return [_value(name, t["ofType"], types, known)]
    if t["kind"] == "ENUM":
        return types[t["name"]]["enumValues"][0]["name"]
    if t["kind"] == "INPUT_OBJECT":
        return {f["name"]: _value(f["name"], f["type"], types, known) for f in types[t["name"]]["inputFields"]
                if f["type"]["kind"] == "NON_NULL" or f["name"] in known}
    return {"Int": 1, "Float": 0.0, "Boolean": False}.get(t["name"], "x")


def _selection(t: dict, types: dict) -> str:
    named = _named(t)
    if named["kind"] == "SCALAR":
        return ""
    nested = "".join(f" ... on {n} {{ {f} {{ __typename ... on Error {{ message }} {NESTED_SELECTIONS[n]} }} }}"
                     for n, f in NESTED_RESULTS.items()
                     if n == named["name"] or n in {p["name"] for p in types[named["name"]].get("possibleTypes") or []})
    members = {p["name"] for p in types[named["name"]].get("possibleTypes") or []}
    error = " ... on Error { message }" if named["kind"] in ("UNION", "INTERFACE") else ""
    error += "".join(f" ... on {n} {{ message }}" for n in sorted(MESSAGE_TYPES & members))
    return f" {{ __typename{error}{nested} }}"


def mutation_requests(schema: dict, known: dict, overrides: dict[str, dict]) -> dict[str, tuple[str, dict]]:
    """Mutation name -> (document, variables) calling it with real or valid arguments."""
    types = {t["name"]: t for t in schema["types"]}
    calls = {}
    for field in schema["mutationType"]["fields"]:
        args = field["args"]
        variables = {a["name"]: overrides.get(field["name"], {}).get(a["name"], _value(a["name"], a["type"], types, known))
                     for a in args if a["type"]["kind"] == "NON_NULL" or a["name"] in known
                     or a["name"] in overrides.get(field["name"], {})}
        used = [a for a in args if a["name"] in variables]
        declared = ", ".join(f"${a['name']}: {_type_name(a['type'])}" for a in used)
        passed = ", ".join(f"{a['name']}: ${a['name']}" for a in used)
        document = (f"mutation Try{'(' + declared + ')' if used else ''} {{ {field['name']}"
                    f"{'(' + passed + ')' if used else ''}{_selection(field['type'], types)} }}")
        calls[field["name"]] = (document, variables)
    return calls


def refused(body: dict, name: str) -> bool:
    """Refused for lack of permission: an UnauthorizedError result (or every item of a nested one),
    a permission message, or the error Dagster raises for a Boolean mutation it refuses."""
    if body.get("errors"):
        return all(REFUSAL.search(e.get("message", "")) for e in body["errors"])
    result = (body.get("data") or {}).get(name)
    if not isinstance(result, dict):
        return False
    items = result.get(NESTED_RESULTS.get(result["__typename"], ""), [result])
    return bool(items) and all(i["__typename"] == "UnauthorizedError" or REFUSAL.search(i.get("message") or "")
                               for i in items)


INSTIGATORS = """{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name }
  schedules { name scheduleState { id } } sensors { name sensorState { id } } } } } }"""


def sweep_arguments(repositories: list[dict], run_id: str, backfill_id: str, location: str,
                    asset_path: list[str], partition: str) -> tuple[dict, dict]:
    """Real targets for the sweep: a finished run, a backfill, a schedule and a sensor of the
    stack, an asset and one of its partitions. Returns (by argument name, by mutation)."""
    schedule = next((r, s) for r in repositories for s in r["schedules"])
    sensor = next((r, s) for r in repositories for s in r["sensors"])
    known = {"runId": run_id, "runIds": [run_id], "backfillId": backfill_id,
             "repositoryLocationName": location, "locationName": location, "repositoryName": "__repository__",
             "jobName": "__ASSET_JOB", "assetSelection": [{"path": asset_path}], "partitionNames": [partition],
             "scheduleName": schedule[1]["name"], "sensorName": sensor[1]["name"]}
    by_location = {"repositoryLocationName": location, "repositoryName": "__repository__"}
    reexecute = {"reexecutionParams": {"parentRunId": run_id, "strategy": "ALL_STEPS"}}
    overrides = {
        "launchPipelineReexecution": reexecute, "launchRunReexecution": reexecute,
        "reexecutePartitionBackfill": {"reexecutionParams": {"parentRunId": backfill_id, "strategy": "ALL_STEPS"}},
        "stopRunningSchedule": {"id": schedule[1]["scheduleState"]["id"]},
        "stopSensor": {"id": sensor[1]["sensorState"]["id"]},
        "scheduleDryRun": {"timestamp": time.time(), "selectorData": {
            **by_location, "repositoryLocationName": schedule[0]["location"]["name"], "scheduleName": schedule[1]["name"]}},
        "sensorDryRun": {"cursor": None, "selectorData": {
            **by_location, "repositoryLocationName": sensor[0]["location"]["name"], "sensorName": sensor[1]["name"]}},
    }
    return known, overrides


def test_every_mutation_is_refused_for_a_viewer(stack, viewer, dagster, editor_run, finished_backfill):
    """Each mutation of Dagster's schema (found by introspection, so a new one is covered), called by
    a viewer with real targets (a run, a backfill, a schedule, a sensor, an asset partition), is
    refused for lack of permission, and nothing changed."""
    run_id = editor_run[0]
    schema = viewer.query(MUTATION_SCHEMA)["__schema"]
    repositories = viewer.query(INSTIGATORS)["repositoriesOrError"]["nodes"]
    known, overrides = sweep_arguments(repositories, run_id, finished_backfill, "ingestion", SWEEP_ASSET, SWEEP_PARTITION)
    calls = mutation_requests(schema, known, overrides)
    assert {"terminateRun", "launchPipelineExecution", "deletePipelineRun", "reloadRepositoryLocation",
            "wipeAssets", "launchPartitionBackfill", "stopSensor"} <= set(calls)
    runs_before = {r["runId"] for r in dagster.runs()}
    backfill_before = dagster.query(BACKFILL_STATUS, id=finished_backfill)
    accepted = {}
    for name, (document, variables) in calls.items():
        if name in HARMLESS_MUTATIONS:
            continue
        response = viewer.session.post(viewer.url, json={"query": document, "variables": variables}, timeout=60)
        # (Dagster answers a refused Boolean mutation with an error and HTTP 500.)
        assert response.status_code in (200, 500), (name, response.status_code, response.text)
        if not refused(response.json(), name):
            accepted[name] = response.json()
    assert not accepted, json.dumps(accepted, indent=1)[:6000]
    assert run_id in {r["runId"] for r in dagster.runs()}
    manual = [r for r in dagster.runs() if r["runId"] not in runs_before and not AUTOMATIC_TAGS & set(r["tags"])]
    assert not manual, manual
    assert dagster.query(BACKFILL_STATUS, id=finished_backfill) == backfill_before


SPOOFED = {"X-Gateway-Role": "editor", "X-Forwarded-User": "admin", "X-Forwarded-For": "127.0.0.1",
           "X-Real-IP": "127.0.0.1", "X-Gateway-Client": "127.0.0.1"}


def test_spoofed_identity_headers_raise_no_privileges(stack, users):
    anonymous = requests.post(f"{stack.base_url}/graphql", json={"query": RELOAD}, headers=SPOOFED, timeout=10)
    assert anonymous.status_code == 401
    spoofing = DagsterGraphQL(stack.base_url, auth=users["viewer"])
    spoofing.session.headers.update(SPOOFED)
    permissions = {p["permission"]: p["value"] for p in spoofing.query(PERMISSIONS)["permissions"]}
    assert not any(permissions.values()), permissions
    assert spoofing.query(RELOAD)["reloadRepositoryLocation"]["__typename"] == UNAUTHORIZED
    # A WebSocket with the same headers is the viewer's too: it gets only the read-only webserver.
    with connect(f"ws://127.0.0.1:{stack.port}/graphql", subprotocols=["graphql-ws"], open_timeout=15,
                 additional_headers={"Authorization": _basic(*users["viewer"]), **SPOOFED}) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(ws.recv(timeout=15))["type"] == "connection_ack"
        ws.send(json.dumps({"id": "1", "type": "start", "payload": {"query": RELOAD}}))
        reply = json.loads(ws.recv(timeout=30))
    assert UNAUTHORIZED in json.dumps(reply) or reply["type"] == "error", reply


def test_a_new_forwarded_for_on_each_guess_does_not_escape_the_throttle(stack):
    """From another address: 30 wrong passwords, each claiming another client address."""
    out = _on_platform(stack, """
        for i in $(seq 1 30); do
          curl -s -o /dev/null -w '%{http_code}\\n' -u "admin:wrong-$i" -H "X-Forwarded-For: 10.9.$i.1" \\
               -H "X-Real-IP: 10.9.$i.1" -H "X-Gateway-Client: 10.9.$i.1" http://gateway:8080/
        done
    """)
    codes = out.split()
    assert len(codes) == 30 and set(codes) <= {"401", "429"}, codes
    assert codes[-10:] == ["429"] * 10, codes


# --- a changed user's open connections, the login cache, unknown names ---

def test_a_demoted_editors_open_websocket_is_closed_within_the_shutdown_timeout(stack):
    """`make user` reloads nginx; worker_shutdown_timeout (10 s) ends the old workers' WebSockets,
    which were authorized once, when they opened."""
    name, password = "ws.editor", "ws-editor-" + secrets.token_hex(6)
    stack.add_user(name, "editor", password)
    url = f"ws://127.0.0.1:{stack.port}/graphql"
    with connect(url, subprotocols=["graphql-ws"], additional_headers={"Authorization": _basic(name, password)},
                 open_timeout=15) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(ws.recv(timeout=15))["type"] == "connection_ack"
        stack.add_user(name, "viewer", password)  # demoted (same password)
        demoted = time.monotonic()
        closed_after = None
        while closed_after is None and time.monotonic() < demoted + 10 + 10:
            try:
                ws.recv(timeout=1)
            except TimeoutError:
                continue
            except ConnectionClosed:
                closed_after = time.monotonic() - demoted
        assert closed_after is not None, "the demoted editor's WebSocket was still open 20 s after the change"
    client = DagsterGraphQL(stack.base_url, auth=(name, password))
    assert not any(p["value"] for p in client.query(PERMISSIONS)["permissions"])
    assert client.query(RELOAD)["reloadRepositoryLocation"]["__typename"] == UNAUTHORIZED
    stack.make("user-delete", f"NAME={name}")


def _gateway_container(stack) -> str:
    return stack.compose("ps", "-q", "gateway").stdout.strip()


def test_the_login_cache_holds_no_credentials(stack, users):
    for user in (stack.admin, users["viewer"]):
        assert requests.get(f"{stack.base_url}/server_info", auth=user, timeout=10).status_code == 200
    cache = subprocess.run(["docker", "exec", _gateway_container(stack), "sh", "-c",
                            "cat /tmp/nginx/auth-cache/*/*"], capture_output=True, check=True).stdout
    keys = re.findall(rb"\nKEY: ([^\n]*)\n", cache)
    assert keys, cache[:2000]
    for key in keys:
        assert re.fullmatch(rb"[0-9]+:[0-9a-f.:]+:[0-9a-f]{64}", key), key
    for name, password in (stack.admin, users["viewer"]):
        for secret in (password, base64.b64encode(f"{name}:{password}".encode()).decode()):
            assert secret.encode() not in cache
    # (A viewer's verdict keeps the editor check's `WWW-Authenticate: Basic realm=…`: no credentials.)
    assert not re.search(rb"Basic (?!realm=)[A-Za-z0-9+/=]{4,}", cache), re.findall(rb".{0,40}Basic.{0,40}", cache)


STAND_IN_CHECK = 'user "Gateway-Stand-In": password mismatch'


def test_unknown_names_cost_one_bcrypt_like_known_ones(stack, users):
    """A name that is in no user file is checked against a stand-in bcrypt hash of the users' cost
    (nginx logs each failed stand-in check); a known name with a wrong password is not."""
    container = _gateway_container(stack)

    def stand_in_checks() -> int:
        return stack.compose("logs", "--no-color", "gateway").stdout.count(STAND_IN_CHECK)

    before = stand_in_checks()
    attempts = ["nobody.1", "nobody.2", "Admin", stack.admin[0], users["viewer"][0]]
    codes = _docker("exec", container, "bash", "-c", " ".join(
        f"curl -s -o /dev/null -w '%{{http_code}} ' -u '{name}:wrong-password' http://127.0.0.1:8080/;"
        for name in attempts)).stdout.split()
    assert codes == ["401"] * len(attempts), codes
    deadline = time.monotonic() + 10
    while stand_in_checks() < before + 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1)
    assert stand_in_checks() == before + 3  # the three unknown names, not the two known ones
    costs = _docker("exec", container, "bash", "-c",
                    "cut -d: -f2 /tmp/nginx/generated/stand-in.htpasswd /var/lib/gateway/users/*.htpasswd"
                    " | cut -d'$' -f3 | sort -u").stdout.split()
    assert costs == ["10"], costs  # GATEWAY_BCRYPT_COST's default, for users and stand-in alike


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


FIRST_ADMIN_FILE = "/var/lib/gateway/users/first-editor.password"


def test_generated_admin_password_is_kept_in_a_private_file_and_never_logged(stack, scratch):
    """First start on a volume that has only a viewer (added while the stack was down)."""
    volume, container = scratch("vol"), scratch("gw")
    common = ["--network", f"{stack.project}_platform", "--read-only", "--tmpfs", "/tmp",
              "-v", f"{volume}:/var/lib/gateway/users"]
    subprocess.run(["docker", "run", "--rm", "-i", *common, "--entrypoint", "gateway-users", GATEWAY_IMAGE,
                    "set", "early.viewer", "viewer"], input="early-viewer-pw\n", text=True, check=True,
                   capture_output=True)
    _docker("run", "-d", "--name", container, *common, GATEWAY_IMAGE)
    logs = _wait_for_log(container, "listening on http")
    assert "created the first editor 'admin' with a generated password: make admin-password prints it" in logs, logs
    password = _docker("exec", container, "gateway-users", "admin-password").stdout.strip()
    assert len(password) >= 20
    assert password not in logs
    assert _docker("exec", container, "stat", "-c", "%a %U", FIRST_ADMIN_FILE).stdout.split() == ["600", "www-data"]
    query = f"""curl -s -u 'admin:{password}' -H 'Content-Type: application/json' -d '{{"query": "{{ version }}"}}' http://127.0.0.1:8080/graphql"""
    assert '"version"' in _docker("exec", container, "bash", "-c", query).stdout
    _docker("restart", container)
    logs = _wait_for_log(container, "listening on http", count=2)
    assert logs.count("1 editor(s), 1 viewer(s)") == 2, logs
    assert password not in logs
    assert logs.count("created the first editor") == 1, logs
    assert '"version"' in _docker("exec", container, "bash", "-c", query).stdout


def test_the_resolver_is_the_container_s_own_nameserver_or_the_setting(scratch):
    """Under compose that is Docker's 127.0.0.11; in a Kubernetes pod, the cluster DNS its
    resolv.conf names (here: a --dns address), so the same image runs there with no DNS helper."""
    resolvers = {}
    for extra in ([], ["-e", "GATEWAY_RESOLVER=192.0.2.99:5353 [2001:db8::1]"]):
        container = scratch("gw")
        _docker("run", "-d", "--name", container, "--read-only", "--tmpfs", "/tmp", "--network", "bridge",
                "--dns", "192.0.2.53", "-v", f"{scratch('vol')}:/var/lib/gateway/users", *extra, GATEWAY_IMAGE)
        _wait_for_log(container, "listening on http")
        conf = _docker("exec", container, "cat", "/tmp/nginx/generated/http.conf").stdout
        resolvers[bool(extra)] = [line for line in conf.splitlines() if line.startswith("resolver ")]
    assert resolvers == {False: ["resolver 192.0.2.53 valid=10s ipv6=off;"],
                         True: ["resolver 192.0.2.99:5353 [2001:db8::1] valid=10s ipv6=off;"]}


@pytest.fixture
def gateway_only(stack, tmp_path):
    """A compose project of its own with only the gateway, started as a first `make up` starts it
    (no GATEWAY_ADMIN_PASSWORD), and joined to the stack's network to reach its webservers."""
    fresh = ComposeStack(f"{stack.project}-gw", tmp_path)
    fresh.set_env(GATEWAY_ADMIN_PASSWORD="")
    try:
        fresh.compose("up", "-d", "--no-deps", "--wait", "--wait-timeout", "60", "gateway")
        _docker("network", "connect", f"{stack.project}_platform", fresh.compose("ps", "-q", "gateway").stdout.strip())
        yield fresh
    finally:
        fresh.down()


def test_make_admin_password_prints_the_generated_password_that_nothing_logs(gateway_only):
    password = gateway_only.make("admin-password").stdout.strip()
    assert len(password) >= 20
    version = requests.post(f"{gateway_only.base_url}/graphql", json={"query": "{ version }"},
                            auth=("admin", password), timeout=30)
    assert version.status_code == 200 and version.json()["data"]["version"], version.text
    logs = gateway_only.compose("logs", "--no-color").stdout
    assert "make admin-password prints it" in logs, logs
    assert password not in logs
    mode = gateway_only.compose("exec", "-T", "gateway", "stat", "-c", "%a %U", FIRST_ADMIN_FILE).stdout.split()
    assert mode == ["600", "www-data"]
    # Once the admin chose their own password, the generated one is gone.
    gateway_only.add_user("admin", "editor", "own-" + secrets.token_hex(8))
    retired = gateway_only.make("admin-password", check=False)
    assert retired.returncode != 0 and "no generated password" in retired.stderr, retired.stderr
    assert requests.get(gateway_only.base_url, auth=("admin", password), timeout=10).status_code == 401


def test_tls_without_certificate_refuses_to_start_naming_the_file(scratch, tmp_path):
    result = _gateway_run("-v", f"{scratch('vol')}:/var/lib/gateway/users", "-v", f"{tmp_path}:/etc/gateway/certs:ro",
                          "-e", "GATEWAY_TLS=true")
    assert result.returncode != 0
    assert "GATEWAY_TLS=true but /etc/gateway/certs/tls.crt is missing" in result.stderr, result.stderr


@pytest.mark.parametrize("env, message", [
    ("GATEWAY_TLS=yes", "GATEWAY_TLS must be true or false"),
    ("GATEWAY_LOGIN_RATE=lots", "GATEWAY_LOGIN_RATE must look like"),
    ("GATEWAY_ADMIN_USER=Admin!", "GATEWAY_ADMIN_USER 'Admin!' is not a valid user name"),
    ("GATEWAY_RESOLVER=10.0.0", "GATEWAY_RESOLVER: '10.0.0' is not an IPv4 address"),
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
