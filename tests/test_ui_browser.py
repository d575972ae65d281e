"""The UI in a real browser: ``commitplan ui --headless`` driven by headless Chromium (Debian's
``/usr/bin/chromium``, installed by ``.ci/run``; Playwright's own browser download is never used).

One walk through the job: procurement signs in, uploads usage and a price book, loads the sample bills,
runs a plan and submits it; finance (another person) signs in and approves it. Every page is
screenshot (to a temporary directory; ``COMMITPLAN_SCREENSHOTS=docs/screenshots`` refreshes the
README's images) and the test fails on any exception or
error message a page shows.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")


@functools.lru_cache(maxsize=1)
def shots_dir() -> Path:
    """Where screenshots go: a fresh temporary directory, so a run proves it took every one; with
    ``COMMITPLAN_SCREENSHOTS=docs/screenshots`` the README's images are refreshed."""
    chosen = os.environ.get("COMMITPLAN_SCREENSHOTS")
    return Path(chosen) if chosen else Path(tempfile.mkdtemp(prefix="commitplan-screenshots-"))
TIMEOUT_MS = 120_000
PAGES = ["Data", "Usage & coverage", "Plan", "Scenarios", "Approvals", "Savings", "Allocation", "Anomalies"]

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"),
    pytest.mark.xdist_group("ui_browser"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, deadline_s: float = 90.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"commitplan ui exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"the UI did not come up at {url}")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A data dir of its own with two keys (procurement, finance), sample files, and the UI running on it."""
    import store
    from scenarios.sample_estate import generate_estate

    root = tmp_path_factory.mktemp("ui-browser")
    data = root / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("COMMITPLAN_DATABASE_URL", "COMMITPLAN_LEDGER",
                                                            "COMMITPLAN_ALLOCATION_RULES")}
    env["COMMITPLAN_DATA_DIR"] = str(data)
    sessions = store.connect(f"sqlite:///{store.data_dir(data) / 'commitplan.db'}")
    with sessions() as s:
        _, procurement = store.create_key(s, "pat-procurement", "procurement")
        _, finance = store.create_key(s, "fiona-finance", "finance")
    sessions.kw["bind"].dispose()
    files = generate_estate(4, 60, seed=1).write(root / "inputs")

    port = _free_port()
    script = Path(sys.executable).parent / "commitplan"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "api.cli"]
    log = open(root / "ui.log", "wb")
    proc = subprocess.Popen([*command, "ui", "--headless", "--port", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield {"url": url, "procurement": procurement, "finance": finance, "files": files, "log": root / "ui.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _settle(page) -> None:
    """Wait until the script run is over (the status widget gone), then fail on any exception or error shown."""
    page.wait_for_load_state("networkidle")
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=TIMEOUT_MS)
    page.wait_for_timeout(300)  # let the last deltas paint
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=TIMEOUT_MS)
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, exceptions.first.inner_text()
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.first.inner_text()


def _goto(page, title: str, marker: str) -> None:
    """Open a page from the sidebar and wait for ``marker``, text its script writes last (or nearly)."""
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()
    page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=TIMEOUT_MS)
    page.get_by_text(marker).first.wait_for(timeout=TIMEOUT_MS)
    _settle(page)


def _shoot(page, title: str, focus: str | None = None) -> None:
    """A 1280×900 screenshot, scrolled to ``focus`` (the part of the page worth showing) when given."""
    if focus:
        page.get_by_text(focus, exact=True).first.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)
    shots_dir().mkdir(parents=True, exist_ok=True)
    name = title.lower().replace(" & ", "-").replace(" ", "-")
    page.screenshot(path=str(shots_dir() / f"{name}.png"))


def _sign_in(page, token: str, who: str) -> None:
    sidebar = page.locator('[data-testid="stSidebar"]')
    if sidebar.get_by_role("button", name="Sign out").count():
        sidebar.get_by_role("button", name="Sign out").click()
        _settle(page)
    sidebar.get_by_label("API key").fill(token)
    sidebar.get_by_role("button", name="Sign in").click()
    sidebar.get_by_text(f"Signed in as {who}").wait_for(timeout=TIMEOUT_MS)
    _settle(page)


def _upload(page, kind_label: str, path: Path) -> None:
    page.get_by_text(kind_label, exact=True).click()
    _settle(page)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(path))
    page.get_by_text(path.name).first.wait_for(timeout=TIMEOUT_MS)
    _settle(page)
    page.get_by_role("button", name="Check and store").click()
    page.get_by_text(f"{path.name} ({'usage' if 'Usage' in kind_label else 'prices'}) stored as dataset").wait_for(
        timeout=TIMEOUT_MS)
    _settle(page)


def test_upload_plan_submit_approve_in_chromium(setup: dict) -> None:
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(setup["url"])
            page.get_by_role("heading", name="Data", exact=True).wait_for()
            _settle(page)

            # procurement: load the sample bills, upload usage and prices, plan, submit
            _sign_in(page, setup["procurement"], "pat-procurement")
            page.get_by_role("button", name="Load the sample bills into the ledger").click()
            page.get_by_text("Sample bills (FOCUS 1.2: AWS, Azure, GCP) loaded into the ledger").wait_for()
            _settle(page)
            _upload(page, "Usage CSV (timestamp,pool,quantity)", setup["files"]["usage"])
            _upload(page, "Price book CSV", setup["files"]["prices"])
            _shoot(page, "Data", "Reconciliation (latest first)")

            _goto(page, "Usage & coverage", "Coverage and utilization as billed (ledger)")
            _shoot(page, "Usage & coverage", "Usage by pool")

            _goto(page, "Plan", "Risk limits")
            page.get_by_role("button", name="Run the plan").click()
            page.get_by_role("button", name="Submit for approval").wait_for()
            _settle(page)
            page.get_by_role("button", name="Submit for approval").click()
            page.get_by_text("Submitted: finance approves or rejects it").wait_for()
            _settle(page)
            _shoot(page, "Plan", "Submitted: finance approves or rejects it on the Approvals page.")
            horizon = page.get_by_label("Forecast horizon in months (0: optimize for exactly this usage)")
            horizon.fill("0")
            horizon.press("Enter")
            _settle(page)
            page.get_by_role("button", name="Run the plan").click()
            page.get_by_text("run done, approval draft").wait_for()  # a second plan, for the comparison
            _settle(page)

            _goto(page, "Scenarios", "Plans side by side")
            _shoot(page, "Scenarios", "Plans side by side")

            # finance, another person: approve with a comment
            _sign_in(page, setup["finance"], "fiona-finance")
            _goto(page, "Approvals", "Audit trail")
            page.get_by_label("Comment (a rejection must say why)").fill("within budget; risk acceptable")
            page.get_by_role("button", name="Approve").click()
            page.get_by_text("The plan is approved by fiona-finance").wait_for()
            _settle(page)
            _shoot(page, "Approvals", "Show plans")

            for title, marker in (("Savings", "By commitment"), ("Allocation", "Unallocated share"),
                                  ("Anomalies", " anomalies in ")):
                _goto(page, title, marker)
                _shoot(page, title)
        except Exception:
            sys.stderr.write(setup["log"].read_text(errors="replace")[-5000:])
            raise
        finally:
            browser.close()
    assert {t.lower().replace(" & ", "-").replace(" ", "-") for t in PAGES} <= {p.stem for p in shots_dir().glob("*.png")}
