"""``python -m repro serve``: the search page on 127.0.0.1, driven in headless Chromium
(selenium): a Spanish query shows the hits the API gives, by name and score, with their
images; clicking one shows its tags in Spanish and English; the page loads nothing from
anywhere but the server. Skipped only where Chromium or its driver is absent (``.ci/run``
installs both)."""

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from repro import app

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture
def server(app_run):
    """``python -m repro serve --run RUN --port 0`` in a process of its own: its address."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "repro", "serve", "--run", str(app_run),
                             "--port", "0", "-k", "5"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving http://127.0.0.1:"), line
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("Chromium or chromedriver is not installed (Debian: apt-get install "
                    "chromium chromium-driver; .ci/run does it)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                    "(pip install -e '.[test]')")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))
    yield driver
    driver.quit()


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_bad_requests_are_one_line_errors(server):
    status, body = _get(server + "api/search?q=gato&lang=xx")
    assert status == 400 and body["error"].startswith("--lang xx: unknown language")
    assert _get(server + "api/search?q=gato&k=0") == (400, {"error": "k 0: must be a whole "
                                                               "number from 1 to 100"})
    assert _get(server + "api/tag?id=..%2F..%2Fetc%2Fpasswd")[0] == 400   # only the set's images
    assert _get(server + "image/nope")[0] == 400


def test_the_page_searches_gato_in_spanish_and_tags_a_clicked_image(server, browser, app_run,
                                                                      tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    m = app.load(app_run)
    [want] = m.search("gato", lang="es", k=5)
    browser.get(server)
    wait = WebDriverWait(browser, 60)
    wait.until(lambda b: b.find_element(By.ID, "model").text)
    assert browser.find_element(By.ID, "model").text.startswith(f"model: {app_run} (run; arm M3")
    assert browser.find_element(By.ID, "imageset").text == ("images: emoji benchmark, test "
                                                            "split, 500 images")
    browser.find_element(By.ID, "query").send_keys("gato")
    Select(browser.find_element(By.ID, "lang")).select_by_value("es")
    k = browser.find_element(By.ID, "k")
    k.clear()
    k.send_keys("5")
    browser.find_element(By.ID, "go").click()
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#results .hit")) == 5)
    cards = browser.find_elements(By.CSS_SELECTOR, "#results .hit")
    shown = [(c.find_element(By.CLASS_NAME, "name").text, c.find_element(By.CLASS_NAME, "score").text)
             for c in cards]
    assert shown == [(h.name, f"{h.score:.3f}") for h in want.hits]   # the image shows the emoji
    assert browser.find_element(By.ID, "summary").text == ("top 5 for \u201cgato\u201d (es) "
                                                           "among 500 images")
    wait.until(lambda b: b.execute_script(
        "return [...document.images].every(i => i.complete && i.naturalWidth === 72)"))

    cards[0].click()
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#tags table tr"))
    tags = m.tag([want.hits[0].path], langs=["es", "en"], k=5)[0].tags
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in browser.find_elements(By.CSS_SELECTOR, "#tags table tr")[1:]]
    assert rows == [[str(r + 1), f"{tags['es'][r].tag} ({tags['es'][r].score:.3f})",
                     f"{tags['en'][r].tag} ({tags['en'][r].score:.3f})"] for r in range(5)]
    assert browser.find_element(By.CSS_SELECTOR, "#tags h2").text == (
        f"Tags of {want.hits[0].name_en}")

    # nothing but the server: every resource the page loaded came from it
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(url.startswith(server) for url in loaded), loaded
    shot = Path(os.environ.get("XLIR_PAGE_SCREENSHOT") or tmp_path / "page.png")
    assert browser.save_screenshot(str(shot))
