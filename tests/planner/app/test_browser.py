"""The resident app in a real headless browser (Debian's chromium driven by Playwright).

One launcher on a free loopback port serves the module; each test opens its own resident
session (its own process). The planning grid is coarse (5 mm) to keep the suite quick.
"""

import threading
import time
from pathlib import Path

import pytest

playwright = pytest.importorskip("playwright.sync_api", reason="the app extra (playwright) is not installed")

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)")]


def _launch(db):
    from planner.app.launcher import Launcher

    launcher = Launcher(host="127.0.0.1", port=0, db=db, grid_mm=5.0, max_sessions=4, idle_s=120, threads=1,
                        score_grid_mm=5.0)
    threading.Thread(target=launcher.httpd.serve_forever, daemon=True).start()
    return launcher


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return tmp_path_factory.mktemp("teach") / "progress.sqlite"


@pytest.fixture(scope="module")
def launcher(db):
    launcher = _launch(db)
    yield launcher
    launcher.httpd.shutdown()
    launcher.stop()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def _start(browser, launcher, name):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(launcher.url)
    page.fill("#resident", name)
    page.click("#start")
    page.wait_for_selector("text=Pick a case", timeout=60_000)
    return page


def _open_and_decide(page, case="t10_rcc_escc2", strategy="SBRT 24 Gy/2"):
    page.click(f"[data-case={case}]")
    page.wait_for_selector("#commit", timeout=30_000)
    assert page.locator("#achievable").count() == 0  # no numbers before the decision
    page.get_by_label(strategy, exact=True).check()
    page.click("#commit")
    page.wait_for_function("document.querySelector('#achievable')?.textContent.includes('Gy')", timeout=60_000)


