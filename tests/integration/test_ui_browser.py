"""The MLflow UI as a person sees it: `raytune-suite ui` over a tiny sweep, opened in Debian's headless Chromium.

Playwright drives the system `chromium` (its own browser download cannot work here). The UI polls the server
for ever, so pages are awaited with `domcontentloaded` plus visible-element assertions, never `networkidle`.
Set RTS_UPDATE_DOCS_IMG=1 to refresh docs/img/mlflow_runs.png from this test's screenshot.
"""

import contextlib
import os
import re
import shutil
import signal
import socket

import pytest

from raytune_suite.config import load_config
from raytune_suite.run.sweep import run_sweep
from tests.conftest import REPO
from tests.integration.cli_process import start_cli, wait_for_lines
from tests.integration.test_sweep import runs_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PORTS = range(15040, 15100)  # this project's test range
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]  # fmt: skip
TIMEOUT_MS = 60_000


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"no free port in {PORTS}")


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("RTS_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed (apt-get install -y chromium)")
        pytest.skip("no chromium on PATH (apt-get install -y chromium)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def tiny_sweep(ray_local, store, mnist_yaml):
    uri, client, storage = store
    cfg = load_config(mnist_yaml, ["data.dataset=digits", "data.subset=400", "train.epochs=2", "tune.num_samples=3"])
    result = run_sweep(cfg, tracking_uri=uri, storage=storage)
    _, children = runs_of(client, result.experiment_id)
    return result, children


@pytest.fixture
def ui_server(store, tiny_sweep):
    """`raytune-suite ui` on a free port; yields the runs-page URL it prints; SIGTERM stops it and its server."""
    uri, _, _ = store
    port = free_port()
    proc, lines = start_cli(["ui", "--port", str(port), "--mlflow-uri", uri])
    wait_for_lines(proc, lines, "runs page: ", 1, timeout=120)
    url = next(line for line in lines if line.startswith("runs page: ")).split(": ", 1)[1].strip()
    yield url
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, "".join(lines)
    with socket.socket() as sock:  # the server's process group went with it
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_runs_page_shows_every_trial_under_the_parent_and_the_best_trial_tag(tiny_sweep, ui_server, browser, tmp_path):
    from playwright.sync_api import expect

    result, children = tiny_sweep
    assert re.fullmatch(rf"http://127\.0\.0\.1:\d+/#/experiments/{result.experiment_id}/runs", ui_server)

    page = browser.new_page(viewport={"width": 1900, "height": 440})
    # Clicks and navigation too, not only expect(): a loaded machine parses MLflow's bundle slowly.
    page.set_default_timeout(TIMEOUT_MS)
    page.set_default_navigation_timeout(TIMEOUT_MS)
    page.goto(ui_server, wait_until="domcontentloaded")
    parent_row = page.get_by_role("row").filter(has=page.get_by_role("link", name=result.name, exact=True))
    expect(parent_row).to_be_visible(timeout=TIMEOUT_MS)
    close_assistant(page)
    show_columns(page, ["val_accuracy", "best_trial"])
    parent_row.locator(EXPANDER).click()
    for child in children:
        expect(page.get_by_role("link", name=child.info.run_name, exact=True)).to_be_visible(timeout=TIMEOUT_MS)

    best = next(c for c in children if c.data.tags.get("best_trial") == "true")
    best_row = page.get_by_role("row").filter(has=page.get_by_role("link", name=best.info.run_name, exact=True))
    # The best_trial column says "true" on one row only, the best run's. AG Grid renders the pinned name column
    # and the other cells as separate row elements that share a row-index.
    true_cell = page.get_by_role("gridcell").filter(has_text=re.compile(r"^true$"))
    expect(true_cell).to_have_count(1, timeout=TIMEOUT_MS)
    true_row = true_cell.locator("xpath=ancestor::div[@role='row'][1]")
    assert true_row.get_attribute("row-index") == best_row.first.get_attribute("row-index")

    screenshot = tmp_path / "mlflow_runs.png"
    page.screenshot(path=str(screenshot))
    if os.environ.get("RTS_UPDATE_DOCS_IMG") == "1":
        shutil.copy(screenshot, REPO / "docs" / "img" / "mlflow_runs.png")
    page.close()


# The +/- button in a parent run's name cell (MLflow 3's runs table).
EXPANDER = "button[data-component-id*=runnamecellrenderer]"


def close_assistant(page) -> None:
    """MLflow 3.17 opens an assistant side panel that hides half the table; close it if it is there."""
    panel_close = page.get_by_role("button", name="Close")
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    with contextlib.suppress(PlaywrightTimeoutError):  # it may mount after the table: give it a moment
        panel_close.first.wait_for(timeout=5_000)
    if panel_close.count():
        panel_close.first.click()


def show_columns(page, names: list[str]) -> None:
    """Tick metric/tag columns in the runs table's column picker (hidden by default)."""
    page.get_by_role("button", name="Columns").first.click()
    for name in names:
        page.get_by_placeholder("Search columns").fill(name)
        node = page.locator(".du-bois-light-tree-treenode").filter(has_text=re.compile(f"^{name}$")).first
        node.locator(".du-bois-light-tree-checkbox").click()
    page.keyboard.press("Escape")
