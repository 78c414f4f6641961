"""The report opened in a real browser (headless Chromium): no console errors, every image and clip loads."""

import pathlib
import shutil
import time

import pytest

from report_helpers import write_run_dir
from tfx_transfer.report import write_report

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
NEEDS = ("headless Chromium and chromedriver are needed: Debian packages chromium and chromium-driver "
         "(`make system-deps` installs them where apt-get is available), and the selenium package")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.skip(f"{NEEDS}; not found on PATH: " + ", ".join(
            n for n, p in (("chromium", chromium), ("chromedriver", chromedriver)) if not p))
    webdriver = pytest.importorskip("selenium.webdriver", reason=NEEDS)
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument("--window-size=1200,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    yield driver
    driver.quit()


def open_and_check(driver, path) -> dict:
    """Loads `path`, waits for it, and returns its images, audio clips and console errors."""
    driver.get_log("browser")  # drop messages of earlier pages
    driver.get(pathlib.Path(path).as_uri())
    deadline = time.monotonic() + 20
    while driver.execute_script("return document.readyState") != "complete" and time.monotonic() < deadline:
        time.sleep(0.1)
    images = driver.execute_script(
        "return Array.from(document.images).map(i => ({id: i.id, alt: i.alt, complete: i.complete,"
        " width: i.naturalWidth}))")
    audio = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const clips = Array.from(document.querySelectorAll('audio'));"
        "Promise.all(clips.map(a => new Promise(resolve => {"
        "  const report = () => resolve({ready: a.readyState, error: a.error && a.error.code, duration: a.duration});"
        "  a.addEventListener('loadedmetadata', report, {once: true});"
        "  a.addEventListener('error', report, {once: true});"
        "  a.preload = 'metadata'; a.load();"
        "}))).then(done);")
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    return {"images": images, "audio": audio, "errors": errors}


@pytest.mark.slow
def test_report_renders_in_headless_chromium(browser, tmp_path):
    run_dir = write_run_dir(tmp_path / "run")
    page = open_and_check(browser, write_report(run_dir))
    browser.set_window_size(1200, browser.execute_script("return document.body.scrollHeight") + 100)
    browser.save_screenshot(str(run_dir / "report_screenshot.png"))
    assert (run_dir / "report_screenshot.png").read_bytes().startswith(b"\x89PNG")

    assert page["errors"] == []
    assert page["images"] and all(image["complete"] and image["width"] > 0 for image in page["images"]), page["images"]
    ids = {image["id"] for image in page["images"]}
    assert {"curves", "confusion-counts", "confusion-normalised"} <= ids
    assert {"lr_find.png"} <= {image["alt"] for image in page["images"]}  # another feature's plot
    assert len(page["audio"]) == 1 and page["audio"][0]["error"] is None and page["audio"][0]["duration"] > 0.05


@pytest.mark.slow
def test_the_browser_check_catches_broken_images_and_console_errors(browser, tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
                      '<img id="x" src="data:image/png;base64,AAAA"><script>console.error("boom")</script></body></html>')
    page = open_and_check(browser, broken)
    assert page["images"] == [{"id": "x", "alt": "", "complete": True, "width": 0}]
    assert any("boom" in entry["message"] for entry in page["errors"])