def _changed(page, selector, before, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = page.text_content(selector)
        if now != before:
            return now
        time.sleep(0.05)
    raise AssertionError(f"{selector} stayed {before!r}")


@pytest.fixture(scope="module")
def planning(browser, launcher):
    page = _start(browser, launcher, "ana")
    _open_and_decide(page)
    return page


def test_the_gap_slider_moves_the_headline_table_and_view(planning):
    page = planning
    achievable = page.text_content("#achievable")
    table = page.text_content("#constraints")
    pixels = page.locator("#view-axial").screenshot()
    page.focus("#gap .v-slider-thumb")
    for _ in range(4):  # 0 -> 2 mm with the keyboard
        page.keyboard.press("ArrowRight")
    after = _changed(page, "#achievable", achievable)
    page.wait_for_function("document.querySelector('#server-ms') && !document.querySelector('#busy')", timeout=60_000)
    time.sleep(0.3)
    assert float(after.split()[0]) > float(achievable.split()[0])  # separation raises what is achievable
    assert page.text_content("#constraints") != table
    assert page.locator("#view-axial").screenshot() != pixels
    assert "Separation gap 2 mm" in page.text_content("body")


def test_the_headline_is_provisional_until_the_plan_settles(planning):
    """A slider move shows a provisional headline ('refining...'); once the slider rests the
    plan converges and the marker goes. Back at the same gap by another path, the settled
    headline is the same."""
    page = planning
    page.wait_for_selector("#refining", state="hidden", timeout=120_000)
    settled = page.text_content("#achievable")
    page.focus("#gap .v-slider-thumb")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_selector("#refining", timeout=20_000)
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("document.body.innerText.includes('Separation gap 2 mm')", timeout=20_000)
    page.wait_for_function("window.trame.state.get('provisional') === true", timeout=20_000)
    page.wait_for_selector("#refining", state="hidden", timeout=120_000)
    assert page.text_content("#achievable") == settled


def test_a_beam_change_rebuilds_in_the_background_with_progress(planning):
    page = planning
    page.wait_for_function("!document.querySelector('#busy')", timeout=60_000)
    count = page.text_content("#update-count")
    page.focus("#beams .v-slider-thumb")
    page.keyboard.press("ArrowLeft")  # 9 -> 8 beams: a new influence matrix
    page.wait_for_selector("#busy-text", timeout=10_000)
    assert "building the plan" in page.text_content("#busy-text")
    page.wait_for_function(f"document.querySelector('#update-count').textContent !== '{count}'", timeout=60_000)
    assert "Beams 8" in page.text_content("body")


def test_bad_input_is_refused_and_the_server_keeps_going(planning):
    page = planning
    page.fill("#dose", "abc")
    page.wait_for_selector("text=prescription dose must be a number", timeout=10_000)
    page.fill("#dose", "500")
    page.wait_for_selector("text=prescription dose must be in", timeout=10_000)
    # values the widgets would never send, straight into the shared state
    page.evaluate("window.trame.state.set('gap_mm', 'DROP TABLE'); window.trame.state.set('fractions', -3)")
    page.wait_for_selector("text=fractions must be", timeout=10_000)
    for key in ("dose_gy", "fractions", "protocol", "surrogate", "n_beams", "weeks", "strategy", "w_walking",
                "regimen_pick", "choice", "gap_mm"):
        for value in ("null", "'x'", "1e308", "-1", "{a: 1}", "[1, 2]", "'hytec'"):
            page.evaluate(f"window.trame.state.set('{key}', {value})")
    time.sleep(2.0)
    before = page.text_content("#achievable")
    page.focus("#gap .v-slider-thumb")
    for _ in range(25):  # a storm of slider events
        page.keyboard.press("ArrowLeft")
    _changed(page, "#achievable", before)
    page.wait_for_function("document.body.innerText.includes('Separation gap 0 mm')", timeout=10_000)
    time.sleep(1.0)  # the newest value wins: the view settles on gap 0 and the server still answers
    settled = page.text_content("#achievable")
    page.focus("#gap .v-slider-thumb")
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    assert float(_changed(page, "#achievable", settled).split()[0]) > float(settled.split()[0])


def test_the_scorecard_cards_fit_the_page(planning):
    page = planning
    page.click("#tab-score")
    page.wait_for_selector("#noms", timeout=180_000)
    # Long source keys in 'what it rests on' once widened the side-by-side cards past the page.
    widths = page.evaluate("[...document.querySelectorAll('#noms ~ div .v-card')]"
                           ".map(card => [card.scrollWidth, card.clientWidth])")
    page.click("#tab-plan")
    assert len(widths) == 2
    assert all(scroll <= client for scroll, client in widths), widths


def test_the_start_page_checks_the_name_in_the_browser(browser, launcher):
    page = browser.new_page()
    page.goto(launcher.url)
    name = page.locator("#resident")
    # A pattern the browser cannot compile is dropped silently: then nothing mismatches.
    page.fill("#resident", "bad/name")
    assert name.evaluate("element => element.validity.patternMismatch")
    page.fill("#resident", "ana-maria o.k_2")
    assert not name.evaluate("element => element.validity.patternMismatch")
    page.close()


def test_a_second_session_does_not_see_the_first(planning, browser, launcher):
    other = _start(browser, launcher, "ben")
    assert other.locator("#achievable").count() == 0 and other.locator("#commit").count() == 0
    assert "case: none" in other.text_content("body")
    assert planning.locator("#achievable").count() == 1  # the first resident is where they were
    other.close()


def test_a_resident_loads_their_own_case_file(browser, launcher, tmp_path):
    page = _start(browser, launcher, "cleo")
    bad = tmp_path / "broken.toml"
    bad.write_text("this is = = not toml")
    page.set_input_files("input[type=file]", str(bad))
    page.wait_for_selector("text=not valid TOML", timeout=20_000)
    own = tmp_path / "my_case.toml"
    own.write_text((Path(__file__).parents[3] / "scenes/data/cases/l2_rcc_escc1a.toml").read_text())
    page.set_input_files("input[type=file]", str(own))
    page.wait_for_selector("#commit", timeout=20_000)
    assert "L2" in page.text_content("h2")
    page.close()


def test_a_restart_keeps_the_progress(planning, browser, launcher, db):
    page = planning
    page.click("#tab-progress")
    page.wait_for_function("document.querySelector('#progress-text')?.textContent.includes('1 case(s) done')",
                           timeout=60_000)
    page.close()
    launcher.httpd.shutdown()
    launcher.stop()
    again = _launch(db)
    try:
        page = _start(browser, again, "ana")
        assert "1 case(s) done" in page.text_content("#progress-pick")
        page.close()
    finally:
        again.httpd.shutdown()
        again.stop()
