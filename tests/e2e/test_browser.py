"""The UI in a real browser (Debian's Chromium driven by Playwright) through the gateway, as a
person uses it: a viewer sees the cross-location lineage and no enabled Materialize action; an
editor materializes an asset and sees the run start and finish. Screenshots: tests/artifacts/."""

import re
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

pytestmark = pytest.mark.compose

CHROMIUM = "/usr/bin/chromium"  # Debian's package (`make browser`); never `playwright install`
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "tests" / "artifacts"
FLIGHTS = ["ingestion", "flights"]
AIRLINES = ["ingestion", "airlines"]  # unpartitioned reference table: one click materializes it
# The reporting asset downstream of flights (renamed from daily_carrier_delays).
SUMMARY_CANDIDATES = (["reporting", "daily_delay_summary"], ["reporting", "daily_carrier_delays"])
PAGE_TIMEOUT_MS = 60_000

ASSET_KEYS = "{ assetNodes { assetKey { path } dependencyKeys { path } } }"


@pytest.fixture(scope="module", autouse=True)
def chromium_present():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)", pytrace=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="module")
def people(stack, dagster):
    viewer = ("bea.viewer", secrets.token_urlsafe(12))
    editor = ("ed.editor", secrets.token_urlsafe(12))
    stack.add_user(viewer[0], "viewer", viewer[1])
    stack.add_user(editor[0], "editor", editor[1])
    return {"viewer": viewer, "editor": editor}


@pytest.fixture(scope="module")
def summary_asset(dagster) -> list[str]:
    nodes = {tuple(n["assetKey"]["path"]): n for n in dagster.query(ASSET_KEYS)["assetNodes"]}
    for key in SUMMARY_CANDIDATES:
        if tuple(key) in nodes:
            assert {"path": FLIGHTS} in nodes[tuple(key)]["dependencyKeys"], nodes[tuple(key)]
            return key
    raise AssertionError(f"none of {SUMMARY_CANDIDATES} is defined: {sorted(nodes)}")


@pytest.fixture
def browser_as(tmp_path):
    """browser_as((user, password)) -> a Page in a fresh Chromium profile logged in via basic auth."""
    with sync_playwright() as playwright:
        contexts = []

        def open_page(credentials) -> Page:
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path / f"profile-{len(contexts)}"), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                headless=True, http_credentials={"username": credentials[0], "password": credentials[1]},
                viewport={"width": 1600, "height": 1000})
            contexts.append(context)
            context.set_default_timeout(PAGE_TIMEOUT_MS)
            # Dagster's one-time "join the community" dialog would cover the page.
            context.add_init_script("window.localStorage.setItem('communityNux', '1')")
            page = context.pages[0] if context.pages else context.new_page()
            page.frames_received = []  # WebSocket frames, to prove the live connection works
            page.on("websocket", lambda ws: ws.on("framereceived", lambda f: page.frames_received.append(f)))
            return page

        yield open_page
        for context in contexts:
            context.close()


def _materialize_buttons(page: Page):
    # Accessible names start with the icon's ligature: "materialization Materialize all…".
    return page.get_by_role("button", name=re.compile(r"(^|\s)Materialize\b"))


def test_viewer_sees_cross_location_lineage_and_cannot_materialize(stack, people, summary_asset, browser_as):
    page = browser_as(people["viewer"])
    path = "/".join(summary_asset)
    page.goto(f"{stack.base_url}/assets/{path}?view=lineage&lineageScope=upstream&lineageDepth=1")

    graph = page.locator("svg").filter(has=page.locator(f'[data-tooltip="{summary_asset[-1]}"]')).first
    upstream = graph.locator('[data-tooltip="flights"]')
    downstream = graph.locator(f'[data-tooltip="{summary_asset[-1]}"]')
    expect(upstream).to_be_visible()
    expect(downstream).to_be_visible()
    expect(graph.get_by_text("ingestion", exact=True).first).to_be_visible()  # the two locations'
    expect(graph.get_by_text("reporting", exact=True).first).to_be_visible()  # groups
    edges = graph.locator('path[stroke^="var(--color-lineage-edge"]')
    expect(edges.first).to_be_attached()
    # One upstream asset, so exactly one edge (drawn twice: plain and highlighted), and it runs
    # from the flights node (left, ingestion) to the summary node (right, reporting).
    assert len({edges.nth(i).get_attribute("d") for i in range(edges.count())}) == 1
    edge, src, dst = edges.first.bounding_box(), upstream.bounding_box(), downstream.bounding_box()
    assert src["x"] < edge["x"] and edge["x"] + edge["width"] <= dst["x"] + 2, (src, edge, dst)
    assert src["y"] - 100 < edge["y"] < src["y"] + 150, (src, edge)
    # Node details filled in: the live data of 365 partitions and their checks, which a webserver
    # busy with the demo's runs can take longer than expect()'s default 5 s to send.
    expect(graph.get_by_text(re.compile(r"^Loading"))).to_have_count(0, timeout=PAGE_TIMEOUT_MS)
    page.screenshot(path=str(ARTIFACTS / "viewer-lineage.png"))

    buttons = _materialize_buttons(page)
    expect(buttons.first).to_be_visible()
    assert buttons.count() >= 1
    for i in range(buttons.count()):
        expect(buttons.nth(i)).to_be_disabled()

    page.goto(f"{stack.base_url}/assets/{'/'.join(AIRLINES)}")
    expect(page.get_by_text("Carrier codes and names").first).to_be_visible()
    buttons = _materialize_buttons(page)
    expect(buttons.first).to_be_visible()
    for i in range(buttons.count()):
        expect(buttons.nth(i)).to_be_disabled()
    page.screenshot(path=str(ARTIFACTS / "viewer-asset-no-materialize.png"))
    # The UI's live updates came over the WebSocket through the gateway.
    assert any("connection_ack" in str(f) for f in page.frames_received), page.frames_received[:5]


def test_editor_materializes_an_asset_and_sees_the_run(stack, dagster, people, browser_as):
    page = browser_as(people["editor"])
    page.goto(f"{stack.base_url}/assets/{'/'.join(AIRLINES)}")
    button = page.get_by_role("button", name=re.compile(r"(^|\s)Materialize$"))
    expect(button).to_be_enabled()
    before = {r["runId"] for r in dagster.runs()}
    button.click()

    toast = page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}"))
    expect(toast).to_be_visible()
    prefix = re.search(r"Launched run ([0-9a-f]{8})", toast.inner_text()).group(1)
    page.screenshot(path=str(ARTIFACTS / "editor-launched.png"))
    # (sensors and automation may launch other runs meanwhile)
    new = [r for r in dagster.runs() if r["runId"] not in before and r["runId"].startswith(prefix)]
    assert len(new) == 1, new
    run_id = new[0]["runId"]

    page.get_by_role("button", name="View").or_(page.get_by_role("link", name="View")).first.click()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}"))
    status, seen = dagster.wait_run(run_id)
    assert status == "SUCCESS", seen
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()  # the page updates live
    expect(page.get_by_text("ingestion__airlines").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "editor-run.png"))

