"""report.html in a real browser: headless Chromium (Debian's package), driven by Playwright.

The page of the smoke profile must open from the file alone, load every figure, log no console
error, ask nothing of the network, fit a phone's width, and filter its claims.
"""

import os
import shutil

import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # the browser, and every suite at smoke

# As root and on a closed network: no sandbox, and none of Chromium's background connections.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        message = "Chromium not installed (apt-get install chromium; .ci/run does it)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def _open(browser, path, width: int, height: int):
    """The page at a window size, with every console error, page error and request it made."""
    page = browser.new_page(viewport={"width": width, "height": height})
    seen = {"errors": [], "requests": []}
    page.on(
        "console",
        lambda message: seen["errors"].append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.on("request", lambda request: seen["requests"].append(request.url))
    page.goto(path.as_uri(), wait_until="load")
    return page, seen


@pytest.mark.parametrize("width, height", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_report_page_loads_every_figure_without_errors_offline(
    browser, smoke_report, tmp_path, width, height
):
    page, seen = _open(browser, smoke_report / "report.html", width, height)
    images = page.eval_on_selector_all(
        "img",
        "els => els.map(e => ({src: e.src.slice(0, 30), ok: e.complete && e.naturalWidth > 0}))",
    )
    figures = sorted((smoke_report / "figures").rglob("*.png"))
    assert len(images) == len(figures) > 0
    assert all(image["ok"] for image in images), images
    assert seen["errors"] == []
    assert [
        url for url in seen["requests"] if not url.startswith(("file:", "data:"))
    ] == []  # nothing from the network
    assert (
        page.evaluate("document.documentElement.scrollWidth") <= width
    )  # no sideways scrolling, even on a phone
    page.screenshot(path=tmp_path / f"report-{width}.png")
    assert (tmp_path / f"report-{width}.png").stat().st_size > 10_000


def test_claims_filter_by_verdict_and_by_suite(browser, smoke_report):
    claims = pd.read_csv(smoke_report / "claims.csv")
    page, seen = _open(browser, smoke_report / "report.html", 1280, 900)

    def shown() -> list[tuple[str, str]]:
        return page.eval_on_selector_all(
            "#claims-table tbody tr:not([hidden])",
            "rows => rows.map(r => [r.dataset.suite, r.dataset.status])",
        )

    assert len(shown()) == len(claims)
    page.select_option("#filter-suite", "xor")
    assert len(shown()) == (claims["suite"] == "xor").sum() and {s for s, _ in shown()} == {"xor"}
    page.select_option("#filter-suite", "")
    page.click(".summary button[data-status='not reproduced']")
    assert shown() == [] and page.inner_text("#filter-count") == f"0 of {len(claims)} claims shown"
    page.click(".summary button[data-status='reproduced']")
    assert len(shown()) == (claims["status"] == "reproduced").sum() > 0
    assert seen["errors"] == []
